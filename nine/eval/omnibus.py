"""One matching rule with power against every departure of shape, and how far a sample is from its prior.

The energy test and the largest per-coordinate KS statistic see only some departures: at n = 1,000 and d = 16
neither sees tails that are a tenth of a nat heavier or lighter than the prior's. The **omnibus** combines four
statistics of the sample on standard normal coordinates (x = the prior's map to them, :meth:`nine.priors.Prior.to_normal`;
the identity for the Gaussian prior), each blind where another sees:

- ``mardia_skewness``: b₁ = n⁻² Σᵢⱼ (x̃ᵢᵀ S⁻¹ x̃ⱼ)³, the joint third moments (skew); one-sided.
- ``mardia_kurtosis``: b₂ = n⁻¹ Σᵢ (x̃ᵢᵀ S⁻¹ x̃ᵢ)², the tails: heavier raise it, lighter lower it; two-sided.
- ``gaussian_lr``: n (tr Σ̂ + μ̂ᵀμ̂ − log det Σ̂ − d), twice the log likelihood ratio of N(μ̂, Σ̂) against
  N(0, I): location, scale and correlation; one-sided.
- ``max_ks``: the largest per-coordinate Kolmogorov–Smirnov statistic against N(0, 1); one-sided.

(x̃ the centred sample, S its covariance with divisor n.) Each statistic's p-value is read from the same
statistics of prior samples pushed through the evaluation path (the null draws); the omnibus statistic is the
smallest of the four p-values, and its own p-value the share of null draws whose smallest p-value is at most it
(the null draws' p-values are their ranks among themselves), so the rule has its nominal size by construction.

Beside the verdict, :func:`distances` says how far: the Gaussian part of KL(sample ‖ N(0, I)) (the KL of the
Gaussian with the sample's mean and covariance), the per-coordinate excess kurtosis and skewness, and the range
of the covariance's eigenvalues.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from nine.priors import get as get_prior

PARTS = ("mardia_skewness", "mardia_kurtosis", "gaussian_lr", "max_ks")
TWO_SIDED = ("mardia_kurtosis",)
DISTANCES = ("gaussian_kl", "excess_kurtosis_mean", "excess_kurtosis_extreme", "skewness_mean", "skewness_extreme",
             "eigenvalue_min", "eigenvalue_max")  # the keys of :func:`distances`, in order


def normal_coordinates(z: np.ndarray, prior: str) -> np.ndarray:
    """z (n×d) on the prior's scale → standard normal coordinates (float64)."""
    return np.asarray(get_prior(prior).to_normal(np.asarray(z, dtype=np.float64)), dtype=np.float64)


def statistics(z: np.ndarray, prior: str) -> np.ndarray:
    """The four statistics of :data:`PARTS` of z (n×d), in that order."""
    x = normal_coordinates(z, prior)
    n, d = x.shape
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / n
    whitened = np.linalg.solve(np.linalg.cholesky(cov), centred.T).T  # rows x̃ᵢ with x̃ᵢᵀ S⁻¹ x̃ⱼ = wᵢᵀ wⱼ
    gram = whitened @ whitened.T
    skewness = float((gram * gram * gram).sum() / n**2)
    kurtosis = float((np.diag(gram) ** 2).mean())
    _, logdet = np.linalg.slogdet(cov)
    lr = float(n * (np.trace(cov) + mean @ mean - logdet - d))
    return np.array([skewness, kurtosis, lr, largest_ks(x)])


def largest_ks(x: np.ndarray) -> float:
    """The largest one-sample Kolmogorov–Smirnov statistic of the columns of x (n×d) against N(0, 1)
    (``scipy.stats.kstest`` column by column, in one vectorised pass)."""
    n = len(x)
    cdf = stats.norm.cdf(np.sort(x, axis=0))
    ranks = np.arange(1, n + 1)[:, None]
    return float(np.maximum(ranks / n - cdf, cdf - (ranks - 1) / n).max())


def description(z: np.ndarray, prior: str) -> np.ndarray:
    """The four statistics of :data:`PARTS` then the distances of :data:`DISTANCES` of z (n×d), one row."""
    found = distances(z, prior)
    return np.concatenate([statistics(z, prior), [found[name] for name in DISTANCES]])


BLOCK = 500  # rows compared with the null draws at once (a block × m × 4 comparison)


def _tails(values: np.ndarray, null: np.ndarray, own: int) -> np.ndarray:
    """Per row of ``values`` and per statistic, the p-value (1 + count of null draws at least as extreme, less
    ``own``) / (1 + m − own), two-sided for :data:`TWO_SIDED`."""
    m = len(null) - own
    out = np.empty((len(values), len(PARTS)))
    for start in range(0, len(values), BLOCK):
        block = values[start:start + BLOCK]
        upper = (1 + (null[None, :, :] >= block[:, None, :]).sum(axis=1) - own) / (1 + m)
        lower = (1 + (null[None, :, :] <= block[:, None, :]).sum(axis=1) - own) / (1 + m)
        p = upper.copy()
        for k, name in enumerate(PARTS):
            if name in TWO_SIDED:
                p[:, k] = np.minimum(1.0, 2 * np.minimum(upper[:, k], lower[:, k]))
        out[start:start + len(block)] = p
    return out


def part_pvalues(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """The p-value of each statistic of ``values`` (k×4, or 4) against the null draws (m×4): the share of
    null draws at least as extreme, counting the observation ((1 + count) / (1 + m)); two-sided for
    :data:`TWO_SIDED` (twice the smaller tail, at most 1)."""
    values = np.atleast_2d(values)[:, : len(PARTS)]  # a row of :func:`description` carries its distances after them
    return _tails(values, np.asarray(null, dtype=np.float64)[:, : len(PARTS)], own=0)


def null_min_p(null: np.ndarray) -> np.ndarray:
    """The omnibus statistic (smallest part p-value) of each null draw, each read against the m − 1 other draws
    exactly as a new observation is read against all m (a draw counted against itself would score less extreme
    than a new observation of the same value, and the test would reject a little more often than its level)."""
    null = np.asarray(null, dtype=np.float64)[:, : len(PARTS)]
    return _tails(null, null, own=1).min(axis=1)


def omnibus_pvalue(values: np.ndarray, null: np.ndarray, null_minimum: np.ndarray | None = None) -> np.ndarray | float:
    """The omnibus p-value of ``values`` (4, or k×4): the share of null draws whose smallest part p-value is at
    most the observation's, counting the observation. ``null_minimum``: :func:`null_min_p` of ``null``, when
    already computed."""
    minimum = part_pvalues(values, null).min(axis=1)
    reference = null_min_p(null) if null_minimum is None else null_minimum
    p = (1 + (reference[None, :] <= minimum[:, None]).sum(axis=1)) / (1 + len(reference))
    return float(p[0]) if np.ndim(values) == 1 else p


def distances(z: np.ndarray, prior: str) -> dict[str, float]:
    """How far z (n×d) is from its prior, on standard normal coordinates: ``gaussian_kl``, the KL of the Gaussian
    with the sample's mean and covariance from N(0, I) (nats; a prior sample of the same n scores about
    d(d + 3)/(4n) by its noise alone); per-coordinate excess kurtosis and skewness (the most extreme coordinate
    and the mean over coordinates); the smallest and largest eigenvalue of the covariance."""
    x = normal_coordinates(z, prior)
    n, d = x.shape
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False, bias=True).reshape(d, d)
    _, logdet = np.linalg.slogdet(cov)
    kurt, skew = stats.kurtosis(x, axis=0), stats.skew(x, axis=0)
    eig = np.linalg.eigvalsh(cov)
    return {"gaussian_kl": float(0.5 * (np.trace(cov) + mean @ mean - d - logdet)),
            "excess_kurtosis_mean": float(kurt.mean()), "excess_kurtosis_extreme": float(kurt[np.argmax(np.abs(kurt))]),
            "skewness_mean": float(skew.mean()), "skewness_extreme": float(skew[np.argmax(np.abs(skew))]),
            "eigenvalue_min": float(eig[0]), "eigenvalue_max": float(eig[-1])}
