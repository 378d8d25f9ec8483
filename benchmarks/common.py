"""Shared pieces of the benchmarks: one cpu-profile batch, timing, and the results/bench.json record."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from nine.store.provenance import cpu_class

ROOT = Path(__file__).resolve().parents[1]
# the methods whose training step is timed and measured: config overrides at d = 16, cpu profile;
# the names and settings are those of notebooks/07_baselines.ipynb
METHODS = {
    "NINE (Gaussian)": dict(head="nine", prior="gaussian", sigma=1.0),
    "NINE (uniform)": dict(head="nine", prior="uniform", eps=0.2),
    "plain InfoNCE": dict(head="plain"),
    "adversarial (Gaussian)": dict(head="adversarial", prior="gaussian", adv_weight=1.0),
    "adversarial (uniform)": dict(head="adversarial", prior="uniform", adv_weight=1.0),
    "VAE": dict(head="vae", beta=1.0),
}
BENCH_JSON = ROOT / "results" / "bench.json"


def cpu_batch(batch_size: int = 512) -> torch.Tensor:
    """The first batch_size train digits of the cpu profile (real MNIST, N×1×28×28)."""
    from nine.config import make_config
    from nine.data import load_split

    return load_split(make_config("cpu")).x_train[:batch_size]


def interleaved_times(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds of each step in each of ``repeats`` rounds. Every round runs each step once, starting
    one method further on than the round before (A B C, B C A, C A B, …), so that drifts of the
    machine and the cache state a step inherits from the one before it hit all methods alike."""
    names = list(steps)
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-round ratios a[r] / b[r] (times of the same round)."""
    ratios = sorted(x / y for x, y in zip(a, b))
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return median, q1, q3


def record(section: str, figures: dict) -> None:
    """Merge ``figures`` under ``section`` into results/bench.json (with the machine and CPU class it ran on)."""
    data = json.loads(BENCH_JSON.read_text()) if BENCH_JSON.is_file() else {}
    data[section] = {**figures, "machine": f"{platform.processor() or platform.machine()}, "
                     f"{torch.get_num_threads()} torch threads", "cpu": cpu_class(), "torch": torch.__version__,
                     "date": time.strftime("%Y-%m-%d")}
    BENCH_JSON.parent.mkdir(exist_ok=True)
    BENCH_JSON.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
