"""Distribution-matching statistics against scipy and closed forms, on prior samples and near misses."""

import numpy as np
import pytest
from scipy import stats

from nine.eval.metrics import (
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


def test_dm_statistics_separate_a_near_miss_from_the_prior_and_calibration_matches_a_prior_sample():
    from nine.eval.metrics import DM_COLUMNS, calibration, dm_statistics

    rng = np.random.default_rng(9)
    z = rng.standard_normal((400, 2))
    matched = dm_statistics(z, rng.standard_normal((400, 2)), "gaussian", permutations=49)
    t3 = rng.standard_t(df=3, size=(400, 2)) / np.sqrt(3)  # unit variance, heavy tails
    near_miss = dm_statistics(t3, t3, "gaussian", permutations=49)
    assert set(matched) == set(DM_COLUMNS)
    assert matched["energy_p"] > 0.05 and matched["ad_max"] < 2.49  # 2.49: A² 5% critical value, known law
    assert near_miss["ad_max"] > 2.49 and near_miss["sw"] > 2 * matched["sw"]
    reference = calibration("gaussian", 400, 2, draws=5, permutations=19)
    assert reference["ks_max"] < 0.1 and abs(reference["kl_knn"]) < 0.05 and reference["energy_p"] > 0.2
    uniform = calibration("uniform", 400, 3, draws=3, permutations=19)
    assert uniform["max_corr"] < 0.15 and uniform["ks_max"] < 0.1


def test_energy_permutation_p_value_equals_brute_force_relabelling():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((30, 2)), rng.standard_normal((20, 2)) + 0.3
    observed, p = energy_distance(x, y, permutations=50, seed=3)
    pooled = np.vstack([x, y])
    perm_rng = np.random.default_rng(3)
    exceed = 0
    for _ in range(50):
        mask = perm_rng.permutation(50) < 30
        exceed += energy_distance(pooled[mask], pooled[~mask])[0] >= observed - 1e-12 * observed
    assert p == pytest.approx((exceed + 1) / 51)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_are_refused_with_one_line(bad):
    z = np.random.default_rng(11).standard_normal((50, 2))
    z[3, 1] = bad
    for statistic in (lambda: energy_distance(z, z), lambda: kl_knn(z, z), lambda: anderson_darling_per_coordinate(z)):
        with pytest.raises(ValueError, match=r"1 non-finite row\(s\).*must be finite") as err:
            statistic()
        assert "\n" not in str(err.value)


def test_knn_kl_of_a_law_with_atoms_is_infinite():
    points = np.random.default_rng(12).standard_normal((10, 2))
    assert kl_knn(np.repeat(points, 6, axis=0), sample_prior("gaussian", 100, 2)) == np.inf  # each point 6 times
    assert np.isfinite(kl_knn(np.repeat(points, 5, axis=0), sample_prior("gaussian", 100, 2)))  # 5 times: k = 5 copes


def test_energy_distance_and_sliced_wasserstein_agree_with_maintained_libraries():
    """nine keeps its own energy test for one reason: the permutation p-value is computed for all
    labellings in one matrix product. Its statistic must equal dcor's, its p-value follow dcor's
    permutation test, and the sliced Wasserstein distance POT's (with many directions)."""
    import dcor
    import ot

    from nine.eval.metrics import energy_distance, sliced_wasserstein

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 4)), rng.standard_normal((200, 4)) + 0.15
    statistic, p = energy_distance(x, y, permutations=499, seed=1)
    assert statistic == pytest.approx(dcor.energy_distance(x, y), rel=1e-10)
    reference = dcor.homogeneity.energy_test(x, y, num_resamples=499, random_state=1).pvalue
    assert abs(p - reference) < 0.03  # two Monte-Carlo p-values of the same test
    same, _ = energy_distance(x, rng.standard_normal((200, 4)))
    assert same < statistic
    assert sliced_wasserstein(x, y, projections=3000) == pytest.approx(
        ot.sliced_wasserstein_distance(x, y, n_projections=3000, p=1, seed=0), rel=0.05)  # random directions
