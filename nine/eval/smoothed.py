"""Estimates of the KL a NINE channel's certificate bounds: C − I(U; Y) = KL(P_Y ‖ smoothed prior) for the
channel Y = U + Z (the theory page), estimated from samples of U (a run's view embeddings) and checked against
a sample of the prior itself."""

from __future__ import annotations

import functools
import math

import numpy as np

from nine.eval.metrics import as_matrix, kl_knn, sample_prior
from nine.priors import get as get_prior


def smoothed_prior_sample(prior: str, noise: float, n: int, d: int, seed: int = 0) -> np.ndarray:
    """n samples of the smoothed prior of the prior's channel: N(0, (1 + σ²) I) (a Gaussian channel, noise = σ)
    or U[−ε, 1 + ε]^d (the uniform channel, noise = ε)."""
    rng = np.random.default_rng(seed)
    if get_prior(prior).gaussian_channel:
        return math.sqrt(1 + noise**2) * rng.standard_normal((n, d))
    return rng.uniform(-noise, 1 + noise, size=(n, d))


def smoothed_kl(u: np.ndarray, prior: str, noise: float, draws: int = 3, seed: int = 0, leave_out: bool = True) -> float:
    """An estimate of KL(P_Y ‖ smoothed prior) for Y = U + Z from samples u of U (nats).

    Gaussian (noise = σ): the leave-one-out plug-in E[log p̂₋ᵢ(yᵢ) − log q(yᵢ)], yᵢ = uᵢ + zᵢ, where
    p̂₋ᵢ is the mixture of N(u_j, σ² I) over j ≠ i and q = N(0, (1 + σ²) I). p̂₋ᵢ(y) is an unbiased
    estimate of the density p(y), so by Jensen's inequality the estimate is at most the KL in
    expectation: a lower estimate. Uniform (noise = ε): the kNN estimator of :func:`kl_knn` against
    as many samples of U[−ε, 1 + ε]^d (the box density is too sparse at d = 16 for a plug-in).
    With ``leave_out=False`` (Gaussian channel) the resubstitution estimate instead: the mixture over every j,
    u_i's own bump included, which puts too much density at yᵢ and so reads high; the two bracket the KL.
    Averaged over ``draws`` draws of the noise. A prior reached by a bijection of the Gaussian one (Laplace)
    is read on its channel's input, the standard normal coordinates (:meth:`nine.priors.Prior.to_normal`).
    """
    law = get_prior(prior)
    u = as_matrix(u).astype(np.float64)
    if law.gaussian_channel:
        u = law.to_normal(u)
    n, d = u.shape
    rng = np.random.default_rng(seed)
    values = []
    for draw in range(draws):
        if law.gaussian_channel:
            y = u + noise * rng.standard_normal(u.shape)
            sq = (y**2).sum(1)[:, None] + (u**2).sum(1)[None, :] - 2 * y @ u.T  # ‖y_i − u_j‖²
            logits = -np.maximum(sq, 0) / (2 * noise**2)
            if leave_out:
                np.fill_diagonal(logits, -np.inf)  # leave u_i out
            peak = logits.max(1, keepdims=True)
            log_p = (peak[:, 0] + np.log(np.exp(logits - peak).sum(1)) - math.log(n - 1 if leave_out else n)
                     - 0.5 * d * math.log(2 * math.pi * noise**2))
            log_q = -(y**2).sum(1) / (2 * (1 + noise**2)) - 0.5 * d * math.log(2 * math.pi * (1 + noise**2))
            values.append(float(np.mean(log_p - log_q)))
        else:
            y = u + rng.uniform(-noise, noise, u.shape)
            values.append(kl_knn(y, smoothed_prior_sample(prior, noise, n, d, seed=seed + 1000 + draw)))
    return float(np.mean(values))


def smoothed_prior_kl(prior: str, noise: float, d: int) -> float:
    """The exact KL of the smoothed law of a sample of the prior itself from the smoothed prior: 0 for a Gaussian
    channel (N(0, I) + N(0, σ² I) is N(0, (1 + σ²) I)); d·(log(1 + 2ε) − ε) for the uniform one (U[0, 1] + U(−ε, ε)
    is a trapezoid on [−ε, 1 + ε], not the box's uniform law: the uniform prior is not the channel's optimum)."""
    return 0.0 if get_prior(prior).gaussian_channel else float(d * (math.log1p(2 * noise) - noise))


@functools.lru_cache(maxsize=None)  # the same (prior, level, n, d) for every seed of a sweep: computed once
def smoothed_kl_floor(prior: str, noise: float, n: int, d: int, draws: int = 5) -> tuple[float, float]:
    """Mean and std of :func:`smoothed_kl` over ``draws`` samples of the prior itself, whose true value is
    :func:`smoothed_prior_kl` (0 for a Gaussian channel): what the estimator reports for a perfect match at this
    n and d; its bias is the difference."""
    values = [smoothed_kl(sample_prior(prior, n, d, seed=7000 + s), prior, noise, draws=1, seed=s) for s in range(draws)]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if draws > 1 else 0.0
