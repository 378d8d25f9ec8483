"""The trainer against a bare PyTorch loop on the same model and batches.

    python benchmarks/throughput.py [--epochs 2] [--rounds 3]

`nine.core.train.train` (progress lines, per-epoch log, divergence check; no checkpoint) and a loop of
a dozen lines doing the same steps (random order, two views, InfoNCE, Adam) train the same cpu-profile
configuration; they alternate for a few rounds and the median samples per second of each are
compared. One figure per line; target ratio >= 0.95.
"""

import argparse
import statistics
import time

import torch
from common import record

from nine.config import make_config
from nine.core.losses import infonce
from nine.core.objectives import make_objective
from nine.core.train import train
from nine.data import load_split, training_view


def bare_loop(cfg, x_train: torch.Tensor) -> float:
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    encoder, critic = make_objective(cfg).build()
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    view = training_view(cfg)
    steps = len(x_train) // cfg.batch_size
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for step in range(steps):
            x = x_train[order[step * cfg.batch_size : (step + 1) * cfg.batch_size]]
            u, y = encoder(view(x, generator)), encoder(view(x, generator))
            y = y + cfg.sigma * torch.randn(y.shape)  # the channel noise of the Gaussian prior
            loss, _ = infonce(critic(u, y), cfg.softmax)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return cfg.epochs * steps * cfg.batch_size / (time.perf_counter() - start)


def trainer(cfg, split) -> float:
    start = time.perf_counter()
    result = train(cfg, split, progress=lambda line: None)
    steps = len(split.x_train) // cfg.batch_size
    assert len(result.history) == cfg.epochs
    return cfg.epochs * steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = make_config("cpu", epochs=args.epochs)
    split = load_split(cfg)
    ours, bare = [], []
    for _ in range(args.rounds):
        ours.append(trainer(cfg, split))
        bare.append(bare_loop(cfg, split.x_train))
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"nine.core.train.train: {statistics.median(ours):,.0f} samples/s (median of {args.rounds})")
    print(f"bare PyTorch loop: {statistics.median(bare):,.0f} samples/s (median of {args.rounds})")
    print(f"ratio trainer / bare loop: {ratio:.3f} (target >= 0.95)")
    record("throughput", {"trainer_samples_per_s": statistics.median(ours), "bare_samples_per_s": statistics.median(bare),
                          "ratio": ratio, "epochs": args.epochs, "rounds": args.rounds})


if __name__ == "__main__":
    main()
