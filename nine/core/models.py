"""The encoder (body, MLP, head), the heads the methods put on it, and the channel noise."""

from __future__ import annotations

import torch
from torch import nn

from nine.config import AUTO_NUMERICS, ConfigError, fastest_numerics
from nine.priors import get as get_prior


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
    """The NINE normalisation: h (N×d) → the prior's support (:mod:`nine.priors`).

    u = BatchNorm1d(d, affine=False)(h), so each coordinate has mean 0 and variance 1 (the power
    constraint; a learnable scale would remove it); then the prior's head map onto the channel's input
    (the identity for the Gaussian prior, Φ for the uniform one) and its embedding map (the identity,
    or the bijection of a prior derived from another, e.g. F⁻¹∘Φ for the Laplace prior).
    ``channel(h)`` is the channel's input, where the objective adds the noise; ``forward(h)`` the
    embedding. The channel noise is not part of the head: the objective adds it (:mod:`nine.core.objectives`).
    """

    def __init__(self, d: int, prior: str = "gaussian") -> None:
        super().__init__()
        self.prior = prior
        self.law = get_prior(prior)
        self.norm = nn.BatchNorm1d(d, affine=False)

    def channel(self, h: torch.Tensor) -> torch.Tensor:
        return self.law.head(self.norm(h))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.law.embed(self.channel(h))


class Squash(nn.Module):
    """Adversarial matching's head: h onto the prior's support without normalising (a sigmoid for
    the uniform prior, the identity for the Gaussian one); the adversary does the matching."""

    def __init__(self, prior: str = "gaussian") -> None:
        super().__init__()
        self.prior = prior
        self.squash = get_prior(prior).adversary_squash
        if self.squash is None:
            raise ValueError(f"prior={prior!r} is not allowed for adversarial matching: it has no squashing head")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h) if self.squash == "logistic" else h


class PosteriorMean(nn.Module):
    """A VAE's head: h (N×2d) holds a mean and a log-variance; the embedding is the mean (N×d)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.chunk(2, dim=1)[0]


class ChannelNoise:
    """The noise Z of the channel u → u + Z of a prior (:meth:`nine.priors.Prior.noise`): N(0, σ² I) or
    U(−ε, ε)^d, at the noise level ``level``."""

    def __init__(self, prior: str, level: float) -> None:
        self.law, self.level = get_prior(prior), level

    def sample(self, shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of Z of the given shape; from ``generator``, else the global torch RNG."""
        return self.law.noise(self.level, shape, device, generator)


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
    does by default, "channels_last" in float32 with channels-last layout, "bf16" in channels-last
    layout under bfloat16 autocast; "auto" the fastest of them here (:func:`nine.config.fastest_numerics`);
    the retired "fused" of six committed runs as "channels_last" (the same function of the same weights).
    The MLP's output is float32 in every case.
    """

    def __init__(self, outputs: int, head: nn.Module, body: str = "mnist-cnn", numerics: str = "fp32") -> None:
        super().__init__()
        make_body, features, self.input_shape = BODIES[body]
        self.body = make_body()
        self.project = nn.Sequential(nn.Linear(features, features), nn.LeakyReLU(0.01), nn.Linear(features, outputs))
        self.head = head
        if numerics == AUTO_NUMERICS:
            numerics = fastest_numerics()
        self.numerics = "channels_last" if numerics == "fused" else numerics
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

    def forward(self, x: torch.Tensor, channel: bool = False) -> torch.Tensor:
        """x: N×C×H×W → the embedding N×d (no channel noise: the objective adds it in training); with
        ``channel`` the channel's input instead, where the head has one (:class:`Normalise`)."""
        h = self.features(x)
        return self.head.channel(h) if channel and hasattr(self.head, "channel") else self.head(h)
