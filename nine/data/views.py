"""The augmentations that make the two InfoMax views, and the clean view used for embeddings.

MNIST views are 24×24 crops (random for training, central for evaluation), which the encoder of
:mod:`nine.core.models` maps to exactly one spatial position.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

CROP_SIZE = 24


def random_view(x: torch.Tensor, pixel_noise: float, generator: torch.Generator) -> torch.Tensor:
    """One augmented view: a random 24×24 crop per image plus N(0, pixel_noise²) pixel noise.

    x: N×C×28×28 → N×C×24×24. The randomness comes only from ``generator`` (reproducible).
    """
    n, c, h, w = x.shape
    top = torch.randint(0, h - CROP_SIZE + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, w - CROP_SIZE + 1, (n,), generator=generator, device=x.device)
    offsets = torch.arange(CROP_SIZE, device=x.device)
    rows = (top[:, None] + offsets)[:, None, :, None]  # N×1×24×1
    cols = (left[:, None] + offsets)[:, None, None, :]  # N×1×1×24
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    crops = x[batch, channel, rows, cols]
    if pixel_noise > 0:
        crops = crops + pixel_noise * torch.randn(crops.shape, generator=generator, device=x.device)
    return crops


def noisy_view(x: torch.Tensor, pixel_noise: float, generator: torch.Generator) -> torch.Tensor:
    """The whole image plus N(0, pixel_noise²) pixel noise: a view that changes none of the factors
    of a dSprites image (a crop would move it, a flip or rotation would change its orientation)."""
    return x + pixel_noise * torch.randn(x.shape, generator=generator, device=x.device)


def centre_view(x: torch.Tensor) -> torch.Tensor:
    """The evaluation view: the central 24×24 crop, no noise. N×C×28×28 → N×C×24×24."""
    margin = (x.shape[-1] - CROP_SIZE) // 2
    return x[..., margin : margin + CROP_SIZE, margin : margin + CROP_SIZE]


def simclr_view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One SimCLR-style view of each image (the CIFAR-10 recipe), on the whole batch at once:
    random resized crop to 32×32 (area 8–100 %, aspect 3/4–4/3, bilinear), horizontal flip with
    probability 0.5, colour jitter (brightness, contrast, saturation 0.4, hue 0.1) with probability
    0.8, greyscale with probability 0.2. x: N×3×32×32 in [0, 1] → N×3×32×32.

    Every random number comes from ``generator`` (reproducible). Two simplifications against
    torchvision's per-image transforms: the jitter is applied in a fixed order (brightness,
    contrast, saturation, hue) instead of a random one, and hue is rotated in YIQ space.
    """
    n, device = len(x), x.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator, device=device)

    def draw(p: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) < p

    # random resized crop + flip: an affine grid per image
    area, log_ratio = uniform(0.08, 1.0), uniform(math.log(3 / 4), math.log(4 / 3))
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)  # fractions of the image side
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    centre_x = (uniform(0.0, 1.0) * (1 - width) + width / 2) * 2 - 1  # grid coordinates in [-1, 1]
    centre_y = (uniform(0.0, 1.0) * (1 - height) + height / 2) * 2 - 1
    flip = torch.where(draw(0.5), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], 32, 32], align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # colour jitter, each image with probability 0.8
    jitter = draw(0.8)[:, None, None, None]
    grey_weights = torch.tensor([0.299, 0.587, 0.114], device=device)[None, :, None, None]

    def grey(images: torch.Tensor) -> torch.Tensor:
        return (images * grey_weights).sum(1, keepdim=True)

    jittered = (out * uniform(0.6, 1.4)[:, None, None, None]).clamp(0, 1)  # brightness
    mean = grey(jittered).mean((2, 3), keepdim=True)
    jittered = (mean + uniform(0.6, 1.4)[:, None, None, None] * (jittered - mean)).clamp(0, 1)  # contrast
    jittered = (grey(jittered) + uniform(0.6, 1.4)[:, None, None, None] * (jittered - grey(jittered))).clamp(0, 1)
    angle = uniform(-0.1, 0.1) * 2 * math.pi  # hue: a rotation of the chroma plane (I, Q) of YIQ
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=device)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, jittered)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], 1)
    jittered = torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq).clamp(0, 1)
    out = torch.where(jitter, jittered, out)
    return torch.where(draw(0.2)[:, None, None, None], grey(out).expand_as(out), out)


def training_view(cfg) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """The random view the objective is trained on: MNIST crops with pixel noise, or SimCLR for CIFAR-10."""
    if cfg.dataset == "cifar10":
        return simclr_view
    if cfg.dataset == "dsprites":
        return lambda x, generator: noisy_view(x, cfg.pixel_noise, generator)
    return lambda x, generator: random_view(x, cfg.pixel_noise, generator)


def evaluation_view(cfg) -> Callable[[torch.Tensor], torch.Tensor]:
    """The clean view used for embeddings: the central crop (MNIST) or the whole image (CIFAR-10, dSprites)."""
    return (lambda x: x) if cfg.dataset in ("cifar10", "dsprites") else centre_view
