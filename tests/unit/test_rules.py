"""Decision rules with known answers: sizes on samples of the prior, power against the t alternative."""

import math

import numpy as np
import pytest
from scipy import stats

from nine.eval import rules


def test_t_law_distance_to_the_normal_by_quadrature_matches_monte_carlo():
    dof = 5.0
    scale = math.sqrt((dof - 2) / dof)
    x = stats.t(dof, scale=scale).rvs(400_000, random_state=0)
    monte_carlo = float(np.mean(stats.t(dof, scale=scale).logpdf(x) - stats.norm.logpdf(x)))
    assert rules.t_kl_to_normal(dof) == pytest.approx(monte_carlo, abs=2e-3)
    assert rules.t_kl_to_normal(1e5) < 1e-6  # a t law with many degrees of freedom is the normal
    dof = rules.t_dof_at(0.5, 4)
    assert 4 * rules.t_kl_to_normal(dof) == pytest.approx(0.5, rel=1e-4)


def test_ks_rules_are_invariant_under_the_uniform_priors_bijection():
    z = np.random.default_rng(0).standard_normal((300, 3))
    gaussian = rules.max_ks_bonferroni(z, "gaussian")
    uniform = rules.max_ks_bonferroni(stats.norm.cdf(z), "uniform")
    assert gaussian.statistic == pytest.approx(uniform.statistic, abs=1e-12)


def test_the_simulated_null_rule_has_its_size_and_the_fixed_rules_do_not():
    n, d, n_train = 200, 4, 800
    path = lambda z, prior: rules.max_ks_path(z, prior, n_train=n_train)  # noqa: E731
    size = rules.rejection_rate(path, "gaussian", n, d, n_train, draws=400, seed=7)
    assert size["low"] <= 0.05 <= size["high"] + 0.01 and size["rate"] <= 0.08
    uncorrected = rules.rejection_rate(rules.max_ks_uncorrected, "gaussian", n, d, n_train, draws=400, seed=7)
    assert uncorrected["low"] > 0.1  # "any coordinate beyond its own 5% value": far above 5% at d = 4


def test_power_grows_with_the_distance_and_a_shifted_sample_fails():
    n, d, n_train = 500, 2, 2000
    path = lambda z, prior: rules.max_ks_path(z, prior, n_train=n_train)  # noqa: E731
    weak = rules.rejection_rate(path, "gaussian", n, d, n_train, draws=100, kl=0.02, seed=3)["rate"]
    strong = rules.rejection_rate(path, "gaussian", n, d, n_train, draws=100, kl=0.5, seed=3)["rate"]
    assert strong > 0.9 and strong > weak
    shifted = np.random.default_rng(1).standard_normal((n, d)) + np.array([0.3, 0.0])  # not through the path
    assert rules.max_ks_path(shifted, "gaussian", n_train=n_train).rejected


def test_wilson_interval_has_its_textbook_values():
    low, high = rules.wilson(5, 100)
    assert (round(low, 4), round(high, 4)) == (0.0215, 0.1118)
