"""The sweep claims of a matching page (02 Gaussian, 03 uniform): one function, a call per page.

:func:`sweep_claims` records, on the page's ledger, every claim the noise sweep of one prior decides:
matching improves with the noise (per d), accuracy decreases with it and the trade-off is moderate (per
readout, decided only where the best level matches), the best level is not rejected by the omnibus matching test
(:mod:`nine.eval.omnibus`) and plain InfoNCE is. It returns what the rest
of the page shows beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nine.book.numbers import count
from nine.eval.seed_rules import trend_decrease
from nine.experiments.calibration import rule_table
from nine.experiments.certificate import testable_levels
from nine.experiments.omnibus_calibration import null_band, rates_table
from nine.experiments.omnibus_calibration import reading as omnibus_reading
from nine.experiments.omnibus_calibration import rule_text as omnibus_rule
from nine.experiments.readouts import READOUTS
from nine.experiments.sensitivity import path_sensitivity
from nine.experiments.sweep import best_level
from nine.priors import get as get_prior

TARGET_SHARE = 0.9  # "moderate": at the best-matched level a readout keeps this share of plain InfoNCE's accuracy
ALPHA = 0.05
TREND_EFFECT = 1.0  # the fall a trend claim must be able to see: one within-level spread from one level to the next


@dataclass
class SweepReading:
    """What :func:`sweep_claims` decided and the parts of the table it decided on."""

    claims: list[str]  # the ids recorded, in the order the page shows them
    top_d: int  # the largest d of the grid, where the accuracy and headline claims are decided
    testable: dict[int, list[float]]  # per d, the levels with C ≤ log N
    best: float  # the best-matched level at top_d (lowest mean kNN KL)
    at_best: Any  # the NINE runs at that level (rows of the table)
    plain: Any  # the plain-InfoNCE runs at top_d
    headline: dict[str, list]  # the two headline claims → the runs they rest on
    relations: dict[str, str]  # … → the relation of their p-value to ALPHA
    sensitivity: Any  # the energy test's headline verdicts on each evaluation path (sensitivity.path_sensitivity)
    rules: Any  # the description rules' size and power (calibration.rule_table: max KS, energy)
    omnibus: Any  # the matching rule's size and power per d and departure (omnibus_calibration.rates_table)
    band: dict  # per distance, the range prior samples reach at top_d (omnibus_calibration.null_band)
    best_by_gaussian_kl: float  # the level the Gaussian part of the KL would call best


def sweep_claims(page, prior: str, table, runs: dict, grid, n: int, n_train: int, profile: str = "cpu") -> SweepReading:
    """Record the sweep claims of ``prior`` on ``page`` from the sweep ``table`` (one row per run, with the
    readouts and the reference test) and its ``runs`` (hash → run); n and n_train: the test and train
    points of each run."""
    symbol = get_prior(prior).symbol
    top_d = max(grid.dims)
    top = table[table["d"] == top_d]
    log_n = float(table["log_n"].iloc[0])
    testable = {dim: testable_levels(prior, dim, log_n, grid.levels) for dim in grid.dims}

    def too_few(dim: int) -> str:
        return "" if len(testable[dim]) >= 2 else f"fewer than two of the levels {list(grid.levels)} have C ≤ log N at d = {dim}"

    def over_levels(dim: int, result: str) -> str:
        """How a Spearman claim names its levels, and its ``result`` where there are enough of them."""
        if too_few(dim):
            return "over the levels with C ≤ log N: not computed, there are too few"
        return f"over the levels with C ≤ log N ({', '.join(f'{v:g}' for v in testable[dim])}): {result}"

    claims = []
    for dim in grid.dims:
        part = table[(table["d"] == dim) & ((table["head"] != "nine") | table["noise"].isin(testable[dim]))]
        nine = part[part["head"] == "nine"]
        rho = trend_decrease(nine["noise"], nine["kl_knn"]).rho
        page.check_trend(
            f"{prior}-dm-improves-with-noise-d{dim}",
            f"Where InfoNCE can reach the capacity (C ≤ log N), distribution matching improves as the noise grows "
            f"(MNIST, {prior} prior, d = {dim})",
            f"one-sided Spearman test of kNN KL(embedding ‖ prior) decreasing with {symbol} "
            + over_levels(dim, f"ρ = {rho:.2f} over {len(nine)} runs; p-value vs {ALPHA:g}"),
            nine["noise"], nine["kl_knn"], effect=TREND_EFFECT, inconclusive=too_few(dim),
        )
        claims.append(f"{prior}-dm-improves-with-noise-d{dim}")
    top_testable = top[(top["head"] != "nine") | top["noise"].isin(testable[top_d])]
    best = best_level(top)
    by_gaussian = best_level(top, "gaussian_kl")
    at_best = top[(top["head"] == "nine") & (top["noise"] == best)]
    plain = top[top["head"] == "plain"]
    rates = rates_table(prior, n, tuple(grid.dims), n_train)
    band = null_band(prior, n, top_d, n_train)
    best_claim, plain_claim = f"{prior}-best-noise-not-rejected", f"{prior}-plain-rejected"
    headline = {best_claim: [runs[r] for r in at_best["run"]], plain_claim: [runs[r] for r in plain["run"]]}
    relations = {best_claim: "ge", plain_claim: "le"}
    sensitivity = path_sensitivity(headline, relations, prior, profile)  # the energy test on the other paths
    rules = rule_table(prior, n, tuple(grid.dims), n_train, profile)
    best_p = float(at_best["omnibus_p"].median())
    far = how_far(at_best, band)
    # the best level is chosen over every level: where C > log N the trend claims leave a level out, this one asks
    # what the best-matched runs reach wherever that is
    beyond = "" if best in testable[top_d] else "; a level where C > log N, which the trend claims leave out"
    other = ("" if by_gaussian == best else
             f"; by the Gaussian part of the KL the closest level is {symbol} = {by_gaussian:g} instead")
    page.check(
        best_claim,
        f"At the best noise level the matching test does not reject the {prior} prior at 5% on {n} test points (d = {top_d})",
        f"omnibus test of the clean test embeddings at {symbol} = {best:g} (lowest mean kNN KL{beyond}{other}): median "
        f"p-value over {count(len(at_best), 'seed')} vs {ALPHA:g}; {far}",
        measured=best_p, expected=ALPHA, relation="ge",
        inconclusive=omnibus_reading(rates, top_d, rejected=bool(best_p <= ALPHA)),
    )
    page.check(
        plain_claim,
        f"… while the plain-InfoNCE reference is rejected (d = {top_d})",
        f"omnibus test of the standardised plain-InfoNCE embeddings: median p-value over {count(len(plain), 'seed')} "
        f"vs {ALPHA:g}; {how_far(plain, band)}",
        measured=float(plain["omnibus_p"].median()), expected=ALPHA, relation="le",
    )
    rule = omnibus_rule(rates, n, top_d)
    page.name_rule(best_claim, rule + " (a pass of 'not rejected' needs power ≥ 50% against every departure)")
    page.name_rule(plain_claim, rule)
    if page.ledger.claims[best_claim].verdict == "FAIL":  # the failing measurement first; what limits the runs follows
        page.explain(best_claim, f"the omnibus rejects the prior: median p {best_p:.4f} over {count(len(at_best), 'seed')}")
    share_of = {column: float(at_best[column].mean() / plain[column].mean()) for column in READOUTS}
    for column, readout in READOUTS.items():  # the linear probe first, then the MLP probe and 5-NN
        suffix = "" if column == "probe_acc" else "-" + column.removesuffix("_acc")
        nine = top_testable[top_testable["head"] == "nine"]
        rho = trend_decrease(nine["noise"], nine[column]).rho
        first = column == "probe_acc"
        page.check_trend(
            f"{prior}-accuracy-decreases-with-noise{suffix}",
            (f"Where InfoNCE can reach the capacity, downstream accuracy decreases as the noise grows (MNIST, {prior} "
             f"prior, d = {top_d})") if first else f"… and so does the {readout}'s accuracy (MNIST, {prior} prior, d = {top_d})",
            f"one-sided Spearman test of {'linear-probe' if first else readout} accuracy decreasing with {symbol} "
            + over_levels(top_d, f"ρ = {rho:.2f}; p-value vs {ALPHA:g}"),
            nine["noise"], nine[column], effect=TREND_EFFECT, inconclusive=too_few(top_d),
        )
        page.check_share(
            f"{prior}-moderate-tradeoff{suffix}",
            (f"The trade-off is moderate: at the best-matched noise level the linear probe keeps at least "
             f"{TARGET_SHARE:.0%} of plain InfoNCE's accuracy (d = {top_d})") if first else
            f"… and the {readout} too keeps at least {TARGET_SHARE:.0%} of plain InfoNCE's accuracy (d = {top_d})",
            (f"mean probe accuracy at {symbol} = {best:g} (lowest mean kNN KL) / mean probe accuracy of plain InfoNCE, "
             if first else f"mean {readout} accuracy at {symbol} = {best:g} (lowest mean kNN KL) / that of plain InfoNCE, ")
            + f"{len(at_best)} and {len(plain)} seeds; ≥ {TARGET_SHARE:g} with its 95% interval; decided only where "
            f"the matching test does not reject ({best_claim})",
            at_best[column], plain[column], TARGET_SHARE, effect=1.0, premise=best_claim,
            unmet=(f"no level matched at this budget; at the closest ({symbol} = {best:g}: Gaussian part of the KL "
                   f"{at_best['gaussian_kl'].mean():.2f} nats, prior samples up to {band['gaussian_kl'][1]:.2f}) the "
                   f"{readout} keeps {share_of[column]:.0%} of plain InfoNCE's accuracy"),
        )
        claims += [f"{prior}-accuracy-decreases-with-noise{suffix}", f"{prior}-moderate-tradeoff{suffix}"]
    claims += [best_claim, plain_claim]
    return SweepReading(claims, top_d, testable, best, at_best, plain, headline, relations, sensitivity, rules, rates,
                        band, by_gaussian)


def how_far(rows, band: dict) -> str:
    """How far the runs ``rows`` (with the distance columns of :func:`~nine.experiments.omnibus_calibration.with_omnibus`)
    are from the prior, each distance's mean over them (range in brackets) with what samples of the prior reach."""
    def part(column: str, name: str, digits: int) -> str:
        values = rows[column]
        low, high = band[column]
        return (f"{name} {values.mean():.{digits}f} [{values.min():.{digits}f}, {values.max():.{digits}f}] "
                f"(prior samples {low:.{digits}f} to {high:.{digits}f})")
    return "; ".join([part("gaussian_kl", "Gaussian part of the KL", 3),
                      part("excess_kurtosis_mean", "mean excess kurtosis", 3),
                      part("eigenvalue_min", "smallest covariance eigenvalue", 2),
                      part("eigenvalue_max", "largest", 2)])


def how_far_one(reading: dict, band: dict) -> str:
    """How far one sample is from the prior: the distances of ``reading`` (a dict of
    :func:`nine.experiments.omnibus_calibration.test`) with what samples of the prior reach."""
    def part(column: str, name: str, digits: int) -> str:
        low, high = band[column]
        return f"{name} {reading[column]:.{digits}f} (prior samples {low:.{digits}f} to {high:.{digits}f})"
    return "; ".join([part("gaussian_kl", "Gaussian part of the KL", 3),
                      part("excess_kurtosis_mean", "mean excess kurtosis", 3),
                      part("eigenvalue_min", "covariance eigenvalues from", 2), part("eigenvalue_max", "to", 2)])


PART_WORDS = {"mardia_skewness": "Mardia skewness (joint third moments)", "mardia_kurtosis": "Mardia kurtosis (tails)",
              "gaussian_lr": "the Gaussian likelihood ratio (mean, scale, correlation)", "max_ks": "the largest KS (marginals)"}


def departure(reading: dict, band: dict) -> str:
    """Where one rejected sample departs from its prior, in one line: the parts of the omnibus whose own p-value is
    at most 0.05 (smallest first) and the tails' direction, for the reason under a FAIL."""
    parts = sorted((reading[name], name) for name in PART_WORDS if reading[name] <= 0.05)
    seen = ", ".join(f"{PART_WORDS[name]} p {p:.4f}" for p, name in parts) or "no part alone at 5%, only together"
    kurtosis, (low, high) = reading["excess_kurtosis_mean"], band["excess_kurtosis_mean"]
    tails = ("lighter tails than the prior" if kurtosis < low else "heavier tails than the prior" if kurtosis > high
             else "tails within what prior samples reach")
    return f"seen by {seen}; mean excess kurtosis {kurtosis:+.3f} (prior samples {low:+.3f} to {high:+.3f}): {tails}"
