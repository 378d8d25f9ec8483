"""Distribution-matching statistics and downstream probes on embeddings (numpy in, floats out)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PRIOR_CDFS = {"gaussian": stats.norm.cdf, "uniform": stats.uniform.cdf}


def _as_matrix(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"embeddings of shape {z.shape} are not allowed: need an n×d array with n >= 2")
    return z


def prior_cdf(prior: str):
    """The per-coordinate CDF of ``prior``: N(0, 1) for gaussian, U(0, 1) for uniform."""
    if prior not in PRIOR_CDFS:
        raise ValueError(f"prior={prior!r} is unknown; allowed: {', '.join(PRIOR_CDFS)}")
    return PRIOR_CDFS[prior]


def ks_per_coordinate(z: np.ndarray, prior: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """Kolmogorov–Smirnov statistic and p-value of each coordinate of z (n×d) against the prior's marginal."""
    cdf = prior_cdf(prior)
    results = [stats.kstest(column, cdf) for column in _as_matrix(z).T]
    return np.array([r.statistic for r in results]), np.array([r.pvalue for r in results])


def ks_critical_value(n: int, alpha: float = 0.05) -> float:
    """The KS statistic that a sample of size n drawn from the prior itself exceeds with probability alpha."""
    return float(stats.kstwo.ppf(1.0 - alpha, n))


def linear_probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression fitted on standardised train embeddings."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(_as_matrix(z_train), y_train)
    return float(probe.score(_as_matrix(z_test), y_test))


def knn_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, k: int = 5
) -> float:
    """Test accuracy of a k-nearest-neighbour classifier (Euclidean) in the embedding space."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(_as_matrix(z_train), y_train)
    return float(knn.score(_as_matrix(z_test), y_test))


def matching_report(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, prior: str
) -> dict[str, float | list[float]]:
    """The distribution-matching and downstream figures of one run, computed on the test embeddings."""
    ks, pvalues = ks_per_coordinate(z_test, prior)
    z = _as_matrix(z_test)
    return {
        "ks": ks.tolist(),
        "ks_pvalue": pvalues.tolist(),
        "ks_mean": float(ks.mean()),
        "ks_critical_5pct": ks_critical_value(len(z)),
        "embedding_mean": z.mean(0).tolist(),
        "embedding_std": z.std(0, ddof=1).tolist(),
        "linear_probe_acc": linear_probe_accuracy(z_train, y_train, z_test, y_test),
        "knn_acc": knn_accuracy(z_train, y_train, z_test, y_test),
    }
