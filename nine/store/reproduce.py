"""Recomputing a committed run from scratch and comparing every metric (``make reproduce``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nine.store.paths import RESULTS_DIR
from nine.store.store import UNHASHED, RunError, execute, load_run, read_config, read_json

# Allowed |committed − recomputed| per metric family (first matching substring wins), used only for a
# run without at least two committed siblings (the same config at other seeds); metrics not listed must
# match exactly. With siblings, each metric's tolerance is twice its spread over the seeds instead
# (:func:`seed_tolerances`). On the same kind of machine a rerun is bit-identical, the stronger check.
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
    """Every metric as one number. A per-coordinate statistic (a list, one value per coordinate) is compared
    as a set: its values in increasing order, named ``key[sorted i]`` (the i-th smallest). Coordinate k of
    one run and coordinate k of another are not the same quantity; the i-th smallest KS statistic of a run
    is, and its spread over seeds is the tolerance."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, list):
            for i, v in enumerate(sorted(float(x) for x in value)):
                flat[f"{key}[sorted {i}]"] = v
        else:
            flat[key] = float(value)
    return flat


def made_on(provenance: dict[str, Any]) -> str:
    """The machine a run was made on, as the reproduce output names it."""
    cpu = provenance.get("cpu")
    if provenance.get("device", "cpu") != "cpu":
        return f"{provenance.get('device_name', provenance['device'])}"
    if not cpu:
        return f"{provenance.get('device_name', 'a CPU')} (model and bf16 units not recorded)"
    return f"{cpu['model']}, {cpu['class']}, torch ISA {cpu['torch_isa']}"


def compare_metrics(committed: dict[str, Any], recomputed: dict[str, Any],
                    tolerances: dict[str, float] | None = None) -> list[Comparison]:
    """Every metric of two runs side by side with its tolerance (from ``tolerances`` when given, else
    :data:`TOLERANCES`); a missing metric compares as NaN."""
    a, b = _flatten(committed), _flatten(recomputed)
    rows = []
    for key in sorted(set(a) | set(b)):
        if tolerances is not None:
            tol = tolerances.get(key, 0.0)
        else:
            tol = next((t for part, t in TOLERANCES if part in key), 0.0)
        rows.append(Comparison(key, a.get(key, math.nan), b.get(key, math.nan), tol))
    return rows


def siblings(path: Path) -> list[Path]:
    """The committed runs with the config of the run at ``path`` but another seed (it included)."""
    def key(p: Path) -> dict:
        config = read_config(p)
        config["held_out"] = list(config["held_out"])
        return {k: v for k, v in config.items() if k not in UNHASHED and k != "seed"}

    mine = key(Path(path))
    return sorted(p for p in RESULTS_DIR.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")
                  and key(p) == mine)


def seed_tolerances(path: Path) -> tuple[dict[str, float] | None, int]:
    """Twice the standard deviation over the seeds of each metric of the run at ``path``, computed from
    its committed siblings, and their number; (None, n) with fewer than three runs to compute it from."""
    runs = siblings(path)
    if len(runs) < 3:
        return None, len(runs)
    flat = [_flatten(read_json(p / "metrics.json")) for p in runs]
    keys = set().union(*flat)
    tolerances = {}
    for key in keys:
        values = [f[key] for f in flat if key in f and math.isfinite(f[key])]
        if len(values) >= 3:
            mean = sum(values) / len(values)
            tolerances[key] = 2 * math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return tolerances, len(runs)


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


def reproduce(path: Path, store: Path) -> tuple[list[Comparison], int, tuple[str, str]]:
    """Retrain the run at ``path`` from scratch into ``store`` and compare every metric, each within
    twice its seed spread (:func:`seed_tolerances`; the fixed :data:`TOLERANCES` when the run has fewer
    than two committed siblings). Returns the comparisons, the number of runs the spread came from
    (0 for the fixed table), and the machines that made the committed run and the recomputed one."""
    committed = load_run(Path(path))
    tolerances, n_runs = seed_tolerances(Path(path))
    recomputed = load_run(execute(committed.config, Path(store), resume=False, replace=True))
    machines = made_on(committed.provenance), made_on(recomputed.provenance)
    return compare_metrics(committed.metrics, recomputed.metrics, tolerances), (n_runs if tolerances else 0), machines
