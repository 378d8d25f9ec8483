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


# ---------------------------------------------------------------------------------------------
# Distribution-matching statistics beyond the marginal KS test


def sample_prior(prior: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """n samples of the prior (N(0, I_d) or U[0, 1]^d)."""
    prior_cdf(prior)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) if prior == "gaussian" else rng.uniform(size=(n, d))


def anderson_darling_per_coordinate(z: np.ndarray, prior: str = "gaussian") -> np.ndarray:
    """Anderson–Darling statistic A² of each coordinate against the prior's fully specified marginal."""
    z = _as_matrix(z)
    n = len(z)
    cdf = np.clip(np.sort(prior_cdf(prior)(z), axis=0), 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)[:, None]
    return -n - ((2 * i - 1) * (np.log(cdf) + np.log1p(-cdf[::-1]))).sum(0) / n


def energy_distance(x: np.ndarray, y: np.ndarray, permutations: int = 0, seed: int = 0) -> tuple[float, float]:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (V-statistic) between samples x (n×d) and y (m×d).

    With ``permutations`` > 0 also a permutation p-value of "same law" (else NaN).
    """
    from scipy.spatial.distance import cdist

    x, y = _as_matrix(x), _as_matrix(y)
    pooled = np.vstack([x, y])
    dist = cdist(pooled, pooled)
    n = len(x)

    def statistic(index: np.ndarray) -> float:
        a, b = index[:n], index[n:]
        return 2 * dist[np.ix_(a, b)].mean() - dist[np.ix_(a, a)].mean() - dist[np.ix_(b, b)].mean()

    identity = np.arange(len(pooled))
    observed = statistic(identity)
    if permutations <= 0:
        return float(observed), float("nan")
    rng = np.random.default_rng(seed)
    exceed = sum(statistic(rng.permutation(identity)) >= observed for _ in range(permutations))
    return float(observed), float((exceed + 1) / (permutations + 1))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, projections: int = 200, seed: int = 0) -> float:
    """Mean 1-Wasserstein distance between x and y projected on random unit directions."""
    x, y = _as_matrix(x), _as_matrix(y)
    directions = np.random.default_rng(seed).standard_normal((projections, x.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return float(np.mean([stats.wasserstein_distance(x @ v, y @ v) for v in directions]))


def max_offdiagonal_correlation(z: np.ndarray) -> float:
    """Largest |Pearson correlation| between two different coordinates (0 for d = 1)."""
    z = _as_matrix(z)
    if z.shape[1] < 2:
        return 0.0
    corr = np.corrcoef(z, rowvar=False)
    return float(np.abs(corr[~np.eye(len(corr), dtype=bool)]).max())


def kl_knn(x: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """kNN estimate of KL(law of x ‖ law of y) in nats (Wang, Kulkarni and Verdú, 2009).

    D̂ = (d/n) Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1)), with ρ_k(i) the distance from x_i to its
    k-th neighbour among the other x and ν_k(i) to its k-th neighbour among y.
    """
    from scipy.spatial import cKDTree

    x, y = _as_matrix(x), _as_matrix(y)
    n, d = x.shape
    rho = cKDTree(x).query(x, k=k + 1)[0][:, k]
    nu = cKDTree(y).query(x, k=k)[0]
    nu = nu[:, k - 1] if nu.ndim == 2 else nu
    return float(d * np.mean(np.log(nu / rho)) + np.log(len(y) / (n - 1)))


def calibrated_dm_report(z: np.ndarray, prior: str, permutations: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """Every distribution-matching statistic of z (n×d) against the prior, next to its value for an
    equally sized sample of the prior itself (what perfect matching scores at this n).

    Returns {"embedding": {...}, "prior sample": {...}}; the reference prior sample for the joint
    statistics is drawn independently of the calibration sample.
    """
    z = _as_matrix(z)
    n, d = z.shape
    reference = sample_prior(prior, n, d, seed=seed)
    calibration = sample_prior(prior, n, d, seed=seed + 1)
    report = {}
    for name, sample in (("embedding", z), ("prior sample", calibration)):
        energy, p_value = energy_distance(sample, reference, permutations, seed)
        report[name] = {
            "max KS": float(ks_per_coordinate(sample, prior)[0].max()),
            "max Anderson-Darling": float(anderson_darling_per_coordinate(sample, prior).max()),
            "energy distance": energy,
            "energy p-value": p_value,
            "sliced Wasserstein": sliced_wasserstein(sample, reference, seed=seed),
            "max |correlation|": max_offdiagonal_correlation(sample),
            "kNN KL (nats)": kl_knn(sample, reference),
        }
    return report
