"""The seed rules of pages 04–07: known answers, and their simulated size and power."""

import numpy as np
import pytest
from scipy import stats

from nine.eval.seed_rules import (
    interval_instrument,
    pooled_spread,
    seed_interval,
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


def test_a_welch_claim_without_power_is_inconclusive_not_failed():
    from nine.book.page import Page

    page = Page("05_disentanglement", {}, publish=False, profile="cpu")
    rng = np.random.default_rng(0)
    noisy = page.check_welch("x", "s", "c", rng.normal(0, 0.3, 3), [rng.normal(0, 0.3, 3)], effect=0.05)
    sharp = page.check_welch("y", "s", "c", [0.0, 0.01, -0.01], [[0.3, 0.31, 0.29]], effect=0.1)
    better = page.check_welch("z", "s", "c", [0.5, 0.51, 0.49], [[0.0, 0.01, -0.01]], effect=0.1)
    assert noisy.verdict == "inconclusive" and "power" in noisy.inconclusive
    assert sharp.verdict == "FAIL" and better.verdict == "pass"
