"""The seed rules of pages 04–07: known answers, and their simulated size and power."""

import numpy as np
import pytest
from scipy import stats

from nine.eval.seed_rules import (
    EXACT_LIMIT,
    arrangements,
    interval_instrument,
    level_arrangements,
    level_spread,
    pooled_spread,
    seed_interval,
    share_instrument,
    share_interval,
    trend_decrease,
    trend_instrument,
    welch_all_greater,
    welch_instrument,
)


def test_interval_rule_passes_fails_and_abstains_by_where_the_interval_lies():
    # mean 1.0, sd 0.1, n 3: half-width t(0.975, 2) · 0.1 / √3 = 0.2484
    values = [0.9, 1.0, 1.1]
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    reading = seed_interval(values, 1.25, "le")
    assert reading.verdict == "pass" and reading.low == pytest.approx(1.0 - half) and reading.high == pytest.approx(1.0 + half)
    assert seed_interval(values, 0.7, "le").verdict == "FAIL"
    assert seed_interval(values, 1.1, "le").verdict == "inconclusive"
    assert "contains 1.1" in seed_interval(values, 1.1, "le").reason
    assert seed_interval(values, 0.7, "ge").verdict == "pass" and seed_interval(values, 1.3, "ge").verdict == "FAIL"
    assert seed_interval([1.0], 1.25, "le").verdict == "inconclusive"


def test_interval_rule_refuses_bad_input():
    with pytest.raises(ValueError, match="relation='lt' is not allowed"):
        seed_interval([1, 2], 1.0, "lt")
    with pytest.raises(ValueError, match="must be finite"):
        seed_interval([1, float("nan")], 1.0, "le")
    with pytest.raises(ValueError, match="effect=2.0 is not allowed"):
        interval_instrument(3, 0.1, 1.25, "le", 2.0)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_interval_rule_size_is_at_most_its_level_on_each_side(n):
    # with the mean exactly on the threshold each wrong verdict has probability 2.5 % under normality
    rule = interval_instrument(n, 0.1, 1.25, "le", 1.0, draws=4000, seed=n)
    assert rule.false_pass <= 0.025 + 0.008 and rule.false_fail <= 0.025 + 0.008
    assert rule.heavy_tailed_size <= 0.04


def test_interval_rule_power_rises_with_the_effect_and_falls_with_the_spread():
    near = interval_instrument(3, 0.1, 1.25, "le", 1.15, draws=2000).power
    far = interval_instrument(3, 0.1, 1.25, "le", 0.8, draws=2000).power
    noisy = interval_instrument(3, 0.4, 1.25, "le", 0.8, draws=2000).power
    assert near < 0.5 < far and noisy < far and far > 0.95


def test_welch_rule_matches_scipy_and_has_its_size():
    a, b, c = [1.0, 2.0, 3.0], [0.0, 1.0, 0.5], [0.0, -1.0, 0.0]
    expected = max(stats.ttest_ind(a, o, equal_var=False, alternative="greater").pvalue for o in (b, c))
    assert welch_all_greater(a, [b, c]) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(welch_all_greater([1.0], [b]))
    rule = welch_instrument(3, 0.05, 0.2, comparisons=2, draws=4000)
    assert rule.false_pass <= 0.05 + 0.01 and rule.power > 0.8
    assert welch_instrument(3, 0.05, 0.02, comparisons=2, draws=2000).power < 0.5


def test_pooled_spread_is_the_within_group_sd():
    assert pooled_spread([[0.0, 2.0], [10.0, 12.0]]) == pytest.approx(np.sqrt(2.0))
    assert np.isnan(pooled_spread([[1.0]]))


def test_a_page_decides_seed_claims_by_the_rule_and_names_it_in_the_ledger():
    from nine.book.claims import render_rows
    from nine.book.page import Page

    page = Page("04_generative", {}, publish=False, profile="cpu")
    passed = page.check_seeds("a", "s", "c", [1.0, 1.02, 0.98], 1.25, "le", effect=1.0)
    unsure = page.check_seeds("b", "s", "c", [1.0, 1.3, 1.5], 1.25, "le", effect=1.0)
    failed = page.check_seeds("c", "s", "c", [2.0, 2.1, 1.9], 1.25, "le", effect=1.0)
    single = page.check_seeds("d", "s", "c", [1.0], 1.25, "le", effect=1.0)
    assert (passed.verdict, unsure.verdict, failed.verdict, single.verdict) == ("pass", "inconclusive", "FAIL", "inconclusive")
    assert passed.measured == pytest.approx(1.0) and "contains 1.25" in unsure.inconclusive
    assert "false pass" in passed.rule and "power" in passed.rule and single.rule == ""
    assert 'class="claim-rule"' in render_rows([passed], link=None)
    assert set(page.instruments) == {"a", "b", "c"}
    table = page.instrument_table().data
    assert list(table.index) == ["a", "b", "c"] and all(float(v.rstrip("%")) <= 4 for v in table["false pass"])
    assert '<a href="#claim-a"><code>a</code></a>' in page.instrument_table()._repr_html_()  # to the claim's row


def test_a_welch_claim_without_power_is_inconclusive_not_failed():
    from nine.book.page import Page

    page = Page("05_disentanglement", {}, publish=False, profile="cpu")
    rng = np.random.default_rng(0)
    noisy = page.check_welch("x", "s", "c", rng.normal(0, 0.3, 3), [rng.normal(0, 0.3, 3)], effect=0.05)
    sharp = page.check_welch("y", "s", "c", [0.0, 0.01, -0.01], [[0.3, 0.31, 0.29]], effect=0.1)
    better = page.check_welch("z", "s", "c", [0.5, 0.51, 0.49], [[0.0, 0.01, -0.01]], effect=0.1)
    assert noisy.verdict == "inconclusive" and "power" in noisy.inconclusive
    assert sharp.verdict == "FAIL" and better.verdict == "pass"


LEVELS = np.repeat([0.1, 0.3, 0.5, 1.0, 2.0], 3)  # 02's five noise levels, three seeds each


def test_trend_rule_is_scipy_s_spearman_test_both_ways_where_the_runs_are_many():
    rng = np.random.default_rng(3)
    for _ in range(5):
        values = rng.normal(size=len(LEVELS)) - 0.5 * np.arange(len(LEVELS)) // 3
        reading = trend_decrease(LEVELS, values)
        for side, p in (("less", reading.p_fall), ("greater", reading.p_rise)):
            assert p == pytest.approx(stats.spearmanr(LEVELS, values, alternative=side).pvalue, rel=1e-10)
        assert reading.rho == pytest.approx(stats.spearmanr(LEVELS, values).statistic)
    assert np.isnan(trend_decrease([1.0, 2.0], [0.3, 0.1]).p_fall)  # two runs: no test
    assert np.isnan(trend_decrease([1.0, 1.0, 1.0], [0.3, 0.1, 0.2]).p_fall)  # one level: no test
    with pytest.raises(ValueError, match="not allowed to differ in length"):
        trend_decrease([1.0, 2.0, 3.0], [0.1, 0.2])
    assert level_spread([1, 1, 2, 2], [0.0, 2.0, 10.0, 12.0]) == pytest.approx(np.sqrt(2.0))


@pytest.mark.parametrize("levels", [np.repeat([1.0, 2.0], 3), np.repeat([0.5, 1.0, 2.0], [2, 3, 2]), [1.0, 1.0, 2.0]])
def test_trend_rule_is_exact_where_the_runs_are_few(levels):
    # every permutation of the values (each distinct arrangement of the levels equally often), ties included
    import itertools

    levels = np.asarray(levels, dtype=float)
    assert arrangements(levels) <= EXACT_LIMIT
    rng = np.random.default_rng(5)
    for values in (rng.normal(size=len(levels)), np.round(rng.normal(size=len(levels)), 0), -levels):
        reading = trend_decrease(levels, values)
        rhos = np.array([stats.spearmanr(levels, np.array(order)).statistic
                         for order in itertools.permutations(values)])
        assert reading.p_fall == pytest.approx(np.mean(rhos <= reading.rho + 1e-9), abs=1e-12)
        assert reading.p_rise == pytest.approx(np.mean(rhos >= reading.rho - 1e-9), abs=1e-12)
    # complete separation of 2 levels × 3 seeds: one arrangement of 20, so p = 1/20, not the t approximation's 0.0046
    separated = trend_decrease(np.repeat([1.0, 2.0], 3), [6, 5, 4, 3, 2, 1])
    assert separated.p_fall == pytest.approx(1 / 20) and separated.p_rise == 1.0
    assert len(level_arrangements(np.repeat([1.0, 2.0], 3))) == 20 == arrangements(np.repeat([1.0, 2.0], 3))


@pytest.mark.parametrize("levels", [LEVELS, np.repeat([1.0, 2.0], 3)])
def test_trend_rule_size_is_its_level_and_its_power_grows_with_the_fall(levels):
    flat = trend_instrument(levels, 0.2, effect=1.0, draws=4000)
    assert flat.false_pass <= 0.05 + 0.01 and flat.heavy_tailed_size <= 0.05 + 0.015
    if flat.power >= 0.5:  # "neither a fall nor a rise" fails: every run that does not pass
        assert flat.false_fail == pytest.approx(1 - flat.power, abs=0.005)
    else:  # it reads inconclusive: a true fall fails only by a significant rise, which is rare
        assert flat.false_fail < 0.01 and flat.false_fail < 1 - flat.power
    steeper = trend_instrument(levels, 0.2, effect=3.0, draws=4000)
    assert steeper.power > flat.power
    assert trend_instrument(levels, 5.0, effect=1.0).power == pytest.approx(flat.power, abs=0.03)  # in spreads: scale-free
    with pytest.raises(ValueError, match="not allowed"):
        trend_instrument([1.0, 2.0], 0.2)


def test_share_rule_reads_the_interval_of_the_difference():
    plain = [0.90, 0.89, 0.91]
    assert share_interval([0.87, 0.86, 0.88], plain, 0.9).verdict == "pass"  # ≈ 0.967 of the reference, tight
    assert share_interval([0.70, 0.71, 0.69], plain, 0.9).verdict == "FAIL"
    unsure = share_interval([0.70, 0.95, 0.80], plain, 0.9)
    assert unsure.verdict == "inconclusive" and "contains 0" in unsure.reason
    assert unsure.mean == pytest.approx(np.mean([0.70, 0.95, 0.80]) / 0.9)  # the row shows the ratio of means
    assert share_interval([0.8], plain, 0.9).verdict == "inconclusive"
    with pytest.raises(ValueError, match="not allowed to hold NaN"):
        share_interval([0.8, float("nan")], plain, 0.9)


def test_share_rule_size_is_at_most_its_level_on_each_side():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.85, 0.02, 3), rng.normal(0.9, 0.01, 3)
    rule = share_instrument(a, b, 0.9, effect=1.0, draws=4000)
    assert rule.false_pass <= 0.025 + 0.008 and rule.false_fail <= 0.025 + 0.008
    assert rule.power > 0.5  # a spread of 0.02 on accuracies near 0.9: a 10 % gap is plain to see
    with pytest.raises(ValueError, match="not allowed"):
        share_instrument(a, b, 0.9, effect=0.8)


def test_a_trend_claim_fails_on_a_rise_and_without_power_is_inconclusive():
    from nine.book.page import Page

    page = Page("02_gaussian_matching", {}, publish=False, profile="cpu")
    rng = np.random.default_rng(1)
    steps = np.arange(len(LEVELS)) // 3
    fall = page.check_trend("fall", "s", "c", LEVELS, 1.0 - 0.5 * steps + rng.normal(0, 0.1, len(LEVELS)))
    rise = page.check_trend("rise", "s", "c", LEVELS, 1.0 + 0.5 * steps + rng.normal(0, 0.1, len(LEVELS)))
    two = np.repeat([1.0, 2.0], 3)
    flat = page.check_trend("flat", "s", "c", two, [0.5, 0.9, 0.2, 0.6, 0.3, 0.8])
    few = page.check_trend("few", "s", "c", [1.0, 2.0], [0.5, 0.4])
    assert (fall.verdict, rise.verdict, flat.verdict, few.verdict) == ("pass", "FAIL", "inconclusive", "inconclusive")
    assert "cannot tell" in flat.inconclusive and "no test" in few.inconclusive and "not run here" in few.rule
    assert page.ledger.claims["rise"].reason.startswith("the values rise with the noise instead (ρ = ")
    page.explain("rise", "what limits its runs: none found")  # a second reason is joined, not put in its place
    assert page.ledger.claims["rise"].reason.endswith("; what limits its runs: none found")
    assert "Spearman" in fall.rule and "power" in rise.rule
    share = page.check_share("share", "s", "c", [0.87, 0.86, 0.88], [0.90, 0.89, 0.91], 0.9)
    assert share.verdict == "pass" and share.measured == pytest.approx(0.8700 / 0.9000) and "Welch interval of mean − 0.9 × reference" in share.rule
    caption = page.instrument_table().caption
    assert "Spearman (trend_decrease" in caption and "share interval (share_interval" in caption and "Welch (" not in caption


def test_a_welch_rule_fails_a_true_difference_only_where_it_has_the_power_to_see_it():
    """Below 50% power a p above α reads inconclusive, so the rule's false FAIL is 0 there, not 1 − power."""
    weak, strong = welch_instrument(3, 1.0, 0.5, 1, draws=2000), welch_instrument(3, 1.0, 5.0, 1, draws=2000)
    assert weak.power < 0.5 and weak.false_fail == 0.0
    assert strong.power >= 0.5 and strong.false_fail == pytest.approx(1 - strong.power)
