"""Disentanglement scores of a representation against known generative factors: MIG, DCI, and the
R² of a linear map from the representation to the factors."""

from __future__ import annotations

import numpy as np

from nine.eval.metrics import as_matrix


def _check_factors(z: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = as_matrix(z)
    factors = np.asarray(factors)
    if factors.ndim != 2 or len(factors) != len(z) or not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors of shape {factors.shape} and dtype {factors.dtype} are not allowed: "
                         f"need an integer array with one row per latent ({len(z)})")
    return z, factors


def discretise(z: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each coordinate cut into ``bins`` equal-width bins over its range (integer codes, n×d)."""
    z = as_matrix(z)
    edges = [np.linspace(column.min(), column.max(), bins + 1)[1:-1] for column in z.T]
    return np.stack([np.digitize(column, e) for column, e in zip(z.T, edges)], axis=1)


def mutual_information_matrix(z: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """d×K matrix of I(z_i; v_k) in nats, z discretised into ``bins`` equal-width bins per coordinate."""
    from sklearn.metrics import mutual_info_score

    z, factors = _check_factors(z, factors)
    codes = discretise(z, bins)
    return np.array([[mutual_info_score(codes[:, i], factors[:, k]) for k in range(factors.shape[1])]
                     for i in range(codes.shape[1])])


def mig(z: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual information gap (Chen et al., 2018): for each factor, the gap between the two latents
    most informative about it, divided by the factor's entropy; averaged over factors. Needs d >= 2;
    factors that take a single value (zero entropy) are left out."""
    from sklearn.metrics import mutual_info_score

    z, factors = _check_factors(z, factors)
    if z.shape[1] < 2:
        raise ValueError(f"latents of dimension {z.shape[1]} are not allowed for MIG: need d >= 2")
    info = mutual_information_matrix(z, factors, bins)
    gaps = []
    for k in range(factors.shape[1]):
        entropy = mutual_info_score(factors[:, k], factors[:, k])
        if entropy > 0:
            top = np.sort(info[:, k])[::-1]
            gaps.append((top[0] - top[1]) / entropy)
    return float(np.mean(gaps))


def _entropy_base(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy with log base ``base`` of each column of p (columns sum to 1)."""
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(0) / np.log(base)


def dci(z_train: np.ndarray, f_train: np.ndarray, z_test: np.ndarray, f_test: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood and Williams, 2018).

    The regressor is a random forest (scikit-learn ``RandomForestClassifier``, 100 trees of depth at
    most 8, every split choosing among all latents) per factor, classifying the factor's index from the
    latents; its impurity-based feature importances form the d×K importance matrix R. (Letting each
    split see only a random subset of latents, the scikit-learn default, spreads importance onto
    irrelevant latents: on latents equal to the factors plus noise it gives R ≈ 0.85 on the diagonal
    instead of 0.95.) Disentanglement: 1 − H_K of each latent's row of
    R (normalised), weighted by the latent's share of the total importance; completeness: the mean over
    factors of 1 − H_d of the factor's column; informativeness: mean test accuracy of the classifiers.
    """
    from sklearn.ensemble import RandomForestClassifier

    z_train, f_train = _check_factors(z_train, f_train)
    z_test, f_test = _check_factors(z_test, f_test)
    d, k = z_train.shape[1], f_train.shape[1]
    importance = np.zeros((d, k))
    accuracy = []
    for j in range(k):
        forest = RandomForestClassifier(n_estimators=100, max_depth=8, max_features=None, random_state=seed, n_jobs=1)
        forest.fit(z_train, f_train[:, j])
        importance[:, j] = forest.feature_importances_
        accuracy.append(forest.score(z_test, f_test[:, j]))
    importance = np.abs(importance) + 1e-12
    per_latent = _entropy_base((importance / importance.sum(1, keepdims=True)).T, k) if k > 1 else np.zeros(d)
    weights = importance.sum(1) / importance.sum()
    per_factor = _entropy_base(importance / importance.sum(0, keepdims=True), d) if d > 1 else np.zeros(k)
    return {
        "disentanglement": float(((1 - per_latent) * weights).sum()),
        "completeness": float((1 - per_factor).mean()),
        "informativeness": float(np.mean(accuracy)),
    }


def factor_r2(z_train: np.ndarray, f_train: np.ndarray, z_test: np.ndarray, f_test: np.ndarray) -> float:
    """Mean test R² of a linear regression of each factor's value on the latents (how linearly decodable)."""
    from sklearn.linear_model import LinearRegression

    z_train, f_train = _check_factors(z_train, np.asarray(f_train).astype(np.int64))
    z_test, f_test = _check_factors(z_test, np.asarray(f_test).astype(np.int64))
    scores = []
    for j in range(f_train.shape[1]):
        if np.ptp(f_train[:, j]) > 0:
            scores.append(LinearRegression().fit(z_train, f_train[:, j]).score(z_test, f_test[:, j]))
    return float(np.mean(scores))


def random_rotation(d: int, seed: int = 0) -> np.ndarray:
    """A d×d orthogonal matrix drawn uniformly (Haar) from O(d): QR of a Gaussian matrix, signs fixed."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))
