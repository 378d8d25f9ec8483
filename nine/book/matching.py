"""The sweep claims of a matching page (02 Gaussian, 03 uniform): one function, a call per page.

:func:`sweep_claims` records, on the page's ledger, every claim the noise sweep of one prior decides:
matching improves with the noise (per d), accuracy decreases with it and the trade-off is moderate (per
readout), the best level is not rejected by the energy test and plain InfoNCE is. It returns what the rest
of the page shows beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nine.book.numbers import count
from nine.eval.seed_rules import trend_decrease
from nine.experiments.calibration import (
    ENERGY_RULE,
    draws_for,
    instrument_reading,
    rule_table,
)
from nine.experiments.certificate import testable_levels
from nine.experiments.readouts import READOUTS
from nine.experiments.sensitivity import path_note, path_sensitivity
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
    sensitivity: Any  # the headline verdicts on each evaluation path (calibration.path_sensitivity)
    rules: Any  # the decision rules' size and power (calibration.rule_table)


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
    at_best = top[(top["head"] == "nine") & (top["noise"] == best)]
    plain = top[top["head"] == "plain"]
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
            + f"{len(at_best)} and {len(plain)} seeds; ≥ {TARGET_SHARE:g} with its 95% interval",
            at_best[column], plain[column], TARGET_SHARE, effect=1.0,
        )
        claims += [f"{prior}-accuracy-decreases-with-noise{suffix}", f"{prior}-moderate-tradeoff{suffix}"]
    best_claim, plain_claim = f"{prior}-best-noise-not-rejected", f"{prior}-plain-rejected"
    headline = {best_claim: [runs[r] for r in at_best["run"]], plain_claim: [runs[r] for r in plain["run"]]}
    relations = {best_claim: "ge", plain_claim: "le"}
    sensitivity = path_sensitivity(headline, relations, prior, profile)  # the same test on the other paths
    rules = rule_table(prior, n, tuple(grid.dims), n_train, profile)
    power = float(rules.set_index(["rule", "d"]).loc[(ENERGY_RULE, top_d), "power at KL 0.1"])
    test = (f"energy distance to a fixed sample of 20,000 prior points, p-value from "
            f"{draws_for(profile)['null']:,} prior samples through the same path")
    best_p = float(at_best["energy_ref_p"].median())
    # the best level is chosen over every level: where C > log N the trend claims leave a level out, this one asks
    # what the best-matched runs reach wherever that is
    beyond = "" if best in testable[top_d] else "; a level where C > log N, which the trend claims leave out"
    page.check(
        best_claim,
        f"At the best noise level the matching test does not reject the {prior} prior at 5% on {n} test points (d = {top_d})",
        f"{test}, at {symbol} = {best:g} (lowest mean kNN KL{beyond}): median p-value over {count(len(at_best), 'seed')} vs {ALPHA:g} (power {power:.0%} "
        f"against a law 0.1 nats away){path_note(sensitivity, best_claim)}",
        measured=best_p, expected=ALPHA, relation="ge",
        inconclusive=instrument_reading(rules, ENERGY_RULE, top_d, rejected=bool(best_p <= ALPHA)),
    )
    page.check(
        plain_claim,
        f"… while the plain-InfoNCE reference is rejected (d = {top_d})",
        f"{test}, standardised plain-InfoNCE embeddings: median p-value over {count(len(plain), 'seed')} vs {ALPHA:g}"
        f"{path_note(sensitivity, plain_claim)}",
        measured=float(plain["energy_ref_p"].median()), expected=ALPHA, relation="le",
    )
    energy = rules.set_index(["rule", "d"]).loc[(ENERGY_RULE, top_d)]
    rule = (f"{ENERGY_RULE}, p ≤ {ALPHA:g} rejects; simulated through the evaluation path at n = {n}, d = {top_d} "
            f"({energy['draws']} samples of the prior and {energy['draws']} of the alternative): size {energy['size']:.1%}, "
            f"power {power:.0%} against a law 0.1 nats away")
    page.name_rule(best_claim, rule + " (a pass of 'not rejected' needs power ≥ 50%)")
    page.name_rule(plain_claim, rule)
    if page.ledger.claims[best_claim].verdict == "FAIL":  # the failing measurement first; what limits the runs follows
        page.explain(best_claim, f"the test rejects the prior: median p {best_p:.3f} over {count(len(at_best), 'seed')}")
    claims += [best_claim, plain_claim]
    return SweepReading(claims, top_d, testable, best, at_best, plain, headline, relations, sensitivity, rules)
