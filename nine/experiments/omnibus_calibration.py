"""The omnibus matching rule (:mod:`nine.eval.omnibus`) as a measured instrument: its null and its rejection
rates simulated through the matching pages' evaluation path, stored like the other simulations.

An :class:`OmnibusSimulation` is ``draws`` samples of n test points, standardised with the mean and standard
deviation of n_train train points of the same law and mapped onto the prior (the path every run's embeddings
take), each reduced to the omnibus's four statistics and the distances of :func:`nine.eval.omnibus.distances` (the
prior's draws give the null band a distance is read against). The law is the prior itself (``kind="null"``: the draws
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
from nine.eval.omnibus import DISTANCES, PARTS, description, null_min_p, omnibus_pvalue, part_pvalues
from nine.eval.rules import wilson
from nine.store.artifacts import get_or_make
from nine.store.paths import RESULTS_DIR, RUNS_DIR
from nine.store.runs import RUN_FORMAT, write_json

FILES = ("simulation.json", "values.csv", "manifest.json")
ALPHA = 0.05
KLS = (0.1, 0.5)
# 5,000 null draws: a p-value near 0.005 is read to about ±0.001 (from 1,000 a run's p of 0.007 reads as 0.001 about
# one time in fourteen); 2,000 fresh prior samples put the stated size within about ±1 point
DRAWS = {"null": 5000, "prior": 2000, "alternative": 500}
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
    """The four statistics and the distances of ``spec.draws`` samples through the evaluation path, one
    :func:`nine.eval.omnibus.description` per row."""
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
        rows.append(description(z, spec.prior))
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
        np.savetxt(folder / "values.csv", values, fmt="%.17g", delimiter=",", header=",".join(PARTS + DISTANCES), comments="")

    folder, _ = get_or_make(spec.key, places, target, FILES, make, "simulation")
    return np.loadtxt(folder / "values.csv", delimiter=",", skiprows=1, ndmin=2)


def null(prior: str, n: int, d: int, n_train: int, store: Path | None = None) -> np.ndarray:
    return simulated(OmnibusSimulation(prior, n, d, n_train, DRAWS["null"]), store)


def test(z: np.ndarray, prior: str, n_train: int, store: Path | None = None) -> dict[str, float]:
    """The omnibus test of z (n×d, through the evaluation path with ``n_train`` train points): its p-value, the
    p-value of each part and the distances of :func:`nine.eval.omnibus.distances`."""
    n, d = np.shape(z)
    draws = null(prior, n, d, n_train, store)
    values = description(z, prior)
    parts = part_pvalues(values, draws)[0]
    return {"omnibus": omnibus_pvalue(values, draws), **{name: float(p) for name, p in zip(PARTS, parts)},
            **{name: float(v) for name, v in zip(DISTANCES, values[len(PARTS):])}}


BAND = 0.95  # the null band of a distance: the central 95 % of prior samples' values (the upper 95 % for a KL)


def null_band(prior: str, n: int, d: int, n_train: int, store: Path | None = None) -> dict[str, tuple[float, float]]:
    """The range of each distance of :data:`~nine.eval.omnibus.DISTANCES` that samples of the prior itself
    reach through the evaluation path at n, d and n_train (the null draws): a run inside it is as close as a
    sample of the prior; the KL's band is one-sided (0 to its 95th percentile)."""
    draws = null(prior, n, d, n_train, store)[:, len(PARTS):]
    tail = (1 - BAND) / 2
    band = {}
    for k, name in enumerate(DISTANCES):
        low, high = np.quantile(draws[:, k], [tail, 1 - tail]) if name != "gaussian_kl" else (0.0, np.quantile(draws[:, k], BAND))
        band[name] = (float(low), float(high))
    return band


def with_omnibus(table, runs: dict, prior: str, store: Path | None = None):
    """``table`` (a row per run, a ``run`` column of hashes into ``runs``) with the omnibus p-value of every run's
    clean test embeddings (``omnibus_p``) and of one augmented view of each (``omnibus_p_view``), both on the
    evaluation path, and the distances of the clean ones (:data:`~nine.eval.omnibus.DISTANCES`)."""
    from nine.eval.support import on_prior_support

    rows = []
    for hash in table["run"]:
        run = runs[hash]
        z = on_prior_support(run, prior)
        n_train = int(run.metrics["n_train"])
        clean = test(z["z_test"], prior, n_train, store)
        rows.append({"omnibus_p": clean["omnibus"], "omnibus_p_view": test(z["z_test_view"], prior, n_train, store)["omnibus"],
                     **{name: clean[name] for name in DISTANCES}})
    import pandas as pd

    return table.assign(**pd.DataFrame(rows, index=table.index))


OMNIBUS_COLUMNS = {  # the columns :func:`with_omnibus` adds to a table
    "omnibus_p": "the omnibus p-value of the clean test embeddings (the matching claims' test): the smallest p-value "
                 "of Mardia skewness, Mardia kurtosis, the Gaussian likelihood ratio and the largest KS, read against "
                 "5,000 prior samples through the evaluation path",
    "omnibus_p_view": "the same of one augmented view of each test digit",
    "gaussian_kl": "the Gaussian part of KL(embedding ‖ N(0, I)) on normal coordinates (nats): the KL of the Gaussian "
                   "with the embedding's mean and covariance; a lower bound on the whole KL, up to sampling noise",
    "excess_kurtosis_mean": "per-coordinate excess kurtosis, mean over coordinates (0 for N(0, 1); below 0: lighter tails)",
    "excess_kurtosis_extreme": "… the coordinate farthest from 0",
    "skewness_mean": "per-coordinate skewness, mean over coordinates",
    "skewness_extreme": "… the coordinate farthest from 0",
    "eigenvalue_min": "the smallest eigenvalue of the covariance on normal coordinates (1 for the prior)",
    "eigenvalue_max": "the largest",
}


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


OMNIBUS_RULE = "omnibus (min-p of Mardia skewness, Mardia kurtosis, Gaussian LR, max KS), simulated null"
MIN_POWER = 0.5


def rates_table(prior: str, n: int, dims: tuple[int, ...], n_train: int, store: Path | None = None):
    """:func:`rejection_rates` at every d of ``dims`` as one DataFrame."""
    import pandas as pd

    return pd.DataFrame([row for d in dims for row in rejection_rates(prior, n, d, n_train, store=store)])


def weakest_power(rates, d: int, kl: float = KLS[0]) -> float:
    """The smallest power of the omnibus at d against the alternatives ``kl`` nats away (those that can be)."""
    rows = rates[(rates["d"] == d) & (rates["KL (nats)"] == kl) & (rates["draws"] > 0)]
    return float(rows["rejected"].min())


def size_of(rates, d: int) -> tuple[float, float, float]:
    """The omnibus's measured size at d and its 95 % interval."""
    row = rates[(rates["d"] == d) & (rates["law"] == "the prior (size)")].iloc[0]
    return float(row["rejected"]), float(row["95% low"]), float(row["95% high"])


def reading(rates, d: int, rejected: bool = False) -> str:
    """Why the omnibus's verdict at d cannot be read as pass or FAIL ('' when it can): a size above
    :data:`ALPHA` beyond doubt decides nothing; a "not rejected" says "matches" only where the power against
    every alternative 0.1 nats away is at least :data:`MIN_POWER`."""
    size, low, _ = size_of(rates, d)
    if low > ALPHA:
        return f"the omnibus rejects {size:.1%} of prior samples at d = {d} (above {ALPHA:.0%})"
    power = weakest_power(rates, d)
    if not rejected and power < MIN_POWER:
        return (f"the omnibus detects some law {KLS[0]:g} nats from the prior only {power:.0%} of the time at d = {d} "
                f"(below {MIN_POWER:.0%}): not rejecting says little")
    return ""


def rule_text(rates, n: int, d: int) -> str:
    """The omnibus as an instrument, in one line: its size and its weakest power at d."""
    size, low, high = size_of(rates, d)
    draws = int(rates[(rates["d"] == d) & (rates["law"] == "the prior (size)")]["draws"].iloc[0])
    return (f"{OMNIBUS_RULE}, p ≤ {ALPHA:g} rejects; simulated through the evaluation path at n = {n}, d = {d}: "
            f"size {size:.1%} [{low:.1%}, {high:.1%}] on {draws:,} prior samples, power at least "
            f"{weakest_power(rates, d):.0%} against each of {len(KINDS)} departures {KLS[0]:g} nats away "
            f"(heavy and light tails, skew, correlation, class clusters; those that can be that far)")


def single_run(run, prior: str, store: Path | None = None) -> dict:
    """One run's omnibus reading on the book's evaluation path: the test of its clean test embeddings
    (``clean``) and of one augmented view of each (``view``), each a dict of :func:`test`; the omnibus's rates at
    the run's n, d and n_train (``rates``), the null band of each distance (``band``), the rule in one line
    (``rule``), and why a verdict cannot be read (``reading``, ``reading_view``; '' when it can)."""
    from nine.eval.support import on_prior_support

    z = on_prior_support(run, prior)
    n, d = z["z_test"].shape
    n_train = int(run.metrics["n_train"])
    clean, view = test(z["z_test"], prior, n_train, store), test(z["z_test_view"], prior, n_train, store)
    rates = rates_table(prior, n, (d,), n_train, store)
    return {"clean": clean, "view": view, "rates": rates, "band": null_band(prior, n, d, n_train, store),
            "rule": rule_text(rates, n, d),
            "reading": reading(rates, d, rejected=clean["omnibus"] <= ALPHA),
            "reading_view": reading(rates, d, rejected=view["omnibus"] <= ALPHA)}


def prior_reading(prior: str, n: int, d: int, n_train: int, store: Path | None = None) -> dict[str, float]:
    """What a sample of the prior scores on each column of :data:`OMNIBUS_COLUMNS` (the median of the null draws;
    its omnibus p-value is about 0.5 by construction), for the prior row of a summary table."""
    draws = null(prior, n, d, n_train, store)
    medians = dict(zip(DISTANCES, np.median(draws[:, len(PARTS):], axis=0).tolist()))
    return {"omnibus_p": 0.5, "omnibus_p_view": 0.5, **medians}
