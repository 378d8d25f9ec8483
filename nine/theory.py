"""The information theory behind NINE, all in nats.

- closed-form capacities of the Gaussian and uniform noise channels and the InfoNCE ceiling log N;
- the mutual information of the 1-D channel Y = U + Z for any input law, by numerical integration;
- Blahut–Arimoto for discretised channels (the capacity-achieving input law);
- the InfoNCE Monte-Carlo estimate on samples with a given critic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, stats

from nine.core.capacity import (  # noqa: F401 (the closed forms belong to the theory's public names)
    capacity_gaussian,
    capacity_uniform,
    check_positive,
    eps_at_capacity,
    infonce_ceiling,
    sigma_at_capacity,
)

# ---------------------------------------------------------------------------------------------
# Mutual information of the 1-D additive channel Y = U + Z, by numerical integration


@dataclass(frozen=True)
class ContinuousLaw:
    """A 1-D input law with density ``pdf`` that puts all but a negligible mass on [lower, upper]."""

    pdf: Callable[[np.ndarray], np.ndarray]
    lower: float
    upper: float
    name: str = ""
    kinks: tuple[float, ...] = ()  # points where the density is not smooth (help the quadrature)


@dataclass(frozen=True)
class DiscreteLaw:
    """A 1-D input law with atoms ``values`` of probabilities ``probs``."""

    values: np.ndarray
    probs: np.ndarray
    name: str = ""


InputLaw = ContinuousLaw | DiscreteLaw
NOISES = ("gaussian", "uniform")
_QUAD = dict(epsabs=1e-12, epsrel=1e-10, limit=400)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def from_scipy(dist, name: str = "", tail: float = 1e-15) -> ContinuousLaw:
    """A :class:`ContinuousLaw` from a frozen scipy.stats distribution (support cut at ``tail``)."""
    lower, upper = dist.support()
    lower = lower if np.isfinite(lower) else dist.ppf(tail)
    upper = upper if np.isfinite(upper) else dist.isf(tail)
    return ContinuousLaw(dist.pdf, float(lower), float(upper), name)


def noise_pdf(noise: str, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """Density of Z: N(0, scale²) for "gaussian", U(−scale, scale) for "uniform"."""
    if noise == "gaussian":
        return stats.norm(scale=scale).pdf
    if noise == "uniform":
        return lambda z: np.where(np.abs(z) <= scale, 0.5 / scale, 0.0)
    raise ValueError(f"noise={noise!r} is unknown; allowed: {', '.join(NOISES)}")


def noise_entropy(noise: str, scale: float) -> float:
    """Differential entropy h(Z) in nats."""
    check_positive("scale", scale)
    if noise == "gaussian":
        return 0.5 * np.log(2 * np.pi * np.e * scale**2)
    if noise == "uniform":
        return float(np.log(2 * scale))
    raise ValueError(f"noise={noise!r} is unknown; allowed: {', '.join(NOISES)}")


def _reach(noise: str, scale: float) -> float:
    """Half-width of the noise's support (Gaussian: cut where the density is below 1e-30)."""
    return 12.0 * scale if noise == "gaussian" else scale


def output_pdf(law: InputLaw, noise: str, scale: float) -> Callable[[float], float]:
    """The density p_Y(y) = E_U[p_Z(y − U)] of Y = U + Z, as a function of a scalar y."""
    p_z = noise_pdf(noise, scale)
    if isinstance(law, DiscreteLaw):
        return lambda y: float(np.dot(law.probs, p_z(y - law.values)))
    reach = _reach(noise, scale)

    def density(y: float) -> float:
        lo, hi = max(law.lower, y - reach), min(law.upper, y + reach)
        if lo >= hi:
            return 0.0
        # composite Gauss–Legendre, pieces no wider than half the noise scale, split at every kink
        pieces = int(np.ceil(2 * (hi - lo) / scale))
        edges = np.unique([*np.linspace(lo, hi, pieces + 1), *(k for k in law.kinks if lo < k < hi)])
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
        u = mid[:, None] + half[:, None] * _GL_NODES[None, :]
        return float(((law.pdf(u) * p_z(y - u)) * _GL_WEIGHTS[None, :]).sum(1) @ half)

    return density


def _output_breakpoints(law: InputLaw, noise: str, scale: float) -> list[float]:
    """Points where p_Y may have kinks: atoms and support edges shifted by ± the noise half-width."""
    if noise == "gaussian":
        return list(law.values) if isinstance(law, DiscreteLaw) else []
    anchors = list(law.values) if isinstance(law, DiscreteLaw) else [law.lower, law.upper, *law.kinks]
    return sorted({a + s for a in anchors for s in (-scale, scale)})


def _integrate_output(law: InputLaw, noise: str, scale: float, integrand: Callable[[float, float], float]) -> float:
    """∫ integrand(y, p_Y(y)) dy over the support of Y, split at the kinks of p_Y."""
    density = output_pdf(law, noise, scale)
    lo_u, hi_u = (law.values.min(), law.values.max()) if isinstance(law, DiscreteLaw) else (law.lower, law.upper)
    reach = _reach(noise, scale)
    edges = sorted({lo_u - reach, hi_u + reach, *_output_breakpoints(law, noise, scale)})
    edges = [e for e in edges if lo_u - reach <= e <= hi_u + reach]
    return sum(
        integrate.quad(lambda y: integrand(y, density(y)), a, b, **_QUAD)[0] for a, b in zip(edges[:-1], edges[1:])
    )


def _xlogx(p: float) -> float:
    return p * np.log(p) if p > 0 else 0.0


def output_entropy(law: InputLaw, noise: str, scale: float) -> float:
    """Differential entropy h(U + Z) in nats."""
    return -_integrate_output(law, noise, scale, lambda y, p: _xlogx(p))


def mutual_information(law: InputLaw, noise: str, scale: float) -> float:
    """I(U; U + Z) = h(U + Z) − h(Z) in nats, for Z ~ N(0, scale²) or U(−scale, scale)."""
    return output_entropy(law, noise, scale) - noise_entropy(noise, scale)


def kl_to_gaussian(law: InputLaw, variance: float, noise: str, scale: float) -> float:
    """KL(law of U + Z ‖ N(0, variance)) in nats, by direct numerical integration."""
    q = stats.norm(scale=np.sqrt(variance)).logpdf
    return _integrate_output(law, noise, scale, lambda y, p: _xlogx(p) - p * q(y))


def power(law: InputLaw) -> float:
    """E[U²] of the input law."""
    if isinstance(law, DiscreteLaw):
        return float(np.dot(law.probs, law.values**2))
    return integrate.quad(lambda u: u * u * law.pdf(u), law.lower, law.upper, **_QUAD)[0]


def uniform_input_mi_closed_form(eps: ArrayLike) -> np.ndarray:
    """I(U; U + Z) for U ~ U(0, 1), Z ~ U(−ε, ε), ε ≤ 1/2: ε − log(2ε) (p_Y is a trapezoid)."""
    e = check_positive("eps", eps)
    return e - np.log(2 * e)


# ---------------------------------------------------------------------------------------------
# Blahut–Arimoto


@dataclass(frozen=True)
class ChannelCapacity:
    """Result of :func:`blahut_arimoto`: capacity in nats, the optimal input law, and the bounds."""

    capacity: float
    input_law: np.ndarray
    lower: float
    upper: float
    iterations: int


def blahut_arimoto(w: np.ndarray, tol: float = 1e-9, max_iter: int = 1_000_000) -> ChannelCapacity:
    """Capacity of a discrete memoryless channel with transition matrix ``w`` (inputs × outputs).

    Iterates p ← p·exp(D(W(·|x) ‖ pW)) / Z from the uniform law until the upper bound max_x D and
    the lower bound log Z on the capacity agree within ``tol`` nats. The optimal law converges more
    slowly than the capacity: a smaller ``tol`` sharpens it.
    """
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or np.any(w < 0) or not np.allclose(w.sum(1), 1.0, atol=1e-9):
        raise ValueError("w is not allowed: need a 2-D matrix of non-negative rows that each sum to 1")
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_entropy = np.where(w > 0, w * np.log(w), 0.0).sum(1)  # Σ_y W log W, fixed per input
    p = np.full(len(w), 1.0 / len(w))
    for iteration in range(1, max_iter + 1):
        d = neg_entropy - w @ np.log(p @ w)  # D(W(·|x) ‖ q); q > 0 wherever W > 0 since p > 0
        z = float(np.dot(p, np.exp(d)))
        lower, upper = np.log(z), float(d.max())
        if upper - lower < tol:
            break
        p = p * np.exp(d) / z
    return ChannelCapacity(0.5 * (lower + upper), p, lower, upper, iteration)


def uniform_noise_channel(eps: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """The channel Y = U + Z, U on a grid of [0, 1], Z ~ U(−ε, ε), discretised with bin width ``step``.

    Inputs are the grid points 0, step, …, 1; outputs are bins of width ``step`` covering [−ε, 1 + ε].
    ``1/step`` and ``ε/step`` must be integers, so that every noise window covers whole bins.
    Returns (input grid, transition matrix).
    """
    n_in, half = 1.0 / step, eps / step
    if not (abs(n_in - round(n_in)) < 1e-9 and abs(half - round(half)) < 1e-9 and round(half) >= 1):
        raise ValueError(f"step={step!r} is not allowed: 1/step and eps/step (eps={eps!r}) must be integers >= 1")
    n_in, half = round(n_in), round(half)
    w = np.zeros((n_in + 1, n_in + 2 * half))
    for i in range(n_in + 1):
        w[i, i : i + 2 * half] = 1.0 / (2 * half)
    return np.linspace(0.0, 1.0, n_in + 1), w


def binary_entropy(p: float) -> float:
    """H(p) in nats."""
    return float(-_xlogx(p) - _xlogx(1 - p))


# ---------------------------------------------------------------------------------------------
# InfoNCE on samples


def infonce_on_samples(
    u: np.ndarray, y: np.ndarray, critic: Callable, batch_size: int, softmax: str = "clean"
) -> tuple[float, float]:
    """Monte-Carlo InfoNCE estimate (nats) of I(U; Y) from paired samples u, y (n×d each).

    The samples are cut into n // batch_size batches of N = batch_size pairs; ``critic(u, y)``
    returns the N×N score matrix of a batch (e.g. ``nine.core.critics.QuadraticCritic(tau)``). Returns (mean, standard error) over the batches;
    every batch estimate is at most log N.
    """
    import torch

    from nine.core.losses import infonce

    n = (len(u) // batch_size) * batch_size
    if n == 0:
        raise ValueError(f"batch_size={batch_size} is not allowed: larger than the {len(u)} samples given")
    estimates = []
    for start in range(0, n, batch_size):
        ub = torch.as_tensor(u[start : start + batch_size], dtype=torch.float64)
        yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.float64)
        with torch.no_grad():
            estimates.append(float(infonce(critic(ub, yb), softmax)[1]))
    values = np.array(estimates)
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(sem)



# ---------------------------------------------------------------------------------------------
# The certificate in d dimensions: C_G − I(U; U + Z) = KL(P_{U+Z} ‖ N(0, (1 + σ²) I)) whenever E‖U‖² = d

CERTIFICATE_LAWS = ("Gaussian", "correlated Gaussian (ρ = 0.5)", "Rademacher ±1", "uniform on [−√3, √3]")


def _certificate_law(law: str, d: int, sigma: float):
    """(sampler(rng, n) → n×d samples of U, log density of Y = U + Z at y) for a law of unit power per coordinate."""
    from scipy import stats as st

    if law == "Gaussian":
        return (lambda rng, n: rng.standard_normal((n, d)),
                lambda y: st.norm(0, np.sqrt(1 + sigma**2)).logpdf(y).sum(1))
    if law == "correlated Gaussian (ρ = 0.5)":
        cov = 0.5 * np.eye(d) + 0.5
        return (lambda rng, n: rng.multivariate_normal(np.zeros(d), cov, size=n),
                lambda y: st.multivariate_normal(np.zeros(d), cov + sigma**2 * np.eye(d)).logpdf(y))
    if law == "Rademacher ±1":
        return (lambda rng, n: rng.choice([-1.0, 1.0], size=(n, d)),
                lambda y: np.logaddexp(st.norm(1, sigma).logpdf(y), st.norm(-1, sigma).logpdf(y)).sum(1) - d * np.log(2))
    if law == "uniform on [−√3, √3]":
        a = np.sqrt(3.0)
        return (lambda rng, n: rng.uniform(-a, a, size=(n, d)),
                lambda y: np.log((st.norm.cdf((y + a) / sigma) - st.norm.cdf((y - a) / sigma)) / (2 * a)).sum(1))
    raise ValueError(f"law={law!r} is not allowed: must be one of {', '.join(CERTIFICATE_LAWS)}")


def certificate_check(law: str, d: int, sigma: float, n: int, batch_size: int, view_noise: float = 0.3,
                      seed: int = 0) -> dict[str, float]:
    """Monte-Carlo terms of the certificate for one input law of unit power per coordinate.

    Y = U + Z, Z ~ N(0, σ² I). Returns the capacity C_G, I(U; Y) = E[log p(y|u) − log p(y)] and
    KL(P_Y ‖ N(0, (1 + σ²) I)) = E[log p(y) − log q(y)] by Monte Carlo on the same n samples (with
    the standard error of C_G − I − KL, whose expectation is 0), the InfoNCE estimate (batch N, the
    quadratic critic at τ = σ) between U and Y, and between another view U' = √(1 − η²) U + η W of the
    same input (W ~ N(0, I) independent, η = ``view_noise``) and Y, with their standard errors.
    """
    from nine.core.critics import QuadraticCritic

    sample, log_p = _certificate_law(law, d, sigma)
    rng = np.random.default_rng(seed)
    u = sample(rng, n)
    z = sigma * rng.standard_normal(u.shape)
    y = u + z
    log_p_y = log_p(y)
    log_p_y_given_u = -(z**2).sum(1) / (2 * sigma**2) - 0.5 * d * np.log(2 * np.pi * sigma**2)
    log_q = -(y**2).sum(1) / (2 * (1 + sigma**2)) - 0.5 * d * np.log(2 * np.pi * (1 + sigma**2))
    capacity = float(capacity_gaussian(sigma, d))
    residual = capacity - (log_p_y_given_u - log_q)  # C_G − I − KL, sample by sample (mean 0 if E‖U‖² = d)
    other = np.sqrt(1 - view_noise**2) * u + view_noise * rng.standard_normal(u.shape)
    critic = QuadraticCritic(sigma)
    same, same_se = infonce_on_samples(u, y, critic, batch_size)
    views, views_se = infonce_on_samples(other, y, critic, batch_size)
    density_ratio = log_p_y_given_u - log_p_y  # its mean estimates I(U; Y)
    return {"capacity": capacity, "mi": float(np.mean(density_ratio)), "mi_se": float(density_ratio.std(ddof=1) / np.sqrt(n)),
            "kl": float(np.mean(log_p_y - log_q)),
            "identity_error": float(residual.mean()), "identity_se": float(residual.std(ddof=1) / np.sqrt(n)),
            "infonce_same": same, "infonce_same_se": same_se, "infonce_views": views, "infonce_views_se": views_se}
