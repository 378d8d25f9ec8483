"""Laws a stated distance from N(0, I_d), one for each kind of departure a matching rule must see.

Each is a law of d coordinates with mean 0 and unit variance per coordinate (the evaluation path standardises
every coordinate, so only a difference of shape or dependence is left to detect), placed at ``kl`` nats from
N(0, I_d) in all:

- ``heavy tails``: independent standardised Student t coordinates;
- ``light tails``: independent standardised generalised normal coordinates of shape β > 2 (β → ∞ is the
  uniform law: a coordinate is at most 0.174 nats from N(0, 1) this way, at β = 400);
- ``skew``: independent standardised skew-normal coordinates (at most 0.183 nats each, at shape 200);
- ``correlation``: N(0, R) with every correlation ρ (R equicorrelated);
- ``class clusters``: an equal mixture of ten Gaussian clusters, their centres a fixed draw scaled to share s²
  of each coordinate's unit variance (the KL by Monte Carlo on 100,000 points of common random numbers).

:func:`alternative` returns a sampler, or None where the law cannot be that far from N(0, I_d).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

KINDS = ("heavy tails", "light tails", "skew", "correlation", "class clusters")
HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi) + 0.5  # the entropy of N(0, 1)
CLUSTERS = 10
Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _kl_of_unit_variance(entropy: float) -> float:
    """KL(p ‖ N(0, 1)) of a law p of variance 1: the normal's entropy less p's."""
    return HALF_LOG_2PI_E - entropy


def gennorm_kl(beta: float) -> float:
    scale = math.sqrt(math.exp(special.gammaln(1 / beta) - special.gammaln(3 / beta)))
    return _kl_of_unit_variance(float(stats.gennorm(beta, scale=scale).entropy()))


def skewnorm_kl(a: float) -> float:
    law = stats.skewnorm(a)
    return _kl_of_unit_variance(float(law.entropy()) - 0.5 * math.log(float(law.var())))


def equicorrelated_kl(rho: float, d: int) -> float:
    return -0.5 * ((d - 1) * math.log1p(-rho) + math.log1p((d - 1) * rho))


def _solve(f: Callable[[float], float], target: float, low: float, high: float) -> float | None:
    if not f(low) < target < f(high):
        return None
    return float(optimize.brentq(lambda v: f(v) - target, low, high, xtol=1e-10))


def _centres(d: int) -> np.ndarray:
    u = np.random.default_rng(2024).standard_normal((CLUSTERS, d))
    u -= u.mean(axis=0)
    return u / u.std(axis=0)  # across the ten centres each coordinate has mean 0 and variance 1


def _mixture(rng: np.random.Generator, m: int, d: int, share: float) -> np.ndarray:
    labels = rng.integers(0, CLUSTERS, size=m)
    return math.sqrt(share) * _centres(d)[labels] + math.sqrt(1 - share) * rng.standard_normal((m, d))


def mixture_kl(share: float, d: int, points: int = 100_000) -> float:
    """KL(mixture ‖ N(0, I_d)) by Monte Carlo (common random numbers: smooth in ``share``)."""
    x = _mixture(np.random.default_rng(7), points, d, share)
    centres, within = math.sqrt(share) * _centres(d), 1 - share
    squared = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    log_p = special.logsumexp(-squared / (2 * within), axis=1) - math.log(CLUSTERS) - 0.5 * d * math.log(2 * math.pi * within)
    log_q = -0.5 * (x**2).sum(axis=1) - 0.5 * d * math.log(2 * math.pi)
    return float(np.mean(log_p - log_q))


@lru_cache(maxsize=128)
def parameter(kind: str, kl: float, d: int) -> float | None:
    """The parameter that puts ``kind`` at ``kl`` nats from N(0, I_d) (None where it cannot be that far)."""
    per = kl / d
    if kind == "heavy tails":
        from nine.eval.rules import t_dof_at

        return t_dof_at(kl, d)
    if kind == "light tails":  # KL grows with β, from 0 at 2 (the normal) towards the uniform law's
        return _solve(gennorm_kl, per, 2.0, 400.0)
    if kind == "skew":
        return _solve(skewnorm_kl, per, 1e-6, 200.0)
    if kind == "correlation":
        return _solve(lambda r: equicorrelated_kl(r, d), kl, 1e-12, 1 - 1e-12)
    if kind == "class clusters":
        return _solve(lambda s: mixture_kl(s, d), kl, 1e-6, 0.98)
    raise ValueError(f"kind={kind!r} is not allowed: must be one of {', '.join(KINDS)}")


def alternative(kind: str, kl: float, d: int) -> Sampler | None:
    """A sampler ``(rng, m) → m × d`` of ``kind`` at ``kl`` nats from N(0, I_d), or None where none is."""
    value = parameter(kind, kl, d)
    if value is None:
        return None
    if kind == "heavy tails":
        from nine.eval.rules import sample_t

        return lambda rng, m: sample_t(rng, m, d, value)
    if kind == "light tails":
        scale = math.sqrt(math.exp(special.gammaln(1 / value) - special.gammaln(3 / value)))
        return lambda rng, m: stats.gennorm.rvs(value, scale=scale, size=(m, d), random_state=rng)
    if kind == "skew":
        law = stats.skewnorm(value)
        mean, std = float(law.mean()), float(law.std())
        return lambda rng, m: (law.rvs(size=(m, d), random_state=rng) - mean) / std
    if kind == "correlation":
        return lambda rng, m: (math.sqrt(1 - value) * rng.standard_normal((m, d))
                               + math.sqrt(value) * rng.standard_normal((m, 1)))
    return lambda rng, m: _mixture(rng, m, d, value)
