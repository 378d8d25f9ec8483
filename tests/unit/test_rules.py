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


def test_the_energy_to_a_reference_is_the_v_statistic_of_the_two_samples():
    from nine.eval.metrics import energy_distance, sample_prior

    energy = rules.EnergyToReference("gaussian", 3, seed=4, size=600)  # under WITHIN_POINTS: every pair
    z = np.random.default_rng(1).standard_normal((150, 3)) + 0.2
    reference = sample_prior("gaussian", 600, 3, seed=4)
    v_within = energy.within * (600 - 1) / 600  # the V-statistic counts the 600 zero self-distances
    assert energy(z) + energy.within - v_within == pytest.approx(energy_distance(z, reference)[0], abs=1e-6)
    with pytest.raises(ValueError, match="d = 3"):
        energy(z[:, :2])


def test_a_simulated_p_value_counts_the_observation():
    assert rules.simulated_pvalue(2.5, np.array([1.0, 2.0, 3.0])) == 0.5
    assert rules.simulated_pvalue(9.0, np.array([1.0, 2.0, 3.0])) == 0.25  # never 0
    assert rules.rates(np.array([0.1, 0.2, 0.3, 0.4]), 0.25)["rate"] == 0.5


def test_the_energy_rule_keeps_its_size_and_rejects_a_shifted_sample():
    n, d, n_train = 100, 2, 400
    energy = rules.EnergyToReference("uniform", d, seed=0, size=2000)
    null = rules.simulate(energy, "uniform", n, d, n_train, draws=200, seed=100)
    fresh = rules.simulate(energy, "uniform", n, d, n_train, draws=200, seed=101)  # prior samples the null never saw
    size = rules.rates(fresh, float(np.quantile(null, 0.95)))
    assert size["low"] <= 0.05 <= size["high"]
    rng = np.random.default_rng(5)
    prior_sample = rules.path_sample(rng, "uniform", n, d, n_train)
    squeezed = 0.25 + 0.5 * rng.uniform(size=(n, d))  # the middle half of the square only
    assert not rules.energy_path(prior_sample, energy, null).rejected
    decision = rules.energy_path(squeezed, energy, null)
    assert decision.rejected and decision.pvalue == pytest.approx(1 / 201)


def test_simulations_are_stored_once_and_the_book_build_does_not_make_them(tmp_path, monkeypatch):
    from nine.experiments import calibration
    from nine.store import RunError

    spec = calibration.Simulation("max_ks", "gaussian", 50, 2, 100, draws=30, seed=100)
    first = calibration.simulated(spec, tmp_path)
    assert len(first) == 30 and (tmp_path / spec.key / "manifest.json").is_file()
    assert np.array_equal(calibration.simulated(spec, tmp_path), first)  # loaded, bit for bit
    assert calibration.Simulation("max_ks", "gaussian", 50, 2, 100, draws=31, seed=100).key != spec.key
    monkeypatch.setenv("NINE_NO_TRAINING", "1")
    with pytest.raises(RunError, match="simulation"):
        calibration.simulated(calibration.Simulation("max_ks", "gaussian", 50, 2, 100, draws=32), tmp_path)
    with pytest.raises(ValueError, match="statistic"):
        calibration.Simulation("median", "gaussian", 50, 2, 100, draws=30)


def test_a_rule_without_power_makes_its_verdict_inconclusive():
    import pandas as pd

    from nine.experiments.calibration import instrument_reading

    table = pd.DataFrame([
        {"rule": "r", "d": 2, "size": 0.04, "size 95% low": 0.03, "power at KL 0.1": 0.9},
        {"rule": "r", "d": 16, "size": 0.05, "size 95% low": 0.03, "power at KL 0.1": 0.3},
        {"rule": "r", "d": 8, "size": 0.2, "size 95% low": 0.15, "power at KL 0.1": 0.99},
    ])
    assert instrument_reading(table, "r", 2) == ""
    assert "30%" in instrument_reading(table, "r", 16)  # "not rejected" by a rule without power
    assert instrument_reading(table, "r", 16, rejected=True) == ""  # a rejection by a rule of size 5% stands
    assert "20.0% of prior samples" in instrument_reading(table, "r", 8, rejected=True)


def test_a_verdict_that_changes_with_the_evaluation_path_says_so():
    import pandas as pd

    from nine.experiments.sensitivity import path_note

    rows = [("a", "path", "pass"), ("a", "eval mode", "pass"), ("b", "path", "pass"), ("b", "eval mode", "FAIL")]
    sensitivity = pd.DataFrame(rows, columns=["claim", "evaluation path", "verdict"])
    assert path_note(sensitivity, "a") == ""
    assert path_note(sensitivity, "b") == "; depends on the evaluation path: pass on path, FAIL on eval mode"


def test_without_the_path_a_sample_is_the_prior_itself():
    rng = np.random.default_rng(0)
    raw = rules.path_sample(rng, "uniform", 2000, 3, n_train=0)
    assert raw.min() > 0 and raw.max() < 1 and stats.kstest(raw[:, 0], "uniform").pvalue > 0.01
    assert abs(rules.path_sample(rng, "gaussian", 2000, 3, n_train=0).mean()) < 0.1
