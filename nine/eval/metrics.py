"""Distribution-matching statistics and downstream probes on embeddings (numpy in, floats out)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nine.priors import CLIP
from nine.priors import get as get_prior


def as_matrix(z: np.ndarray, min_rows: int = 2) -> np.ndarray:
    """z as a float64 n×d array; ValueError unless it has >= ``min_rows`` rows and only finite values."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < min_rows:
        raise ValueError(f"embeddings of shape {z.shape} are not allowed: need an n×d array with n >= {min_rows}")
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(axis=1).sum())
        raise ValueError(f"embeddings with {bad} non-finite row(s) (NaN or inf) are not allowed: every value must be finite")
    return z


def prior_cdf(prior: str):
    """The per-coordinate CDF of ``prior`` (:mod:`nine.priors`): N(0, 1) for gaussian, U(0, 1) for uniform, …"""
    return get_prior(prior).cdf


def ks_per_coordinate(z: np.ndarray, prior: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """Kolmogorov–Smirnov statistic and p-value of each coordinate of z (n×d) against the prior's marginal."""
    cdf = prior_cdf(prior)
    results = [stats.kstest(column, cdf) for column in as_matrix(z).T]
    return np.array([r.statistic for r in results]), np.array([r.pvalue for r in results])


def ks_critical_value(n: int, alpha: float = 0.05) -> float:
    """The KS statistic that a sample of size n drawn from the prior itself exceeds with probability alpha."""
    return float(stats.kstwo.ppf(1.0 - alpha, n))


def linear_probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression fitted on standardised train embeddings."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(as_matrix(z_train), y_train)
    return float(probe.score(as_matrix(z_test), y_test))


MLP_PROBE = dict(hidden=256, max_iter=300, seed=0)  # the fixed protocol of the MLP probe


def mlp_probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                       hidden: int = MLP_PROBE["hidden"], max_iter: int = MLP_PROBE["max_iter"],
                       seed: int = MLP_PROBE["seed"]) -> float:
    """Test accuracy of a one-hidden-layer MLP (ReLU, Adam, sklearn's defaults otherwise) fitted on
    standardised train embeddings: a readout that, unlike the linear probe, can use classes that are not
    linearly separable (sub-clusters of a digit)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    probe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of iterations is the protocol
        probe.fit(as_matrix(z_train), y_train)
    return float(probe.score(as_matrix(z_test), y_test))


def knn_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, k: int = 5
) -> float:
    """Test accuracy of a k-nearest-neighbour classifier (Euclidean) in the embedding space."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(as_matrix(z_train), y_train)
    return float(knn.score(as_matrix(z_test), y_test))


def matching_report(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, prior: str
) -> dict[str, float | list[float]]:
    """The distribution-matching and downstream figures of one run, computed on the test embeddings."""
    ks, pvalues = ks_per_coordinate(z_test, prior)
    z = as_matrix(z_test)
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
    """n samples of the prior (N(0, I_d), U[0, 1]^d, …) from ``np.random.default_rng(seed)``."""
    return get_prior(prior).sample(n, d, seed)


def anderson_darling_per_coordinate(z: np.ndarray, prior: str = "gaussian") -> np.ndarray:
    """Anderson–Darling statistic A² of each coordinate against the prior's fully specified marginal."""
    z = as_matrix(z)
    n = len(z)
    cdf = np.clip(np.sort(prior_cdf(prior)(z), axis=0), 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)[:, None]
    return -n - ((2 * i - 1) * (np.log(cdf) + np.log1p(-cdf[::-1]))).sum(0) / n


def energy_distance(x: np.ndarray, y: np.ndarray, permutations: int = 0, seed: int = 0) -> tuple[float, float]:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (V-statistic) between samples x (n×d) and y (m×d).

    With ``permutations`` > 0 also a permutation p-value of "same law" (else NaN).
    """
    from scipy.spatial.distance import cdist

    x, y = as_matrix(x), as_matrix(y)
    pooled = np.vstack([x, y])
    dist = cdist(pooled, pooled)
    n, m = len(x), len(y)

    def statistics(in_x: np.ndarray) -> np.ndarray:
        """V-statistics for every column of in_x (pooled points × labellings; 1 = the point is in x)."""
        in_y = 1.0 - in_x
        d_x = dist @ in_x  # distance of each point to the x-labelled points
        d_y = dist.sum(1, keepdims=True) - d_x
        return 2 * (in_y * d_x).sum(0) / (n * m) - (in_x * d_x).sum(0) / n**2 - (in_y * d_y).sum(0) / m**2

    observed = float(statistics((np.arange(n + m) < n)[:, None].astype(float))[0])
    if permutations <= 0:
        return observed, float("nan")
    rng = np.random.default_rng(seed)
    labellings = np.stack([rng.permutation(n + m) < n for _ in range(permutations)], axis=1).astype(float)
    exceed = int((statistics(labellings) >= observed - 1e-12 * abs(observed)).sum())
    return observed, float((exceed + 1) / (permutations + 1))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, projections: int = 200, seed: int = 0) -> float:
    """Mean 1-Wasserstein distance between x and y projected on random unit directions."""
    x, y = as_matrix(x), as_matrix(y)
    directions = np.random.default_rng(seed).standard_normal((projections, x.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return float(np.mean([stats.wasserstein_distance(x @ v, y @ v) for v in directions]))


def max_offdiagonal_correlation(z: np.ndarray) -> float:
    """Largest |Pearson correlation| between two different coordinates (0 for d = 1)."""
    z = as_matrix(z)
    if z.shape[1] < 2:
        return 0.0
    corr = np.corrcoef(z, rowvar=False)
    return float(np.abs(corr[~np.eye(len(corr), dtype=bool)]).max())


def kl_knn(x: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """kNN estimate of KL(law of x ‖ law of y) in nats (Wang, Kulkarni and Verdú, 2009).

    D̂ = (d/n) Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1)), with ρ_k(i) the distance from x_i to its
    k-th neighbour among the other x and ν_k(i) to its k-th neighbour among y. Infinite when a point
    of x is repeated more than k times (x then has atoms).
    """
    from scipy.spatial import cKDTree

    x, y = as_matrix(x), as_matrix(y)
    n, d = x.shape
    rho = cKDTree(x).query(x, k=k + 1)[0][:, k]
    if (rho == 0).any():  # a point repeated more than k times: x has atoms, and a law with atoms
        return math.inf  # has infinite KL divergence to a continuous law (e.g. a collapsed encoder)
    nu = cKDTree(y).query(x, k=k)[0]
    nu = nu[:, k - 1] if nu.ndim == 2 else nu
    return float(d * np.mean(np.log(nu / rho)) + np.log(len(y) / (n - 1)))


DM_COLUMNS = {  # column → what it is (rendered under the table of the notebooks)
    "ks_max": "largest per-coordinate KS statistic, clean test embeddings",
    "ks_view_max": "largest per-coordinate KS statistic, one augmented view per test digit",
    "ad_max": "largest per-coordinate Anderson–Darling A²",
    "energy": "energy distance to as many prior samples",
    "energy_p": "permutation p-value of the energy distance (200 permutations)",
    "sw": "sliced 1-Wasserstein distance (200 directions)",
    "max_corr": "largest |correlation| between two coordinates",
    "kl_knn": "kNN estimate of KL(embedding law ‖ prior) in nats",
}


def dm_statistics(z: np.ndarray, z_view: np.ndarray, prior: str, permutations: int = 200, seed: int = 0) -> dict[str, float]:
    """The columns of :data:`DM_COLUMNS` for clean test embeddings z (and their views z_view)."""
    reference = sample_prior(prior, len(z), z.shape[1], seed=seed)
    energy, energy_p = energy_distance(z, reference, permutations, seed)
    return {
        "ks_max": float(ks_per_coordinate(z, prior)[0].max()),
        "ks_view_max": float(ks_per_coordinate(z_view, prior)[0].max()),
        "ad_max": float(anderson_darling_per_coordinate(z, prior).max()),
        "energy": energy,
        "energy_p": energy_p,
        "sw": sliced_wasserstein(z, reference, seed=seed),
        "max_corr": max_offdiagonal_correlation(z),
        "kl_knn": kl_knn(z, reference),
    }


SQUASHES = (None, "head", "normal", "logistic")


def standardise_like_train(z_train: np.ndarray, parts: dict[str, np.ndarray], squash: str | None,
                           prior: str) -> dict[str, np.ndarray]:
    """Each coordinate of every array in ``parts`` standardised with the mean and standard deviation of
    the same coordinate of ``z_train``, then mapped onto the prior (:meth:`nine.priors.Prior.from_normal`:
    the identity for the Gaussian prior, Φ for the uniform one).

    ``squash``: the function the head ends with, undone before standardising: "head" for the prior's NINE
    head (:meth:`nine.priors.Prior.to_normal`; Φ⁻¹ of values clipped to [CLIP, 1 − CLIP] for the uniform
    prior), "normal" for Φ whatever the prior, "logistic" for the sigmoid (adversarial matching to the
    uniform prior), None.
    For a NINE head this recomputes the statistics of its BatchNorm on the clean train views (the
    BatchNorm of eval mode uses running statistics of noisy, randomly cropped views instead); for any
    other encoder it is the most favourable affine map to N(0, 1) per coordinate, before Φ.
    """
    if squash not in SQUASHES:
        raise ValueError(f"squash={squash!r} is not allowed: must be one of {SQUASHES}")

    law = get_prior(prior)

    def unsquash(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if squash is None:
            return z
        if squash == "head":
            return law.to_normal(z)
        z = np.clip(z, CLIP, 1 - CLIP)
        return stats.norm.ppf(z) if squash == "normal" else np.log(z) - np.log1p(-z)

    h_train = unsquash(z_train)
    mean, std = h_train.mean(0), h_train.std(0, ddof=1)
    out = {name: (unsquash(z) - mean) / std for name, z in parts.items()}
    return {name: law.from_normal(h) for name, h in out.items()}


def calibration(prior: str, n: int, d: int, draws: int = 20, permutations: int = 200,
                n_train: int | None = None) -> dict[str, float]:
    """Mean of each DM statistic over ``draws`` samples of n points drawn from the prior itself:
    what perfect matching scores at this n and d (reference samples independent of them).

    With ``n_train``, each sample is first pushed through the evaluation path of the matching pages
    (:func:`standardise_like_train` with n_train further prior points as the train embeddings): the
    positive control that this path does not by itself move a perfect sample away from the prior."""
    rows = []
    for draw in range(draws):
        sample, view = sample_prior(prior, n, d, seed=1000 + 2 * draw), sample_prior(prior, n, d, seed=1001 + 2 * draw)
        if n_train is not None:
            train = sample_prior(prior, n_train, d, seed=5000 + draw)
            moved = standardise_like_train(train, {"z": sample, "view": view}, "head", prior)
            sample, view = moved["z"], moved["view"]
        rows.append(dm_statistics(sample, view, prior, permutations, seed=draw))
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
