"""The priors a representation can be matched to: one object each, in one registry.

A :class:`Prior` holds everything the package needs to know about a prior: its marginal law and a
sampler, the NINE head that puts a normalised coordinate on its support, the channel whose noise
pushes towards it (the law of Z, the config field that holds the noise level, its symbol), the
channel's capacity, and the bijection to and from standard normal coordinates that the evaluation
path uses. Nothing outside this module compares a prior's name.

Three priors are registered:

- ``gaussian``: N(0, I). Head: BatchNorm (unit power); channel u + Z, Z ~ N(0, σ² I), whose only
  capacity-achieving input is N(0, I).
- ``uniform``: U[0, 1]^d. Head: Φ(BatchNorm); channel u + Z, Z ~ U(−ε, ε)^d (its capacity-achieving
  input is a lattice that tends to the uniform law as ε shrinks).
- ``laplace``: Laplace(0, 1/√2)^d (unit variance), reached by a fixed bijection of the Gaussian prior:
  head T(BatchNorm) with T = F⁻¹∘Φ per coordinate (F the Laplace CDF); the channel is the Gaussian
  one, on T⁻¹ of the embedding. A bijection changes no mutual information, so the objective is the
  Gaussian prior's; what it shows is that any absolutely continuous prior with independent coordinates
  is one map away (the theory page, §5).

Adding a prior: subclass :class:`Prior` here, decorate it with :func:`register`, and add its name to
the tests of ``tests/unit/test_priors.py``; nothing else in the package changes.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from scipy import special, stats

# values of a CDF are kept in [CLIP, 1 − CLIP] before Φ⁻¹: u = Φ(h) saturates in float32 (and float16, the
# storage of older runs), so |h| ≤ 5.3 (the matching pages report the share of clipped values)
CLIP = 6e-8
CHANNELS = ("gaussian", "uniform")  # the noise laws of the channels (nine.theory computes with them)


class Prior:
    """A prior: its law, its NINE head, its channel. Subclasses set the class attributes and override
    the maps that are not the identity."""

    name: ClassVar[str]
    title: ClassVar[str]  # as a page or a figure writes it, e.g. "N(0, I)", "U[0, 1]ᵈ" (no TeX: it is plain text)
    marginal: ClassVar  # the law of one coordinate (a frozen scipy.stats distribution)
    channel: ClassVar[str]  # the law of the channel noise Z, one of CHANNELS
    level: ClassVar[str]  # the RunConfig field that holds the noise level ("sigma" or "eps")
    symbol: ClassVar[str]  # how a page writes the noise level
    view: ClassVar[tuple[float, float]]  # axis limits that show a sample of the prior (plots of d = 2 embeddings)
    adversary_squash: ClassVar[str | None] = None  # the squashing head adversarial matching uses, if supported
    supports_vae: ClassVar[bool] = False  # a VAE's posterior is Gaussian: only the Gaussian prior

    # ---- numpy side: samples, the marginal, the bijection with standard normal coordinates
    def sample(self, n: int, d: int, seed: int = 0) -> np.ndarray:
        """n samples of the prior in d dimensions (float64), from ``np.random.default_rng(seed)``."""
        rng = np.random.default_rng(seed)
        return self.marginal.ppf(rng.uniform(size=(n, d)))

    def cdf(self, z: np.ndarray) -> np.ndarray:
        return self.marginal.cdf(z)

    def from_normal(self, h: np.ndarray) -> np.ndarray:
        """Standard normal coordinates → the prior's (the map the NINE head ends with, in float64)."""
        return self.marginal.ppf(stats.norm.cdf(h))

    def to_normal(self, z: np.ndarray) -> np.ndarray:
        """The prior's coordinates → standard normal ones (the inverse of :meth:`from_normal`)."""
        return stats.norm.ppf(np.clip(self.cdf(z), CLIP, 1 - CLIP))

    # ---- torch side: the NINE head and the channel
    def head(self, u: torch.Tensor) -> torch.Tensor:
        """The NINE head's map of the BatchNorm output u (each coordinate mean 0, variance 1) onto the
        channel's input."""
        return u

    def embed(self, c: torch.Tensor) -> torch.Tensor:
        """The channel input → the embedding the encoder returns (the identity unless the prior is a
        bijection of another one)."""
        return c

    def noise(self, scale: float, shape: torch.Size, device: torch.device,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of the channel noise Z with ``scale`` σ (Gaussian) or ε (uniform)."""
        if self.gaussian_channel:
            return scale * torch.randn(shape, device=device, generator=generator)
        return scale * (2.0 * torch.rand(shape, device=device, generator=generator) - 1.0)

    def sample_like(self, u: torch.Tensor) -> torch.Tensor:
        """A torch sample of the prior shaped like u, from the global RNG (the adversary's "real" samples)."""
        raise NotImplementedError(f"the {self.name} prior has no torch sampler")

    # ---- the channel's numbers
    def capacity(self, level: float, d: int) -> float:
        """The channel's capacity in nats at noise level ``level`` (σ or ε) in d dimensions: C_G = (d/2)·log(1 + 1/σ²)
        or C_U = d·log(1 + 1/(2ε)) (the expressions of :mod:`nine.core.capacity`, operation for operation)."""
        level, d = np.asarray(level, dtype=float), np.asarray(d, dtype=float)
        if self.gaussian_channel:
            return float(0.5 * d * np.log1p(1.0 / level**2))
        return float(d * np.log1p(1.0 / (2.0 * level)))

    def noise_std(self, level: float) -> float:
        """Standard deviation of one noise coordinate (U(−ε, ε) has ε/√3)."""
        return level if self.gaussian_channel else level / math.sqrt(3.0)

    def label(self, level: float) -> str:
        return f"{self.symbol}={level:g}"

    @property
    def gaussian_channel(self) -> bool:
        """Whether the channel's noise is Gaussian (the Gaussian prior and the priors derived from it)."""
        return self.channel == "gaussian"

    def __repr__(self) -> str:
        return f"Prior({self.name!r})"


PRIORS: dict[str, Prior] = {}


def register(cls: type[Prior]) -> type[Prior]:
    """Class decorator: the prior ``cls.name`` is ``cls()``."""
    PRIORS[cls.name] = cls()
    return cls


def get(name: str) -> Prior:
    """The prior called ``name``; ValueError naming the allowed ones otherwise."""
    if name not in PRIORS:
        raise ValueError(f"prior={name!r} is unknown; allowed: {', '.join(PRIORS)}")
    return PRIORS[name]


@register
class Gaussian(Prior):
    name, title = "gaussian", "N(0, I)"
    marginal = stats.norm()
    channel, level, symbol = "gaussian", "sigma", "σ"
    view = (-4.0, 4.0)
    adversary_squash = "identity"
    supports_vae = True

    def sample(self, n: int, d: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, d))

    def from_normal(self, h: np.ndarray) -> np.ndarray:
        return h

    def to_normal(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64)

    def sample_like(self, u: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(u)


@register
class Uniform(Prior):
    name, title = "uniform", "U[0, 1]ᵈ"
    marginal = stats.uniform()
    channel, level, symbol = "uniform", "eps", "ε"
    view = (-0.05, 1.05)
    adversary_squash = "logistic"

    def sample(self, n: int, d: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).uniform(size=(n, d))

    def from_normal(self, h: np.ndarray) -> np.ndarray:
        return stats.norm.cdf(h)

    def to_normal(self, z: np.ndarray) -> np.ndarray:
        return stats.norm.ppf(np.clip(np.asarray(z, dtype=np.float64), CLIP, 1 - CLIP))

    def head(self, u: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))

    def sample_like(self, u: torch.Tensor) -> torch.Tensor:
        return torch.rand_like(u)


LAPLACE_SCALE = 1.0 / math.sqrt(2.0)  # Laplace(0, b) has variance 2b²: unit variance, as the Gaussian prior


@register
class Laplace(Prior):
    """Laplace(0, 1/√2)^d through T = F⁻¹∘Φ of the Gaussian prior. T is computed through log Φ(−|h|),
    so it stays finite in the tails: T(h) = −sign(h)·b·(log 2 + log Φ(−|h|))."""

    name, title = "laplace", "Laplace(0, 1/√2)ᵈ"
    marginal = stats.laplace(scale=LAPLACE_SCALE)
    channel, level, symbol = "gaussian", "sigma", "σ"
    view = (-4.5, 4.5)

    def from_normal(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=np.float64)
        return -np.sign(h) * LAPLACE_SCALE * (math.log(2.0) + special.log_ndtr(-np.abs(h)))

    def to_normal(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return -np.sign(z) * special.ndtri_exp(-math.log(2.0) - np.abs(z) / LAPLACE_SCALE)

    def embed(self, c: torch.Tensor) -> torch.Tensor:
        return -torch.sign(c) * LAPLACE_SCALE * (math.log(2.0) + torch.special.log_ndtr(-c.abs()))

    def unembed(self, z: torch.Tensor) -> torch.Tensor:
        """T⁻¹ in torch (tests; the trainer never needs it: the encoder returns the channel input itself)."""
        return -torch.sign(z) * torch.special.ndtri(0.5 * torch.exp(-z.abs() / LAPLACE_SCALE))


NAMES = tuple(PRIORS)
