"""Quadratic critic against the concatenated-pair MLP critic: cost per step and the InfoNCE value
each reaches on the same budget.

    python benchmarks/critics.py [--seconds 15]

On the Gaussian channel Y = U + σZ (U ~ N(0, I_d), d = 4, σ = 1, I(U; Y) = 2 log 2 = 1.386 nats),
each critic alone is trained with Adam on fresh batches of N pairs, for N = 128, 512, 1024, for the
same wall-clock budget; the figures are the median time of one step (forward and backward), the
number of steps the budget allowed, and the InfoNCE estimate on 5 held-out batches at the end.
One figure per line.
"""

import argparse
import math
import statistics
import time

import torch
from common import record

from nine.core.critics import MLPCritic, QuadraticCritic
from nine.core.losses import infonce

D, SIGMA = 4, 1.0


def batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.randn(n, D, generator=generator)
    return u, u + SIGMA * torch.randn(n, D, generator=generator)


def run(critic: torch.nn.Module, n: int, budget: float) -> tuple[float, int, float]:
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-3 if isinstance(critic, MLPCritic) else 1e-2)
    times: list[float] = []
    while sum(times) < budget:
        u, y = batch(n, generator)
        start = time.perf_counter()
        loss, _ = infonce(critic(u, y), "clean")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        estimate = statistics.mean(float(infonce(critic(*batch(n, generator)), "clean")[1]) for _ in range(5))
    return statistics.median(times), len(times), estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="training budget per critic and N")
    args = parser.parse_args()
    truth = D / 2 * math.log(1 + 1 / SIGMA**2)
    print(f"true I(U; Y) = {truth:.3f} nats (d = {D}, σ = {SIGMA})")
    figures = {"true_mi": truth, "budget_s": args.seconds}
    for n in (128, 512, 1024):
        torch.manual_seed(0)
        for name, critic in (("quadratic", QuadraticCritic(tau=0.5)), ("mlp", MLPCritic(D))):
            seconds, steps, estimate = run(critic, n, args.seconds)
            print(f"N = {n:>4}, {name:>9} critic: {seconds * 1e3:8.2f} ms/step, InfoNCE {estimate:.3f} nats "
                  f"after {steps} steps in {args.seconds:g} s (log N = {math.log(n):.2f})")
            figures[f"{name}_N{n}"] = {"ms_per_step": seconds * 1e3, "steps": steps, "infonce": estimate}
        ratio = figures[f"mlp_N{n}"]["ms_per_step"] / figures[f"quadratic_N{n}"]["ms_per_step"]
        print(f"N = {n:>4}, MLP / quadratic time per step: {ratio:.0f}x")
    record("critics", figures)


if __name__ == "__main__":
    main()
