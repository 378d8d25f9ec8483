"""How a headline verdict of the matching pages depends on choices the book makes: the seed of the
reference sample (the fixed 20,000-point reference against the n-point permutation test, over 20
reference seeds) and the evaluation path (the book's, the encoder's eval mode, augmented views). The
tests themselves and their simulated nulls are :mod:`nine.experiments.calibration`'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nine.experiments.calibration import (
    ALPHA,
    REFERENCE_SEEDS,
    draws_for,
    energy_pvalue,
    null,
)
from nine.store.evaluations import evaluation


def reference_spread(claims: dict[str, list], prior: str, profile: str = "cpu",
                     seeds: tuple[int, ...] = REFERENCE_SEEDS):
    """For each headline claim (name → the runs it rests on, one per seed), the median p-value over its runs
    under each of ``seeds`` reference seeds: with the fixed 20,000-point reference (its own simulated null
    per seed) and with the DM table's permutation test against as many prior points as test points."""
    import pandas as pd

    rows = []
    draws = draws_for(profile)["spread"]
    for name, claim_runs in claims.items():
        for seed in seeds:
            pvalues = [reference_pvalues(run, prior, seed, draws) for run in claim_runs]
            rows.append({"claim": name, "reference seed": seed,
                         "fixed reference": float(np.median([p["fixed"] for p in pvalues])),
                         "permutation, n-point reference": float(np.median([p["permuted"] for p in pvalues]))})
    return pd.DataFrame(rows)


SPREAD_PERMUTATIONS = 200  # of the n-point permutation test of :func:`reference_pvalues`


@evaluation("nine.eval.rules", "nine.eval.metrics", "nine.eval.support", "nine.priors:Prior", "nine.priors:get", "nine.priors:CLIP",
            "prior:{prior}",
            *(f"nine.experiments.calibration:{name}" for name in (
                "Simulation", "null", "simulated", "_stored", "statistic_of", "energy_statistic", "energy_pvalue")))
def reference_pvalues(run, prior: str, seed: int, draws: int, permutations: int = SPREAD_PERMUTATIONS) -> dict[str, float]:
    """One run's p-values of "its test embedding follows the prior" against the prior sample of reference seed
    ``seed``: ``fixed``, the energy distance to the 20,000-point reference against that reference's simulated
    null of ``draws`` draws; ``permuted``, the DM table's permutation test against as many prior points as
    test points. Stored (:mod:`nine.store.evaluations`): a page reads them instead of computing them again."""
    from nine.eval.metrics import energy_distance, sample_prior
    from nine.eval.support import on_prior_support

    z = on_prior_support(run, prior)["z_test"]
    null_draws = null("energy", prior, len(z), z.shape[1], int(run.metrics["n_train"]), reference_seed=seed, draws=draws)
    return {"fixed": energy_pvalue(z, prior, null_draws, seed)[1],
            "permuted": energy_distance(z, sample_prior(prior, len(z), z.shape[1], seed=seed), permutations, seed)[1]}


def p_range(low: float, high: float, floor: float) -> str:
    """The range of p-values over seeds, "0.021–0.31"; a bound at the test's ``floor`` reads "≤ 0.0196"."""
    def text(p: float) -> str:
        return f"≤ {floor:.3g}" if p <= floor * (1 + 1e-9) else f"{p:.3g}"

    return f"{text(low)} on every seed" if high <= floor * (1 + 1e-9) else f"{text(low)} to {text(high)}"


def spread_reading(spread, book_pvalues: dict[str, float], relation: dict[str, str], profile: str = "cpu"):
    """The reference-seed spread of each headline claim as one row: its p-value with the book's reference,
    the range over the reference seeds of the fixed-reference test and of the n-point permutation test, and
    on how many seeds each would give another verdict than the book's (``relation``: "ge" for "not
    rejected", "le" for "rejected"). A p-value at its test's floor, 1/(draws + 1) (no simulated draw or
    permutation as large as the observed statistic), reads as "≤ floor"."""
    import pandas as pd

    floors = {"fixed reference": 1 / (draws_for(profile)["spread"] + 1),
              "permutation, n-point reference": 1 / (SPREAD_PERMUTATIONS + 1)}
    rows = []
    for claim, part in spread.groupby("claim", sort=False):
        passes = (lambda p: p >= ALPHA) if relation[claim] == "ge" else (lambda p: p <= ALPHA)
        verdict = passes(book_pvalues[claim])
        row = {"claim": claim, "book's p-value": book_pvalues[claim]}
        for column, floor in floors.items():
            values = part[column]
            row[f"{column}: range"] = p_range(values.min(), values.max(), floor)
            row[f"{column}: seeds with another verdict"] = f"{int(sum(passes(p) != verdict for p in values))}/{len(values)}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("claim")



# The evaluation paths a verdict is read under: the book's (clean test digits, each coordinate standardised
# with the clean train embeddings), the embeddings as the encoder gives them in eval mode (BatchNorm's running
# statistics of noisy views; no path, so their null is raw prior samples), and the book's path on one
# augmented view per test digit (the law the objective acts on).
PATHS = {
    "the book's path, clean digits": ("train", "z_test"),
    "eval mode, no path, clean digits": ("running", "z_test"),
    "the book's path, augmented views": ("train", "z_test_view"),
}


def path_sensitivity(claims: dict[str, list], relation: dict[str, str], prior: str, profile: str = "cpu",
                     store: Path | None = None):
    """Each headline claim (name → its runs) under each evaluation path of :data:`PATHS`: the median over its
    runs of the fixed-reference energy test's p-value (its null simulated for that path) and the verdict it
    gives (``relation[name]``: "ge" for "not rejected", "le" for "rejected")."""
    import pandas as pd

    from nine.eval.support import on_prior_support

    rows = []
    for name, claim_runs in claims.items():
        for label, (law, part) in PATHS.items():
            pvalues = []
            for run in claim_runs:
                z = on_prior_support(run, prior, law)[part]
                raw = law == "running" and run.config.head != "plain"  # plain InfoNCE is standardised on every path
                n_train = 0 if raw else int(run.metrics["n_train"])
                pvalues.append(energy_pvalue(z, prior, null("energy", prior, len(z), z.shape[1], n_train, profile, store=store))[1])
            p = float(np.median(pvalues))
            passed = p >= ALPHA if relation[name] == "ge" else p <= ALPHA
            rows.append({"claim": name, "evaluation path": label, "median p-value": p, "verdict": "pass" if passed else "FAIL"})
    return pd.DataFrame(rows)


def path_note(sensitivity, claim: str) -> str:
    """'' when ``claim`` has the same verdict on every evaluation path, else the sentence the ledger adds."""
    part = sensitivity[sensitivity["claim"] == claim]
    if part["verdict"].nunique() <= 1:
        return ""
    return "; depends on the evaluation path: " + ", ".join(f"{v} on {p}" for p, v in zip(part["evaluation path"], part["verdict"]))
