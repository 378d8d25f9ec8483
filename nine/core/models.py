"""The encoder (body, MLP, head), the heads the methods put on it, and the channel noise."""

from __future__ import annotations

import math

import torch
from torch import nn

from nine.config import ConfigError


def pick_device(requested: str = "auto") -> torch.device:
    """The one place the compute device is chosen: CUDA when available (or asked for), else CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' is not allowed here: torch.cuda.is_available() is False; use 'auto' or 'cpu'")
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


class Normalise(nn.Module):
    """The NINE normalisation: h (N×d) → u on the prior's support.

    gaussian: u = BatchNorm1d(d, affine=False)(h), so each coordinate has mean 0 and variance 1
      (the power constraint; a learnable scale would remove it).
    uniform: u = Φ(BatchNorm1d(h)) in [0, 1]^d, Φ the standard normal CDF.
    The channel noise is not part of the head: the objective adds it (:mod:`nine.core.objectives`).
    """

    def __init__(self, d: int, prior: str = "gaussian") -> None:
        super().__init__()
        self.prior = prior
        self.norm = nn.BatchNorm1d(d, affine=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        u = self.norm(h)
        if self.prior == "uniform":
            u = 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
        return u


class Squash(nn.Module):
    """Adversarial matching's head: h onto the prior's support without normalising (a sigmoid for
    the uniform prior, the identity for the Gaussian one); the adversary does the matching."""

    def __init__(self, prior: str = "gaussian") -> None:
        super().__init__()
        self.prior = prior

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h) if self.prior == "uniform" else h


class PosteriorMean(nn.Module):
    """A VAE's head: h (N×2d) holds a mean and a log-variance; the embedding is the mean (N×d)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.chunk(2, dim=1)[0]


class ChannelNoise:
    """The noise Z of the channel u → u + Z: N(0, σ² I) (Gaussian prior) or U(−ε, ε)^d (uniform)."""

    def __init__(self, prior: str, sigma: float, eps: float) -> None:
        self.prior, self.sigma, self.eps = prior, sigma, eps

    def sample(self, shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of Z of the given shape; from ``generator``, else the global torch RNG."""
        if self.prior == "gaussian":
            return self.sigma * torch.randn(shape, device=device, generator=generator)
        return self.eps * (2.0 * torch.rand(shape, device=device, generator=generator) - 1.0)


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
    """f: a view → a d-dimensional representation: body, two-layer MLP, then the method's head.

    body "mnist-cnn" takes 1×24×24 views (the MNIST protocol), "sprites-cnn" 1×28×28 sprites,
    "resnet18" 3×32×32 images. ``outputs`` is the width of the MLP's output (d, or 2d for a VAE's
    mean and log-variance); ``head`` maps it to the embedding (see :mod:`nine.core.objectives`).
    ``numerics`` (:data:`nine.config.NUMERICS`) says how the body and MLP compute: "fp32" as PyTorch
    does by default, "channels_last" in float32 with channels-last layout, "bf16" in that layout under
    bfloat16 autocast. The MLP's output is float32 in every case.
    """

    def __init__(self, outputs: int, head: nn.Module, body: str = "mnist-cnn", numerics: str = "fp32") -> None:
        super().__init__()
        make_body, features, self.input_shape = BODIES[body]
        self.body = make_body()
        self.project = nn.Sequential(nn.Linear(features, features), nn.LeakyReLU(0.01), nn.Linear(features, outputs))
        self.head = head
        self.numerics = numerics
        if numerics != "fp32":
            self.body.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: N×C×H×W (``input_shape``) → the MLP's output h (N×outputs), before the head."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"input of shape {tuple(x.shape)} is not allowed: the encoder takes N×{'×'.join(map(str, self.input_shape))}"
            )
        if self.numerics == "fp32":
            return self.project(self.body(x))
        x = x.contiguous(memory_format=torch.channels_last)
        if self.numerics == "channels_last":
            return self.project(self.body(x))
        with torch.autocast(x.device.type, dtype=torch.bfloat16):  # numerics == "bf16"
            h = self.project(self.body(x))
        return h.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N×C×H×W → the embedding N×d (no channel noise: the objective adds it in training)."""
        return self.head(self.features(x))
