"""Recomputing a committed run from scratch (a continued run: its continuation, from the committed run it
continues) and comparing every metric (``make reproduce``)."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nine.config import RETIRED_NUMERICS
from nine.store import paths
from nine.store.runs import UNHASHED, RunError, load_run, read_config, read_json
from nine.store.store import execute

# Allowed |committed − recomputed| per metric family (first matching substring wins), used only for a
# run without at least three committed siblings (the same config at other seeds); metrics not listed must
# match exactly. With siblings, the rules of :func:`seed_references` apply instead. On the same kind of
# machine a rerun is bit-identical, the stronger check.
TOLERANCES = (("pvalue", 0.5), ("ks", 0.02), ("_acc", 0.03), ("infonce", 0.05), ("tau", 0.02), ("embedding", 0.05))
PREDICTION = 0.95  # a recomputed value must lie in this prediction interval for one more seed


@dataclass(frozen=True)
class Reference:
    """Where a recomputed metric must fall: within ``tolerance`` of ``centre`` (``centre`` None: of the
    committed value), or, for a per-coordinate statistic, its sorted values within ``tolerance`` of the
    committed run's in mean absolute difference (:func:`set_distance`)."""

    tolerance: float
    centre: float | None = None


@dataclass(frozen=True)
class Comparison:
    """One metric of a recomputed run against the committed one. ``distance`` is what the tolerance bounds:
    |recomputed − centre| for a value, the distance of the sorted values for a set (then ``committed`` and
    ``recomputed`` are the sets' means, shown for orientation)."""

    metric: str
    committed: float
    recomputed: float
    tolerance: float
    distance: float
    identical: bool
    rule: str  # "value" (centre: the committed value), "seeds" (centre: the seeds' mean) or "set"

    @property
    def ok(self) -> bool:
        return self.identical or self.distance <= self.tolerance


def set_distance(a: list[float], b: list[float]) -> float:
    """Mean absolute difference of the sorted values: the 1-Wasserstein distance of two sets of equally many
    per-coordinate statistics (coordinate k of one run and of another are not the same quantity; the i-th
    smallest statistic is); NaN when their sizes differ."""
    if len(a) != len(b) or not a:
        return math.nan
    return sum(abs(x - y) for x, y in zip(sorted(a), sorted(b))) / len(a)


def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    """Every metric as one number, a per-coordinate statistic (a list) as its values in increasing order,
    named ``key[sorted i]`` (the fallback comparison, without committed seeds)."""
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
                    references: dict[str, Reference] | None = None) -> list[Comparison]:
    """Every metric of two runs side by side with the rule it is held to: ``references`` (from the committed
    seeds, :func:`seed_references`) when given, else :data:`TOLERANCES` on every value and on every sorted
    value of a per-coordinate statistic. A metric missing on either side compares as NaN (a mismatch)."""
    if references is None:
        a, b = _flatten(committed), _flatten(recomputed)
        return [Comparison(key, a.get(key, math.nan), b.get(key, math.nan),
                           next((t for part, t in TOLERANCES if part in key), 0.0),
                           abs(a.get(key, math.nan) - b.get(key, math.nan)), a.get(key) == b.get(key), "value")
                for key in sorted(set(a) | set(b))]
    rows = []
    for key in sorted(set(committed) | set(recomputed)):
        a, b = committed.get(key), recomputed.get(key)
        reference = references.get(key, Reference(0.0))
        if isinstance(a, list) or isinstance(b, list):
            a, b = [float(x) for x in a or []], [float(x) for x in b or []]
            rows.append(Comparison(f"{key} (set of {len(a)})", statistics.fmean(a) if a else math.nan,
                                   statistics.fmean(b) if b else math.nan, reference.tolerance,
                                   set_distance(a, b), a == b, "set"))
            continue
        a, b = (math.nan if v is None else float(v) for v in (a, b))
        centre = a if reference.centre is None else reference.centre
        rows.append(Comparison(key, a, b, reference.tolerance, abs(b - centre), a == b,
                               "value" if reference.centre is None else "seeds"))
    return rows


def siblings(path: Path) -> list[Path]:
    """The committed runs with the config of the run at ``path`` but another seed (it included)."""
    def key(p: Path) -> dict:
        config = read_config(p)
        config["held_out"] = list(config["held_out"])
        return {k: v for k, v in config.items() if k not in UNHASHED and k != "seed"}

    mine = key(Path(path))
    return sorted(p for p in paths.RESULTS_DIR.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")
                  and key(p) == mine)


def seed_references(path: Path) -> tuple[dict[str, Reference] | None, int]:
    """What each metric of the run at ``path`` is held to, from its committed siblings (n ≥ 3 seeds of its
    configuration), and n; (None, n) with fewer.

    A recomputation on another machine is, numerically, one more seed: a value must lie in the 95 %
    prediction interval of one more draw, the seeds' mean ± t(n − 1) · s · √(1 + 1/n) (s their standard
    deviation; exact where they agree, e.g. n_test). A per-coordinate statistic is compared as a set: the
    distance of its sorted values to the committed run's is held to the same prediction bound over the
    distances between the committed seeds' sets, their mean + t(n − 1) · s · √(1 + 1/n) (the largest of
    three distances alone is exceeded by a fourth seed about a quarter of the time).
    """
    from scipy import stats

    runs = siblings(path)
    if len(runs) < 3:
        return None, len(runs)
    metrics = [read_json(p / "metrics.json") for p in runs]
    quantile = float(stats.t.ppf((1 + PREDICTION) / 2, len(runs) - 1)) * math.sqrt(1 + 1 / len(runs))
    references = {}
    for key in set().union(*metrics):
        values = [m[key] for m in metrics if key in m]
        if len(values) < 3:
            continue
        if isinstance(values[0], list):  # one more seed's set, as far from the run's as the seeds' sets are apart
            pairs = [set_distance(x, y) for x, y in itertools.combinations(values, 2)]
            references[key] = Reference(statistics.fmean(pairs) + quantile * statistics.stdev(pairs))
            continue
        values = [float(v) for v in values if math.isfinite(float(v))]
        if len(values) >= 3:
            references[key] = Reference(quantile * statistics.stdev(values), centre=statistics.fmean(values))
    return references, len(runs)


def cheapest_committed_run() -> Path:
    """The finished run in ``results/`` trained with this process's number of torch threads (CPU
    kernels may round differently with another number, so only then can the check be bit-identical
    and its tolerances tight), then the cheapest to train (epochs × train images), then the shortest
    wall time."""
    candidates = [p for p in paths.RESULTS_DIR.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")]
    if not candidates:
        raise RunError(f"{paths.RESULTS_DIR} holds no finished runs")

    def cost(path: Path) -> tuple[bool, float, float]:
        config, prov = read_json(path / "config.json"), read_json(path / "provenance.json")
        n_train = read_json(path / "metrics.json")["n_train"]
        return prov.get("torch_threads") != torch.get_num_threads(), config["epochs"] * n_train, prov["wall_time_s"]

    return min(candidates, key=cost)


def reproduce(path: Path, store: Path) -> tuple[list[Comparison], int, tuple[str, str]]:
    """Retrain the run at ``path`` from scratch into ``store`` (a continued run: continue the run it continues,
    as committed beside it, in ``results/`` or the runs folder, never a recomputation of that run in ``store``)
    and compare every metric by the rules of
    :func:`seed_references` (the fixed :data:`TOLERANCES` when the run has fewer than three committed seeds).
    Returns the comparisons, the number of runs the references came from (0 for the fixed table), and the
    machines that made the committed run and the recomputed one."""
    committed = load_run(Path(path))
    references, n_runs = seed_references(Path(path))
    config = committed.config  # a retired numerics is recomputed as the one its weights compute with
    if config.numerics in RETIRED_NUMERICS:
        config = config.replace(numerics="channels_last")
    committed_parents = tuple(dict.fromkeys((Path(path).parent, paths.RESULTS_DIR, paths.RUNS_DIR)))
    recomputed = load_run(execute(config, Path(store), resume=False, replace=True, parents=committed_parents))
    machines = made_on(committed.provenance), made_on(recomputed.provenance)
    return compare_metrics(committed.metrics, recomputed.metrics, references), (n_runs if references else 0), machines
