"""The "negligible overhead" claim: one NINE training step against one plain-InfoNCE step, and
the steps of the other ways to match a prior.

    python benchmarks/overhead.py [--repeats 30]

Same encoder body, optimiser and batch (512 real MNIST digits, the cpu profile, d = 16); NINE differs
from plain InfoNCE only by its head (BatchNorm and noise). Adversarial matching adds a discriminator
and its loss; the VAE replaces the critic by a decoder and uses one view. Steps are timed
interleaved, A B C … A B C …, and the medians compared. One figure per line; target NINE / plain <= 1.05.
"""

import argparse

import torch
from common import METHODS, cpu_batch, interleaved_medians, record

from nine.config import make_config
from nine.critics import make_critic
from nine.models import Encoder
from nine.train import training_step


def stepper(x: torch.Tensor, **settings):
    cfg = make_config("cpu", d=16, **settings)
    torch.manual_seed(0)
    encoder, critic = Encoder.from_config(cfg), make_critic(cfg)
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    generator = torch.Generator().manual_seed(0)
    return lambda: training_step(encoder, critic, optimiser, x, cfg, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    x = cpu_batch()
    medians = interleaved_medians({name: stepper(x, **settings) for name, settings in METHODS.items()}, args.repeats)
    plain = medians["plain InfoNCE"]
    for name, seconds in medians.items():
        print(f"{name} step (median of {args.repeats}): {seconds * 1e3:.1f} ms, {seconds / plain:.3f} × plain InfoNCE")
    ratio = medians["NINE (Gaussian)"] / plain
    print(f"ratio NINE (Gaussian) / plain: {ratio:.3f} (target <= 1.05)")
    record("overhead", {"step_ms": {name: s * 1e3 for name, s in medians.items()}, "ratio": ratio,
                        "repeats": args.repeats, "batch": len(x)})


if __name__ == "__main__":
    main()
