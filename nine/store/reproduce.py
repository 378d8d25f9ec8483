"""Recomputing a committed run from scratch and comparing every metric (``make reproduce``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nine.store.paths import RESULTS_DIR
from nine.store.store import RunError, execute, load_run, read_json

# Allowed |committed − recomputed| per metric family (first matching substring wins); metrics not
# listed must match exactly. On the same kind of machine a rerun is bit-identical; these bounds
# allow for another CPU's floating-point rounding while catching any change of method.
TOLERANCES = (("pvalue", 0.5), ("ks", 0.02), ("_acc", 0.03), ("infonce", 0.05), ("tau", 0.02), ("embedding", 0.05))


@dataclass(frozen=True)
class Comparison:
    metric: str
    committed: float
    recomputed: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.committed == self.recomputed or abs(self.committed - self.recomputed) <= self.tolerance


def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for key, value in metrics.items():
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            flat[f"{key}[{i}]" if isinstance(value, list) else key] = float(v)
    return flat


def compare_metrics(committed: dict[str, Any], recomputed: dict[str, Any]) -> list[Comparison]:
    """Every metric of two runs side by side with its tolerance; a missing metric compares as NaN."""
    a, b = _flatten(committed), _flatten(recomputed)
    rows = []
    for key in sorted(set(a) | set(b)):
        tol = next((t for part, t in TOLERANCES if part in key), 0.0)
        rows.append(Comparison(key, a.get(key, math.nan), b.get(key, math.nan), tol))
    return rows


def cheapest_committed_run() -> Path:
    """The finished run in ``results/`` trained with this process's number of torch threads (CPU
    kernels may round differently with another number, so only then can the check be bit-identical
    and its tolerances tight), then the cheapest to train (epochs × train images), then the shortest
    wall time."""
    candidates = [p for p in RESULTS_DIR.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")]
    if not candidates:
        raise RunError(f"{RESULTS_DIR} holds no finished runs")

    def cost(path: Path) -> tuple[bool, float, float]:
        config, prov = read_json(path / "config.json"), read_json(path / "provenance.json")
        n_train = read_json(path / "metrics.json")["n_train"]
        return prov.get("torch_threads") != torch.get_num_threads(), config["epochs"] * n_train, prov["wall_time_s"]

    return min(candidates, key=cost)


def reproduce(path: Path, store: Path) -> list[Comparison]:
    """Retrain the run at ``path`` from scratch into ``store`` and compare every metric."""
    committed = load_run(Path(path))
    recomputed = load_run(execute(committed.config, Path(store), resume=False, replace=True))
    return compare_metrics(committed.metrics, recomputed.metrics)
