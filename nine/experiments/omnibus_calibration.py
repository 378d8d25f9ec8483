"""The omnibus matching rule (:mod:`nine.eval.omnibus`) as a measured instrument: its null and its rejection
rates simulated through the matching pages' evaluation path, stored like the other simulations.

An :class:`OmnibusSimulation` is ``draws`` samples of n test points, standardised with the mean and standard
deviation of n_train train points of the same law and mapped onto the prior (the path every run's embeddings
take), each reduced to the omnibus's four statistics. The law is the prior itself (``kind="null"``: the draws
p-values are read from; ``kind="prior"``: fresh draws, for the size) or an alternative of
:mod:`nine.eval.alternatives` at ``kl`` nats (for the power). Stored in ``results/simulations/omnibus-<key>/``
(hashed, locked, verified), so a page reads the committed draws.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nine.config import PRIORS, check_choice
from nine.eval.alternatives import KINDS, alternative
from nine.eval.metrics import standardise_like_train
from nine.eval.omnibus import PARTS, null_min_p, omnibus_pvalue, part_pvalues, statistics
from nine.eval.rules import wilson
from nine.store.artifacts import get_or_make
from nine.store.paths import RESULTS_DIR, RUNS_DIR
from nine.store.runs import RUN_FORMAT, write_json

FILES = ("simulation.json", "values.csv", "manifest.json")
ALPHA = 0.05
KLS = (0.1, 0.5)
DRAWS = {"null": 1000, "prior": 1000, "alternative": 500}
SEEDS = {"null": 200, "prior": 201, "alternative": 202}  # apart from the other simulations' seeds


@dataclass(frozen=True)
class OmnibusSimulation:
    prior: str
    n: int
    d: int
    n_train: int
    draws: int
    kind: str = "null"  # "null", "prior" (fresh draws of the prior) or one of nine.eval.alternatives.KINDS
    kl: float = 0.0
    seed: int = SEEDS["null"]

    def __post_init__(self) -> None:
        check_choice("prior", self.prior, PRIORS)
        check_choice("kind", self.kind, ("null", "prior", *KINDS))

    @property
    def key(self) -> str:
        text = json.dumps({**asdict(self), "nine_version": RUN_FORMAT}, sort_keys=True)
        return "omnibus-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def path_draws(spec: OmnibusSimulation) -> np.ndarray:
    """The four statistics of ``spec.draws`` samples through the evaluation path (draws × 4)."""
    rng = np.random.default_rng(spec.seed)
    if spec.kind in ("null", "prior"):
        sample = lambda m: rng.standard_normal((m, spec.d))  # noqa: E731 (the prior on normal coordinates)
    else:
        law = alternative(spec.kind, spec.kl, spec.d)
        sample = lambda m: law(rng, m)  # noqa: E731
    rows = []
    for _ in range(spec.draws):
        train, test = sample(spec.n_train), sample(spec.n)
        z = standardise_like_train(train, {"z": test}, None, spec.prior)["z"]
        rows.append(statistics(z, spec.prior))
    return np.array(rows)


@lru_cache(maxsize=64)
def simulated(spec: OmnibusSimulation, store: Path | None = None) -> np.ndarray:
    """The draws of ``spec``: loaded from ``results/simulations`` (or the runs folder, or ``store``), else
    simulated and stored into ``store`` (default: the runs folder)."""
    target = Path(store) if store is not None else RUNS_DIR / "simulations"
    places = tuple(dict.fromkeys((RESULTS_DIR / "simulations", RUNS_DIR / "simulations", target)))

    def make(folder: Path) -> None:
        values = path_draws(spec)
        write_json(folder / "simulation.json", {**asdict(spec), "key": spec.key, "nine_version": RUN_FORMAT})
        np.savetxt(folder / "values.csv", values, fmt="%.17g", delimiter=",", header=",".join(PARTS), comments="")

    folder, _ = get_or_make(spec.key, places, target, FILES, make, "simulation")
    return np.loadtxt(folder / "values.csv", delimiter=",", skiprows=1, ndmin=2)


def null(prior: str, n: int, d: int, n_train: int, store: Path | None = None) -> np.ndarray:
    return simulated(OmnibusSimulation(prior, n, d, n_train, DRAWS["null"]), store)


def test(z: np.ndarray, prior: str, n_train: int, store: Path | None = None) -> dict[str, float]:
    """The omnibus test of z (n×d, through the evaluation path with ``n_train`` train points): its p-value and
    the p-value of each part."""
    n, d = np.shape(z)
    draws = null(prior, n, d, n_train, store)
    values = statistics(z, prior)
    parts = part_pvalues(values, draws)[0]
    return {"omnibus": omnibus_pvalue(values, draws), **{name: float(p) for name, p in zip(PARTS, parts)}}


def rejection_rates(prior: str, n: int, d: int, n_train: int, kls: tuple[float, ...] = KLS,
                    store: Path | None = None, draws: dict[str, int] | None = None) -> list[dict]:
    """The omnibus's size (fresh prior draws) and its power against every alternative at each KL, at
    p ≤ :data:`ALPHA`, each with its 95 % Wilson interval; an alternative that cannot be that far is a row
    without a rate."""
    draws = draws or DRAWS
    reference = simulated(OmnibusSimulation(prior, n, d, n_train, draws["null"]), store)
    minimum = null_min_p(reference)
    cases = [("prior", 0.0)] + [(kind, kl) for kind in KINDS for kl in kls]
    rows = []
    for kind, kl in cases:
        row = {"d": d, "law": "the prior (size)" if kind == "prior" else kind, "KL (nats)": kl}
        if kind != "prior" and alternative(kind, kl, d) is None:
            rows.append({**row, "rejected": np.nan, "95% low": np.nan, "95% high": np.nan, "draws": 0})
            continue
        spec = OmnibusSimulation(prior, n, d, n_train, draws["prior" if kind == "prior" else "alternative"],
                                 kind, kl, SEEDS["prior" if kind == "prior" else "alternative"])
        p = omnibus_pvalue(simulated(spec, store), reference, minimum)
        k, m = int(np.sum(p <= ALPHA)), len(p)
        low, high = wilson(k, m)
        rows.append({**row, "rejected": k / m, "95% low": low, "95% high": high, "draws": m})
    return rows
