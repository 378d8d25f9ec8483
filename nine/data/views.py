"""The augmentations that make the two InfoMax views, and the clean view used for embeddings.

MNIST views are 24×24 crops (random for training, central for evaluation), which the encoder of
:mod:`nine.core.models` maps to exactly one spatial position.
"""

from __future__ import annotations

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


def simclr_view(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One SimCLR-style view of each image (CIFAR-10 recipe, torchvision transforms, per image):
    random resized crop to 32×32, horizontal flip, colour jitter (0.4, 0.4, 0.4, 0.1) with
    probability 0.8, greyscale with probability 0.2. x: N×3×32×32 → N×3×32×32.

    torchvision's transforms draw from the global torch RNG (seeded per process by the trainer);
    ``generator`` is accepted for a uniform view interface.
    """
    from torchvision.transforms import v2

    augment = v2.Compose([
        v2.RandomResizedCrop(32, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ])
    return torch.stack([augment(image) for image in x])


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
