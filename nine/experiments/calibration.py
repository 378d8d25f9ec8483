"""The decision rules of the matching pages as measured instruments: their simulated statistics kept as
artifacts, their size and power as tables, and the sweep's energy test against one fixed reference.

A :class:`Simulation` is ``draws`` values of one statistic ("energy" to the reference sample, or "max_ks",
the largest per-coordinate KS statistic) of samples pushed through the evaluation path at the pages' n, d
and n_train: samples of the prior (``kl = 0``) or of the t alternative at ``kl`` nats
(:mod:`nine.eval.rules`). It is stored like a run (``results/simulations/<key>/``, hashed, locked,
verified), so the book reads the committed draws instead of spending minutes on them:

    python -m nine calibrate --store results

A p-value is read from the null draws; a rule's size from *other* draws of the prior (a fresh seed) and
its power from draws of the alternative, each compared with the threshold the null draws give.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nine.config import PRIORS, check_choice
from nine.eval.metrics import ks_critical_value, ks_per_coordinate
from nine.eval.rules import REFERENCE_SEED, REFERENCE_SIZE, EnergyToReference, rates, simulate, simulated_pvalue
from nine.store.artifacts import get_or_make
from nine.store.paths import RESULTS_DIR, RUNS_DIR
from nine.store.runs import RUN_FORMAT, write_json

STATISTICS = ("energy", "max_ks")
FILES = ("simulation.json", "values.csv", "manifest.json")
ALPHA = 0.05
KLS = (0.1, 0.5)  # the alternatives: a tenth of a nat over the whole law (the effect that matters), and half a nat
MIN_POWER = 0.5  # a rule with less power than this at KL 0.1 cannot say "indistinguishable from the prior"
REFERENCE_SEEDS = tuple(range(20))  # the reference seeds over which the headline p-values are shown
# draws per simulation: the null, a fresh sample of the prior for the size, each alternative for the power
DRAWS = {"null": 1000, "size": 500, "power": 500, "spread": 50}
SMOKE_DRAWS = {"null": 100, "size": 50, "power": 50, "spread": 20}
# the size of the KS rules from six times as many fresh prior samples: cheap to simulate, and enough that the
# stated size is within about ±1 point (95% Wilson half-width 0.8 points at 5%); the energy statistic costs about a
# second a draw, so its size keeps 500 draws and the wider interval the table states
KS_SIZE_DRAWS = 3000


@dataclass(frozen=True)
class Simulation:
    """What one stored simulation is: statistic, prior, sizes, alternative, seeds (its hash is its key)."""

    statistic: str
    prior: str
    n: int
    d: int
    n_train: int
    draws: int
    kl: float = 0.0
    seed: int = 0
    reference_seed: int = REFERENCE_SEED
    reference_size: int = REFERENCE_SIZE

    def __post_init__(self) -> None:
        check_choice("statistic", self.statistic, STATISTICS)
        check_choice("prior", self.prior, PRIORS)

    @property
    def key(self) -> str:
        text = json.dumps({**asdict(self), "nine_version": RUN_FORMAT}, sort_keys=True)
        return "simulation-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@lru_cache(maxsize=64)
def energy_statistic(prior: str, d: int, reference_seed: int = REFERENCE_SEED) -> EnergyToReference:
    """The energy distance to the reference sample of ``prior`` at d (its within-reference term computed once)."""
    return EnergyToReference(prior, d, reference_seed)


def statistic_of(spec: Simulation):
    if spec.statistic == "energy":
        return energy_statistic(spec.prior, spec.d, spec.reference_seed)
    return lambda z: float(ks_per_coordinate(z, spec.prior)[0].max())


def simulated(spec: Simulation, store: Path | None = None) -> np.ndarray:
    """The ``spec.draws`` values of the simulation: loaded from ``results/simulations`` (or the runs folder,
    or ``store``), else simulated and stored into ``store`` (default: the runs folder). Read (and verified)
    once per process: a page asks for the same null once per run of its sweep."""
    return _stored(spec, None if store is None else Path(store)).copy()


@lru_cache(maxsize=256)
def _stored(spec: Simulation, store: Path | None) -> np.ndarray:
    target = Path(store) if store is not None else RUNS_DIR / "simulations"
    places = tuple(dict.fromkeys((RESULTS_DIR / "simulations", RUNS_DIR / "simulations", target)))

    def make(folder: Path) -> None:
        values = simulate(statistic_of(spec), spec.prior, spec.n, spec.d, spec.n_train, spec.draws, spec.kl, spec.seed)
        write_json(folder / "simulation.json", {**asdict(spec), "key": spec.key, "nine_version": RUN_FORMAT})
        np.savetxt(folder / "values.csv", values, fmt="%.17g", header=spec.statistic, comments="")

    folder, _ = get_or_make(spec.key, places, target, FILES, make, "simulation")
    return np.loadtxt(folder / "values.csv", skiprows=1, ndmin=1)


def draws_for(profile: str) -> dict[str, int]:
    return SMOKE_DRAWS if profile == "smoke" else DRAWS


# seeds of the simulations: the null, the fresh prior sample of the size, the alternatives; never shared
NULL_SEED, SIZE_SEED, POWER_SEED = 100, 101, 102  # apart from the reference seeds (0, 1, …)


def null(statistic: str, prior: str, n: int, d: int, n_train: int, profile: str = "cpu",
         reference_seed: int = REFERENCE_SEED, draws: int | None = None, store: Path | None = None) -> np.ndarray:
    """The null draws of ``statistic`` at (n, d, n_train) against the reference of ``reference_seed``."""
    draws = draws or draws_for(profile)["null"]
    return simulated(Simulation(statistic, prior, n, d, n_train, draws, 0.0, NULL_SEED, reference_seed), store)


def energy_pvalue(z: np.ndarray, prior: str, null_draws: np.ndarray, reference_seed: int = REFERENCE_SEED) -> tuple[float, float]:
    """The energy distance of z to the reference of ``reference_seed`` and its p-value from ``null_draws``."""
    value = energy_statistic(prior, z.shape[1], reference_seed)(z)
    return value, simulated_pvalue(value, null_draws)


# The rules as the pages use them: (statistic, how the threshold is set)
RULES = {
    "energy to a 20,000-point reference, simulated null": ("energy", "simulated"),
    "max KS, simulated null of the evaluation path": ("max_ks", "simulated"),
    "max KS, Bonferroni over coordinates": ("max_ks", "bonferroni"),
    "max KS, one coordinate's 5% value (uncorrected)": ("max_ks", "uncorrected"),
}


def threshold(rule: str, prior: str, n: int, d: int, n_train: int, profile: str = "cpu", store: Path | None = None) -> float:
    """The value above which ``rule`` rejects at the pages' level ALPHA."""
    statistic, how = RULES[rule]
    if how == "bonferroni":
        return ks_critical_value(n, ALPHA / d)
    if how == "uncorrected":
        return ks_critical_value(n, ALPHA)
    return float(np.quantile(null(statistic, prior, n, d, n_train, profile, store=store), 1 - ALPHA))


def rule_table(prior: str, n: int, dims: tuple[int, ...], n_train: int, profile: str = "cpu",
               rules: tuple[str, ...] = tuple(RULES), store: Path | None = None):
    """Each rule at each d: its size (false-rejection rate on fresh samples of the prior through the path)
    with its 95% Wilson interval, and its power against the t alternative at each KL of :data:`KLS`."""
    import pandas as pd

    draws = draws_for(profile)
    rows = []
    for rule in rules:
        statistic = RULES[rule][0]
        for d in dims:
            limit = threshold(rule, prior, n, d, n_train, profile, store)
            size_draws = KS_SIZE_DRAWS if statistic == "max_ks" and profile != "smoke" else draws["size"]
            size = rates(simulated(Simulation(statistic, prior, n, d, n_train, size_draws, 0.0, SIZE_SEED), store), limit)
            row = {"rule": rule, "d": d, "n": n, "size": size["rate"], "size 95% low": size["low"], "size 95% high": size["high"]}
            for kl in KLS:
                drawn = simulated(Simulation(statistic, prior, n, d, n_train, draws["power"], kl, POWER_SEED), store)
                row[f"power at KL {kl:g}"] = rates(drawn, limit)["rate"]
            row["draws"] = f"{size_draws} / {draws['power']}"
            rows.append(row)
    return pd.DataFrame(rows)


def instrument_reading(table, rule: str, d: int, rejected: bool = False) -> str:
    """Why the verdict of ``rule`` at d cannot be read as a pass or FAIL, '' when it can: a rule whose size
    is above ALPHA beyond doubt (the lower end of its 95% interval) decides nothing; a rule that did not
    reject (``rejected`` False) says "matches" only if its power at KL 0.1 is at least MIN_POWER."""
    row = table[(table["rule"] == rule) & (table["d"] == d)].iloc[0]
    power = row[f"power at KL {KLS[0]:g}"]
    if row["size 95% low"] > ALPHA:
        return f"the rule rejects {row['size']:.1%} of prior samples (above {ALPHA:.0%})"
    if not rejected and power < MIN_POWER:
        return (f"the rule detects a law {KLS[0]:g} nats from the prior only {power:.0%} of the time at d = {d} "
                f"(below {MIN_POWER:.0%}): not rejecting says little")
    return ""


def with_reference_test(table, runs: dict, prior: str, profile: str = "cpu", store: Path | None = None):
    """``table`` with two columns for every run: ``energy_ref``, the energy distance of its clean test
    embeddings (the evaluation path) to the 20,000-point reference, and ``energy_ref_p``, its p-value from
    the simulated null at the run's n, d and n_train."""
    from nine.eval.support import on_prior_support

    values, pvalues = [], []
    for row in table.itertuples():
        run = runs[row.run]
        z = on_prior_support(run, prior)["z_test"]
        draws = null("energy", prior, len(z), z.shape[1], int(run.metrics["n_train"]), profile, store=store)
        value, p = energy_pvalue(z, prior, draws)
        values.append(value)
        pvalues.append(p)
    return table.assign(energy_ref=values, energy_ref_p=pvalues)


def calibrate(prior: str, n: int, dims: tuple[int, ...], n_train: int, profile: str = "cpu",
              store: Path | None = None) -> None:
    """Simulate (or load) everything a matching page reads: every rule's null, size and power draws at each
    d, the null of each reference seed of :func:`reference_spread` at the largest d, and the omnibus matching
    rule's null, size and power draws at each d (:mod:`nine.experiments.omnibus_calibration`)."""
    from nine.experiments.omnibus_calibration import rates_table

    rates_table(prior, n, tuple(dims), n_train, store=store)
    rule_table(prior, n, dims, n_train, profile, store=store)
    null("energy", prior, n, max(dims), 0, profile, store=store)  # embeddings as the encoder gives them: no path
    for seed in REFERENCE_SEEDS:
        null("energy", prior, n, max(dims), n_train, profile, reference_seed=seed, draws=draws_for(profile)["spread"],
             store=store)


KS_RULE = "max KS, simulated null of the evaluation path"
ENERGY_RULE = "energy to a 20,000-point reference, simulated null"


def single_run_ks(run, prior: str, profile: str = "cpu") -> dict:
    """One run's per-coordinate KS statistics on the book's evaluation path (clean test digits and one view
    each), the :data:`KS_RULE` threshold at its n, d and n_train, the rule's size and power there, and why
    the rule cannot decide "matches" there ('' when it can; :func:`instrument_reading`)."""
    from nine.eval.support import on_prior_support

    z = on_prior_support(run, prior)
    n, d = z["z_test"].shape
    n_train = int(run.metrics["n_train"])
    table = rule_table(prior, n, (d,), n_train, profile, rules=(KS_RULE,))
    ks, pvalues = ks_per_coordinate(z["z_test"], prior)
    row = table.iloc[0]
    ks_view = ks_per_coordinate(z["z_test_view"], prior)[0]
    limit = threshold(KS_RULE, prior, n, d, n_train, profile)
    return {"ks": ks, "ks_pvalue": pvalues, "ks_view": ks_view, "limit": limit, "size": float(row["size"]),
            "power": float(row[f"power at KL {KLS[0]:g}"]),
            "reading": instrument_reading(table, KS_RULE, d, rejected=bool(ks.max() > limit)),
            "reading_view": instrument_reading(table, KS_RULE, d, rejected=bool(ks_view.max() > limit))}


REFERENCE_COLUMNS = {  # the columns :func:`with_reference_test` adds to a sweep table
    "energy_ref": "energy distance to one fixed sample of 20,000 prior points",
    "energy_ref_p": "its p-value from 1,000 prior samples through the evaluation path (the matching claims' test)",
}
