import math

import numpy as np
import pytest
from scipy import stats

from nine import theory
from nine.eval.metrics import knn_accuracy, ks_critical_value, ks_per_coordinate, linear_probe_accuracy, matching_report
from nine.theory import (
    capacity_gaussian,
    capacity_uniform,
    eps_at_capacity,
    infonce_ceiling,
    sigma_at_capacity,
)


def test_ks_matches_scipy_and_separates_near_miss():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1000, 3))
    ks, p = ks_per_coordinate(z)
    for k in range(3):
        ref = stats.kstest(z[:, k], "norm")
        assert ks[k] == pytest.approx(ref.statistic) and p[k] == pytest.approx(ref.pvalue)
    calibration = ks_per_coordinate(rng.standard_normal((1000, 400)))[0]  # 400 samples of the prior itself
    assert 0.02 < np.mean(calibration > ks_critical_value(1000)) < 0.09  # rejects about 5% of them
    near_miss = rng.standard_t(df=3, size=(1000, 1))  # heavy tails, unit-ish scale
    assert ks_per_coordinate(near_miss)[0][0] > ks_critical_value(1000)
    u = rng.uniform(size=(1000, 2))
    assert ks_per_coordinate(u, "uniform")[0].max() < ks_critical_value(1000, alpha=0.001)
    with pytest.raises(ValueError, match="prior='cauchy' is unknown"):
        ks_per_coordinate(u, "cauchy")


def test_ks_critical_value_is_asymptotic_formula():
    assert ks_critical_value(1000) == pytest.approx(1.358 / math.sqrt(1000), rel=0.01)


def test_probes_against_sklearn():
    rng = np.random.default_rng(1)
    centres = np.stack([np.cos(np.arange(10)), np.sin(np.arange(10))], 1) * 8  # ten well-separated clusters
    y = rng.integers(0, 10, 600)
    z = centres[y] + rng.standard_normal((600, 2))
    acc = linear_probe_accuracy(z[:400], y[:400], z[400:], y[400:])
    assert acc > 0.6
    assert knn_accuracy(z[:400], y[:400], z[400:], y[400:]) > 0.6
    shuffled = linear_probe_accuracy(z[:400], rng.permutation(y[:400]), z[400:], y[400:])
    assert shuffled < 0.3
    report = matching_report(z[:400], y[:400], z[400:], y[400:], "gaussian")
    assert report["linear_probe_acc"] == acc and len(report["ks"]) == 2
    with pytest.raises(ValueError, match="shape"):
        linear_probe_accuracy(z[:, 0], y, z[:, 0], y)


def test_capacities_closed_forms():
    assert capacity_gaussian(1.0, 2) == pytest.approx(math.log(2))
    assert capacity_uniform(0.5, 3) == pytest.approx(3 * math.log(2))
    assert infonce_ceiling(512) == pytest.approx(6.238, abs=1e-3)
    # the brief's σ for C_G = log 512
    for d, sigma in [(2, 0.044), (8, 0.52), (16, 0.92), (32, 1.45), (64, 2.16)]:
        assert sigma_at_capacity(math.log(512), d) == pytest.approx(sigma, abs=0.006)
        assert capacity_gaussian(sigma_at_capacity(math.log(512), d), d) == pytest.approx(math.log(512))
    assert capacity_uniform(eps_at_capacity(math.log(512), 4), 4) == pytest.approx(math.log(512))
    with pytest.raises(ValueError, match="sigma=-1 is not allowed"):
        capacity_gaussian(-1, 2)


def test_gaussian_input_mi_equals_capacity_and_kl_identity():
    for sigma in (0.3, 1.0, 2.5):
        gaussian = theory.from_scipy(stats.norm())
        assert theory.mutual_information(gaussian, "gaussian", sigma) == pytest.approx(
            float(capacity_gaussian(sigma, 1)), abs=1e-6
        )
    binary = theory.DiscreteLaw(np.array([-1.0, 1.0]), np.array([0.5, 0.5]))
    gap = float(capacity_gaussian(0.5, 1)) - theory.mutual_information(binary, "gaussian", 0.5)
    assert gap > 0.1
    assert theory.kl_to_gaussian(binary, 1.25, "gaussian", 0.5) == pytest.approx(gap, abs=1e-8)


def test_mi_of_binary_input_matches_independent_monte_carlo():
    """I(U; U+Z) for U = ±1 against a Monte-Carlo average of log p(y|u)/p(y) with the exact densities."""
    sigma = 0.8
    rng = np.random.default_rng(0)
    u = rng.choice([-1.0, 1.0], size=400_000)
    y = u + sigma * rng.standard_normal(u.size)
    log_ratio = stats.norm.logpdf(y, u, sigma) - np.log(0.5 * stats.norm.pdf(y, -1, sigma) + 0.5 * stats.norm.pdf(y, 1, sigma))
    binary = theory.DiscreteLaw(np.array([-1.0, 1.0]), np.array([0.5, 0.5]))
    assert theory.mutual_information(binary, "gaussian", sigma) == pytest.approx(log_ratio.mean(), abs=0.005)


def test_uniform_input_uniform_noise_closed_form():
    law = theory.from_scipy(stats.uniform())
    for eps in (0.5, 0.2, 0.03):
        assert theory.mutual_information(law, "uniform", eps) == pytest.approx(
            float(theory.uniform_input_mi_closed_form(eps)), abs=1e-9
        )


def test_blahut_arimoto_binary_symmetric_channel():
    for p in (0.0, 0.11, 0.3):
        w = np.array([[1 - p, p], [p, 1 - p]])
        result = theory.blahut_arimoto(w)
        assert result.capacity == pytest.approx(math.log(2) - theory.binary_entropy(p), abs=1e-8)
        assert result.input_law == pytest.approx([0.5, 0.5], abs=1e-4)
    with pytest.raises(ValueError, match="w is not allowed"):
        theory.blahut_arimoto(np.array([[0.5, 0.6]]))


def test_blahut_arimoto_uniform_channel_finds_the_lattice():
    grid, w = theory.uniform_noise_channel(0.25, 0.0625)
    result = theory.blahut_arimoto(w, tol=1e-9)
    assert result.capacity == pytest.approx(math.log(3), abs=1e-7)
    lattice = np.isin(np.round(grid, 6), [0.0, 0.5, 1.0])
    assert result.input_law[lattice] == pytest.approx([1 / 3] * 3, abs=1e-3)
    with pytest.raises(ValueError, match="step=0.3 is not allowed"):
        theory.uniform_noise_channel(0.25, 0.3)


def test_infonce_on_samples_never_exceeds_log_n():
    from nine.core.critics import QuadraticCritic

    rng = np.random.default_rng(0)
    u = rng.standard_normal((256, 64))
    estimate, stderr = theory.infonce_on_samples(u, u + 0.1 * rng.standard_normal(u.shape), QuadraticCritic(0.1), 64)
    assert estimate <= math.log(64) and estimate > math.log(64) - 0.01 and stderr >= 0
    independent, _ = theory.infonce_on_samples(u, rng.standard_normal(u.shape), QuadraticCritic(1.0), 64)
    assert independent < 0.2
    with pytest.raises(ValueError, match="batch_size=512 is not allowed"):
        theory.infonce_on_samples(u, u, QuadraticCritic(1.0), 512)
