"""Outlier scores in the embedding space, their evaluation, and outlier image sets available offline.

With a known prior, the prior's negative log-density of the clean embedding is an outlier score
that needs nothing fitted after training:

- Gaussian prior: ½‖z‖² (the constant (d/2)·log 2π is dropped; it does not change a ranking).
- Uniform prior: the density is constant on the cube, so it cannot rank points inside it. The head
  maps a normalised coordinate t to z = Φ(t); the score undoes that map, ½‖Φ⁻¹(z)‖², which is the
  Gaussian score of the normalised representation and ranks points by how far into the tails of the
  cube they sit.

Both are compared with two scores that are fitted on the train embeddings: the Mahalanobis distance
(mean and covariance of the train embeddings) and the distance to the k-th nearest train embedding.
Higher scores mean "more of an outlier" throughout.
"""

from __future__ import annotations

import numpy as np
import torch

from nine.core.train import embed
from nine.data import IMAGE_SHAPES, check_images, dsprites, evaluation_view, load_digits8, to_images
from nine.eval.metrics import as_matrix
from nine.priors import get as get_prior


def prior_score(z: np.ndarray, prior: str) -> np.ndarray:
    """½‖t‖² of the standard normal coordinates t of z (:meth:`nine.priors.Prior.to_normal`): the negative
    log-density up to a constant for the Gaussian prior, its normal score for the others (module docstring)."""
    law = get_prior(prior)
    z = as_matrix(z, min_rows=1)
    low, high = law.marginal.support()
    if np.isfinite(low) or np.isfinite(high):  # a bounded prior (the uniform one): its normal scores
        if z.min() < low or z.max() > high:
            raise ValueError(f"embeddings in [{z.min():.3g}, {z.max():.3g}] are not allowed for prior={prior!r}: "
                             f"need values in [{low:g}, {high:g}] (a NINE embedding of that prior)")
        z = np.clip(z, low + 1e-7, high - 1e-7)
    return 0.5 * (law.to_normal(z) ** 2).sum(1)


def mahalanobis_score(z_train: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of z to the train embeddings' mean and covariance."""
    z_train, z = as_matrix(z_train), as_matrix(z, min_rows=1)
    mean = z_train.mean(0)
    precision = np.linalg.pinv(np.atleast_2d(np.cov(z_train, rowvar=False)))
    centred = z - mean
    return np.einsum("ij,jk,ik->i", centred, precision, centred)


def knn_score(z_train: np.ndarray, z: np.ndarray, k: int = 5) -> np.ndarray:
    """Euclidean distance from each row of z to its k-th nearest train embedding."""
    from scipy.spatial import cKDTree

    z_train, z = as_matrix(z_train), as_matrix(z, min_rows=1)
    distances = cKDTree(z_train).query(z, k=k)[0]
    return distances[:, -1] if distances.ndim == 2 else distances


def detection_report(inlier_scores: np.ndarray, outlier_scores: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR (outliers as the positive class) and the false-positive rate on inliers at the
    threshold that catches 95% of the outliers."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    inlier_scores, outlier_scores = np.asarray(inlier_scores, float), np.asarray(outlier_scores, float)
    for name, s in (("inlier_scores", inlier_scores), ("outlier_scores", outlier_scores)):
        if s.ndim != 1 or len(s) == 0 or not np.isfinite(s).all():
            raise ValueError(f"{name} of shape {s.shape} is not allowed: need a non-empty vector of finite scores")
    labels = np.r_[np.zeros(len(inlier_scores)), np.ones(len(outlier_scores))]
    scores = np.r_[inlier_scores, outlier_scores]
    caught = int(np.ceil(0.95 * len(outlier_scores)))  # the highest threshold that catches 95% of the outliers
    threshold = np.sort(outlier_scores)[len(outlier_scores) - caught]
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "fpr_at_95_tpr": float((inlier_scores >= threshold).mean()),
    }


# ---------------------------------------------------------------------------------------------
# Outlier image sets (N×1×28×28 float32 in [0, 1], like the MNIST inputs)


def outlier_sets(mnist_test: torch.Tensor, n: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """Outlier sets that need no download, each of n images (fewer for the 8×8 digits if n is large):

    - "rotated MNIST": test digits turned by 90°;
    - "inverted MNIST": test digits with black and white swapped (1 − x);
    - "8×8 digits": scikit-learn's 8×8 handwritten digits, upscaled bilinearly to 28×28;
    - "dSprites": generated squares, ellipses and hearts at 28×28;
    - "pixel noise": images of independent U(0, 1) pixels.
    """
    check_images(mnist_test, "mnist_test", IMAGE_SHAPES["mnist5k"])
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r} is not allowed: must be an integer >= 1")
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(mnist_test), generator=generator)[:n]
    digits = mnist_test[pick]
    a_train, a_test, _, _ = load_digits8()
    small = to_images(np.concatenate([a_train, a_test])[:n], 8, 16.0)
    return {
        "rotated MNIST": torch.rot90(digits, 1, dims=(2, 3)).contiguous(),
        "inverted MNIST": 1.0 - digits,
        "8×8 digits": small,
        "dSprites": torch.as_tensor(dsprites.sample(n, seed=seed, size=28).images),
        "pixel noise": torch.rand((n, 1, 28, 28), generator=generator),
    }


def embed_images(run, images: torch.Tensor, name: str = "images") -> np.ndarray:
    """Clean embeddings of ``images`` by a finished run's encoder (the view its evaluation uses).

    Raises a one-line ValueError for images of the wrong shape, type or range for the run's dataset.
    """
    cfg = run.config
    check_images(images, name, IMAGE_SHAPES[cfg.dataset])
    encoder, _ = run.load_model()
    return embed(encoder, images, evaluation_view(cfg)).numpy().astype(np.float64)
