"""What the β-VAE positive control of the disentanglement page costs on this machine, at the page's
settings and at the literature's training budget.

    python benchmarks/disentanglement.py [--repeats 20]

The page trains its β-VAE (β = 4) for 30 epochs of 10,000 generated 28×28 sprites with batches of 512:
585 optimiser steps. The disentanglement literature trains it for 300,000 steps with batches of 64
(Locatello et al., 2019, who report MIG of the order of 0.1–0.3 for β-VAE on dSprites). Both budgets
are timed here as one-thread steps of the page's encoder and decoder (the median over ``repeats``
steps, in fp32 and bf16), and the wall time of each budget is that median times its steps; one figure
per line, all written to results/bench.json under "disentanglement".
"""

import argparse
import statistics
import time

import torch
from common import record

from nine.config import make_config
from nine.core.objectives import make_objective
from nine.core.train import training_step
from nine.data import load_split, training_view

PAGE = dict(epochs=30, batch=512, train=10_000)  # notebooks/05_disentanglement.ipynb, cpu profile
LITERATURE = dict(steps=300_000, batch=64)


def step_seconds(batch: int, numerics: str, repeats: int) -> float:
    cfg = make_config("cpu", dataset="dsprites", encoder="sprites-cnn", head="vae", beta=4.0, d=5, pixel_noise=0.3,
                      batch_size=batch, numerics=numerics, n_train=2048, n_test=256)
    x = load_split(cfg).x_train[:batch]
    objective = make_objective(cfg)
    torch.manual_seed(0)
    encoder, networks = objective.build()
    optimiser = torch.optim.Adam(objective.parameter_groups(encoder, networks), lr=cfg.lr)
    view, generator = training_view(cfg), torch.Generator().manual_seed(0)
    times = []
    for k in range(repeats + 3):
        start = time.perf_counter()
        training_step(objective, encoder, networks, optimiser, x, view, generator)
        if k >= 3:  # warm-up steps are not counted
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures = {}
    page_steps = PAGE["epochs"] * (PAGE["train"] // PAGE["batch"])
    for numerics in ("fp32", "bf16"):
        page_step = step_seconds(PAGE["batch"], numerics, args.repeats)
        small_step = step_seconds(LITERATURE["batch"], numerics, args.repeats)
        figures[numerics] = {
            "step_ms_batch512": 1000 * page_step, "step_ms_batch64": 1000 * small_step,
            "page_budget_min": page_steps * page_step / 60,
            "literature_budget_h": LITERATURE["steps"] * small_step / 3600,
        }
        print(f"{numerics}: step {1000 * page_step:.1f} ms at batch 512, {1000 * small_step:.1f} ms at batch 64 (one thread)")
        print(f"{numerics}: the page's budget ({page_steps} steps of 512) {page_steps * page_step / 60:.1f} min; "
              f"the literature's ({LITERATURE['steps']:,} steps of 64) {LITERATURE['steps'] * small_step / 3600:.1f} h")
    figures.update(page_steps=page_steps, literature_steps=LITERATURE["steps"], literature_batch=LITERATURE["batch"])
    record("disentanglement", figures)


if __name__ == "__main__":
    main()
