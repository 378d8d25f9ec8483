"""The capacities of the NINE channels and the InfoNCE ceiling, in nats (closed forms)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def check_positive(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a float array; ValueError naming ``name`` unless every entry is finite and > 0."""
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name}={value!r} is not allowed: must be finite and > 0")
    return arr


def capacity_gaussian(sigma: ArrayLike, d: ArrayLike) -> np.ndarray:
    """C_G = (d/2)·log(1 + 1/σ²): capacity of y = u + z, z ~ N(0, σ²I), under E u_k² ≤ 1."""
    return 0.5 * check_positive("d", d) * np.log1p(1.0 / check_positive("sigma", sigma) ** 2)


def capacity_uniform(eps: ArrayLike, d: ArrayLike) -> np.ndarray:
    """C_U = d·log(1 + 1/(2ε)): capacity of y = u + z, z ~ U(−ε, ε)^d, u ∈ [0, 1]^d."""
    return check_positive("d", d) * np.log1p(1.0 / (2.0 * check_positive("eps", eps)))


def infonce_ceiling(n: ArrayLike) -> np.ndarray:
    """log N: no InfoNCE estimate with batch size N exceeds it."""
    return np.log(check_positive("n", n))


def sigma_at_capacity(capacity: ArrayLike, d: ArrayLike) -> np.ndarray:
    """The σ at which C_G(σ, d) equals ``capacity`` (e.g. log N)."""
    c, dd = check_positive("capacity", capacity), check_positive("d", d)
    return 1.0 / np.sqrt(np.expm1(2.0 * c / dd))


def eps_at_capacity(capacity: ArrayLike, d: ArrayLike) -> np.ndarray:
    """The ε at which C_U(ε, d) equals ``capacity`` (e.g. log N)."""
    c, dd = check_positive("capacity", capacity), check_positive("d", d)
    return 0.5 / np.expm1(c / dd)
