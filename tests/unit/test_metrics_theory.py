import math

import numpy as np
import pytest
from scipy import stats

from nine.metrics import knn_accuracy, ks_critical_value, ks_per_coordinate, linear_probe_accuracy, matching_report
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
