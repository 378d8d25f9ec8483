"""The "negligible overhead" claim: one NINE training step against one plain-InfoNCE step, and
the steps of the other ways to match a prior.

    python benchmarks/overhead.py [--repeats 30]

Same encoder body, optimiser and batch (512 real MNIST digits, the cpu profile, d = 16); NINE differs
from plain InfoNCE only by its head (BatchNorm and noise). Adversarial matching adds a discriminator
and its loss; the VAE replaces the critic by a decoder and uses one view. Steps are timed
interleaved in rounds whose starting method rotates (A B C, B C A, …); a method's cost is the median
over rounds of its time divided by the plain-InfoNCE time of the same round. One figure per line;
target NINE / plain <= 1.05.
"""

import argparse
import statistics

import torch
from common import METHODS, cpu_batch, interleaved_times, paired_ratio, record

from nine.config import make_config
from nine.core.objectives import make_objective
from nine.core.train import training_step
from nine.data import training_view


def stepper(x: torch.Tensor, **settings):
    cfg = make_config("cpu", d=16, **settings)
    torch.manual_seed(0)
    objective = make_objective(cfg)
    encoder, networks = objective.build()
    optimiser = torch.optim.Adam([*encoder.parameters(), *networks.parameters()], lr=cfg.lr)
    generator, view = torch.Generator().manual_seed(0), training_view(cfg)
    return lambda: training_step(objective, encoder, networks, optimiser, x, view, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    x = cpu_batch()
    times = interleaved_times({name: stepper(x, **settings) for name, settings in METHODS.items()}, args.repeats)
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    plain = times["plain InfoNCE"]
    ratios = {name: paired_ratio(seconds, plain) for name, seconds in times.items()}
    for name, seconds in medians.items():
        median, q1, q3 = ratios[name]
        print(f"{name} step (median of {args.repeats}): {seconds * 1e3:.1f} ms, {median:.3f} × plain InfoNCE "
              f"(quartiles of the per-round ratio {q1:.3f}–{q3:.3f})")
    ratio, q1, q3 = ratios["NINE (Gaussian)"]
    print(f"ratio NINE (Gaussian) / plain: {ratio:.3f} (quartiles {q1:.3f}–{q3:.3f}; target <= 1.05)")
    record("overhead", {"step_ms": {name: s * 1e3 for name, s in medians.items()}, "ratio": ratio,
                        "ratio_quartiles": [q1, q3], "ratios": {name: r[0] for name, r in ratios.items()},
                        "repeats": args.repeats, "batch": len(x)})


if __name__ == "__main__":
    main()
