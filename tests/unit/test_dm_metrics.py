"""Distribution-matching statistics against scipy and closed forms, on prior samples and near misses."""

import numpy as np
import pytest
from scipy import stats

from nine.metrics import (
    anderson_darling_per_coordinate,
    energy_distance,
    kl_knn,
    max_offdiagonal_correlation,
    sample_prior,
    sliced_wasserstein,
)


def test_anderson_darling_matches_scipy_goodness_of_fit():
    z = np.random.default_rng(0).standard_normal((300, 2))
    ours = anderson_darling_per_coordinate(z)
    for k in range(2):
        ref = stats.goodness_of_fit(stats.norm, z[:, k], known_params={"loc": 0, "scale": 1}, statistic="ad",
                                    n_mc_samples=99, random_state=0)
        assert ours[k] == pytest.approx(ref.statistic, rel=1e-9)
    u = np.random.default_rng(1).uniform(size=(500, 1))
    assert anderson_darling_per_coordinate(u, "uniform")[0] < 2.5  # 5% critical value ≈ 2.49
    assert anderson_darling_per_coordinate(u + 0.1, "uniform")[0] > 10


def test_energy_distance_matches_scipy_in_one_dimension_and_tests_sameness():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((200, 1)), rng.standard_normal((150, 1)) + 0.5
    ours, _ = energy_distance(x, y)
    assert ours == pytest.approx(stats.energy_distance(x[:, 0], y[:, 0]) ** 2, rel=1e-9)  # scipy returns the root
    same_p = energy_distance(rng.standard_normal((150, 3)), sample_prior("gaussian", 150, 3, seed=5), 99)[1]
    shifted_p = energy_distance(rng.standard_normal((150, 3)) * 1.5, sample_prior("gaussian", 150, 3, seed=6), 99)[1]
    assert same_p > 0.05 and shifted_p <= 0.02


def test_sliced_wasserstein_in_one_dimension_is_wasserstein():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 1)), rng.standard_normal((300, 1)) + 1.0
    assert sliced_wasserstein(x, y, projections=5) == pytest.approx(stats.wasserstein_distance(x[:, 0], y[:, 0]))
    assert sliced_wasserstein(rng.standard_normal((500, 4)), rng.standard_normal((500, 4))) < 0.1


def test_correlation_and_knn_kl_against_closed_forms():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2000, 1))
    z = np.hstack([a, 0.6 * a + 0.8 * rng.standard_normal((2000, 1))])
    assert max_offdiagonal_correlation(z) == pytest.approx(0.6, abs=0.03)
    x = rng.standard_normal((3000, 2)) + np.array([1.0, 0.0])  # KL(N(μ, I) ‖ N(0, I)) = |μ|²/2 = 0.5
    assert kl_knn(x, sample_prior("gaussian", 3000, 2, seed=7)) == pytest.approx(0.5, abs=0.1)
    assert abs(kl_knn(rng.standard_normal((3000, 2)), sample_prior("gaussian", 3000, 2, seed=8))) < 0.05


def test_calibrated_report_separates_a_near_miss_from_the_prior():
    from nine.metrics import calibrated_dm_report

    rng = np.random.default_rng(9)
    matched = calibrated_dm_report(rng.standard_normal((400, 2)), "gaussian", permutations=49)
    t3 = rng.standard_t(df=3, size=(400, 2)) / np.sqrt(3)  # unit variance, heavy tails
    near_miss = calibrated_dm_report(t3, "gaussian", permutations=49)
    assert set(matched) == {"embedding", "prior sample"} and len(matched["embedding"]) == 7
    assert matched["embedding"]["energy p-value"] > 0.05
    assert near_miss["embedding"]["max Anderson-Darling"] > 2.49  # the 5% critical value for a known law
    assert matched["embedding"]["max Anderson-Darling"] < 2.49
    assert near_miss["embedding"]["sliced Wasserstein"] > 2 * matched["embedding"]["sliced Wasserstein"]
