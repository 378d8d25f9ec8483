"""The "negligible overhead" claim: one NINE training step against one plain-InfoNCE step.

    python benchmarks/overhead.py [--repeats 30]

Same encoder, critic, optimiser and batch (512 real MNIST digits, the cpu profile); the only
difference is the NINE head (BatchNorm and noise) against no head. Steps are timed interleaved,
A B A B, and the median of each is compared. Prints one figure per line; target ratio <= 1.05.
"""

import argparse

import torch
from common import cpu_batch, interleaved_medians, record

from nine.config import make_config
from nine.critics import make_critic
from nine.models import Encoder
from nine.train import training_step


def stepper(head: str, x: torch.Tensor):
    cfg = make_config("cpu", head=head, d=16, sigma=1.0)
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
    medians = interleaved_medians({"nine": stepper("nine", x), "plain": stepper("plain", x)}, args.repeats)
    ratio = medians["nine"] / medians["plain"]
    print(f"NINE step (median of {args.repeats}): {medians['nine'] * 1e3:.1f} ms")
    print(f"plain InfoNCE step (median of {args.repeats}): {medians['plain'] * 1e3:.1f} ms")
    print(f"ratio NINE / plain: {ratio:.3f} (target <= 1.05)")
    record("overhead", {"nine_step_ms": medians["nine"] * 1e3, "plain_step_ms": medians["plain"] * 1e3,
                        "ratio": ratio, "repeats": args.repeats, "batch": len(x)})


if __name__ == "__main__":
    main()
