"""Outlier scores, their evaluation against scikit-learn, the offline outlier sets and bad images."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from nine.experiments.outliers import (
    detection_report,
    embed_images,
    knn_score,
    mahalanobis_score,
    outlier_sets,
    prior_score,
)


def test_prior_scores_are_the_negative_log_densities_up_to_a_constant():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((100, 3))
    from scipy import stats

    log_density = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z)
    assert np.allclose(prior_score(z, "gaussian"), -log_density - 1.5 * np.log(2 * np.pi))
    u = stats.norm.cdf(z)  # what the uniform head makes of the normalised coordinates
    assert np.allclose(prior_score(u, "uniform"), prior_score(z, "gaussian"), atol=1e-6)
    with pytest.raises(ValueError, match=r"embeddings in \[.*\] are not allowed for prior='uniform'"):
        prior_score(z, "uniform")
    with pytest.raises(ValueError, match="prior='student' is unknown"):
        prior_score(z, "student")


def test_fitted_scores_against_closed_forms():
    rng = np.random.default_rng(1)
    z_train = rng.standard_normal((5000, 2)) * np.array([1.0, 3.0])
    far = np.array([[0.0, 6.0], [2.0, 0.0]])
    assert np.allclose(mahalanobis_score(z_train, far), [4.0, 4.0], rtol=0.1)  # 6²/3² and 2²/1²
    assert knn_score(z_train, np.array([[50.0, 0.0]]), k=1)[0] == pytest.approx(50 - z_train[:, 0].max(), abs=3)
    assert (knn_score(z_train, z_train[:10], k=1) == 0).all()


def test_detection_report_agrees_with_scikit_learn():
    rng = np.random.default_rng(2)
    inliers, outliers = rng.standard_normal(700), rng.standard_normal(300) + 1.5
    report = detection_report(inliers, outliers)
    labels, scores = np.r_[np.zeros(700), np.ones(300)], np.r_[inliers, outliers]
    assert report["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert report["aupr"] == pytest.approx(average_precision_score(labels, scores))
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert report["fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])
    perfect = detection_report(np.zeros(10), np.ones(10))
    assert perfect == {"auroc": 1.0, "aupr": 1.0, "fpr_at_95_tpr": 0.0}
    with pytest.raises(ValueError, match="outlier_scores of shape .* is not allowed"):
        detection_report(inliers, np.array([np.nan]))


def test_outlier_sets_are_valid_images_and_differ_from_mnist():
    rng = torch.Generator().manual_seed(0)
    mnist = torch.rand((50, 1, 28, 28), generator=rng)
    sets = outlier_sets(mnist, n=20)
    assert set(sets) == {"rotated MNIST", "inverted MNIST", "8×8 digits", "dSprites", "pixel noise"}
    for name, images in sets.items():
        assert images.shape == (20, 1, 28, 28) and images.dtype == torch.float32, name
        assert 0 <= float(images.min()) and float(images.max()) <= 1, name
    assert torch.allclose(sets["inverted MNIST"] + torch.rot90(sets["rotated MNIST"], -1, dims=(2, 3)), torch.ones(1))
    with pytest.raises(ValueError, match=r"mnist_test of shape \(50, 28, 28\) is not allowed"):
        outlier_sets(mnist[:, 0])


def test_scoring_images_of_the_wrong_shape_or_range_fails_clearly(tiny_cfg, tmp_path):
    from nine.store import execute, load_run

    run = load_run(execute(tiny_cfg, tmp_path))
    good = torch.rand((5, 1, 28, 28))
    assert embed_images(run, good).shape == (5, tiny_cfg.d)
    with pytest.raises(ValueError, match=r"images of shape \(5, 1, 32, 32\) is not allowed: need N×1×28×28"):
        embed_images(run, torch.rand((5, 1, 32, 32)))
    with pytest.raises(ValueError, match=r"images has pixels in \[.*\]: need values in \[0, 1\] \(divide by 255\?\)"):
        embed_images(run, good * 255)
