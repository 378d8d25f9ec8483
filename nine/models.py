"""The MNIST encoder and the NINE head (normalise, then inject noise)."""

from __future__ import annotations

import math

import torch
from torch import nn

from nine.config import RunConfig


def pick_device(requested: str = "auto") -> torch.device:
    """The one place the compute device is chosen: CUDA when available (or asked for), else CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch.cuda.is_available() is False; use 'auto' or 'cpu'")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def conv_body() -> nn.Sequential:
    """Three Conv(k=3) → MaxPool(2) → BatchNorm → LeakyReLU(0.01) blocks (32, 64, 128 channels).

    A 1×24×24 view shrinks 24→22→11→9→4→2→1, so the output is exactly 128 features.
    """
    layers: list[nn.Module] = []
    channels = [1, 32, 64, 128]
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 3), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01)]
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


class NINEHead(nn.Module):
    """Normalise the representation, then add independent noise in training mode only.

    gaussian: u = BatchNorm1d(d, affine=False)(h), so each coordinate has mean 0 and variance 1
      (the power constraint; a learnable scale would remove it); noise Z ~ N(0, sigma² I).
    uniform: u = Φ(BatchNorm1d(h)) in [0, 1]^d (Φ the standard normal CDF); noise Z ~ U(-eps, eps)^d.

    ``mode`` selects the reference points of the experiments: "nine" (normalise and add noise),
    "normalise" (normalise, no noise) and "plain" (plain InfoNCE: neither), and the heads of the
    baselines: "adversarial" (no normalisation and no noise: the output is squashed onto the prior's
    support, a sigmoid for the uniform prior, and an adversary matches it, see nine.baselines) and
    "vae" (h holds a mean and a log-variance; training draws z = mean + std·ε and keeps the KL term
    to N(0, I) in ``self.kl``; evaluation returns the mean).
    """

    def __init__(
        self, d: int, prior: str = "gaussian", sigma: float = 0.3, eps: float = 0.05, mode: str = "nine"
    ) -> None:
        super().__init__()
        self.prior, self.sigma, self.eps, self.mode = prior, sigma, eps, mode
        self.norm = nn.BatchNorm1d(d, affine=False)

    @property
    def noisy(self) -> bool:
        """Whether this head injects channel noise at all."""
        return self.mode == "nine"

    def normalise(self, h: torch.Tensor) -> torch.Tensor:
        """h: N×d → u: N×d on the prior's support (no noise); the identity in "plain" mode."""
        if self.mode == "plain":
            return h
        if self.mode == "adversarial":
            return torch.sigmoid(h) if self.prior == "uniform" else h
        u = self.norm(h)
        if self.prior == "uniform":
            u = 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
        return u

    def noise(self, shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of the channel noise Z of the given shape."""
        if self.prior == "gaussian":
            return self.sigma * torch.randn(shape, device=device, generator=generator)
        return self.eps * (2.0 * torch.rand(shape, device=device, generator=generator) - 1.0)

    def forward(self, h: torch.Tensor, noisy: bool = True) -> torch.Tensor:
        if self.mode == "vae":
            mean, log_var = h.chunk(2, dim=1)
            if not (self.training and noisy):
                return mean
            self.kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1).mean()
            return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        u = self.normalise(h)
        if self.training and noisy and self.noisy:
            u = u + self.noise(u.shape, u.device)
        return u


def resnet18_body() -> nn.Module:
    """torchvision's ResNet-18 adapted to 32×32 images as in SimCLR's CIFAR-10 setup: a 3×3 stride-1
    first convolution, no max-pool, no classifier. 3×32×32 → 512 features."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool, net.fc = nn.Identity(), nn.Identity()
    return net


# body -> (constructor, features, input shape); "sprites-cnn" is the MNIST body on whole 28×28 sprites
# (28→26→13→11→5→3→1, so again exactly 128 features)
BODIES = {
    "mnist-cnn": (conv_body, 128, (1, 24, 24)),
    "resnet18": (resnet18_body, 512, (3, 32, 32)),
    "sprites-cnn": (conv_body, 128, (1, 28, 28)),
}


class Encoder(nn.Module):
    """f: a view → a d-dimensional representation (body, two-layer MLP, NINE head).

    body "mnist-cnn" takes 1×24×24 views (the MNIST protocol); "resnet18" takes 3×32×32 images.
    """

    def __init__(
        self,
        d: int,
        prior: str = "gaussian",
        sigma: float = 0.3,
        eps: float = 0.05,
        body: str = "mnist-cnn",
        head: str = "nine",
    ) -> None:
        super().__init__()
        make_body, features, self.input_shape = BODIES[body]
        self.body = make_body()
        out = 2 * d if head == "vae" else d  # a VAE head reads a mean and a log-variance
        self.project = nn.Sequential(nn.Linear(features, features), nn.LeakyReLU(0.01), nn.Linear(features, out))
        self.head = NINEHead(d, prior, sigma, eps, head)

    def forward(self, x: torch.Tensor, noisy: bool = True) -> torch.Tensor:
        """x: N×C×H×W (``input_shape``) → N×d; noise is added only in training mode and when ``noisy``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"input of shape {tuple(x.shape)} is not allowed: the encoder takes N×{'×'.join(map(str, self.input_shape))}"
            )
        return self.head(self.project(self.body(x)), noisy=noisy)

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Encoder:
        return cls(cfg.d, cfg.prior, cfg.sigma, cfg.eps, cfg.encoder, cfg.head)
