"""The CIFAR-10 paper configuration: ResNet-18 body, SimCLR views, loader errors (generated images)."""

import pytest
import torch

from nine.config import ConfigError, make_config
from nine.core.models import Encoder, Normalise
from nine.core.train import embed, train
from nine.data import DataError, Split, load_cifar10, simclr_view
from nine.store import run_hash
from nine.store.paths import ROOT


def test_resnet18_encoder_and_simclr_views():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    views = simclr_view(x, generator)
    assert views.shape == x.shape and views.min() >= 0 and views.max() <= 1
    assert not torch.equal(views, simclr_view(x, generator))  # random per call
    assert torch.equal(views, simclr_view(x, torch.Generator().manual_seed(0)))  # only from the generator
    encoder = Encoder(8, Normalise(8), body="resnet18").eval()
    assert encoder(views).shape == (4, 8)
    with pytest.raises(ValueError, match=r"input of shape \(4, 1, 24, 24\) is not allowed: the encoder takes N×3×32×32"):
        encoder(torch.rand(4, 1, 24, 24))


def test_simclr_view_statistics():
    """Over many draws: a colour image keeps its colour unless greyscaled (about 20 %), the crop
    keeps a constant image constant, and a left-right ramp is mirrored in about half the views."""
    n = 2000
    generator = torch.Generator().manual_seed(1)
    red = torch.zeros(n, 3, 32, 32)
    red[:, 0] = 0.8
    views = simclr_view(red, generator)
    spread = views.amax((2, 3)) - views.amin((2, 3))
    assert spread.max() < 1e-5  # constant in, constant out (whatever the crop and jitter)
    grey = (views[:, 0, 0, 0] - views[:, 1, 0, 0]).abs() < 1e-6
    assert 0.16 < grey.float().mean() < 0.24
    ramp = torch.linspace(0, 1, 32).expand(n, 3, 32, 32).clone()
    ramps = simclr_view(ramp, generator)
    mirrored = ramps[:, 0, 16, 0] > ramps[:, 0, 16, -1]
    assert 0.4 < mirrored.float().mean() < 0.6


def test_train_a_step_on_generated_cifar_like_images(tmp_path):
    cfg = make_config("smoke", dataset="cifar10", encoder="resnet18", n_train=None, n_test=None, batch_size=8,
                      epochs=1, d=4)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    result = train(cfg, Split(x, y, x[:8], y[:8]), log_path=tmp_path / "log.jsonl", progress=lambda line: None)
    assert len(result.history) == 1 and torch.isfinite(torch.tensor(result.history[0]["loss"]))
    assert embed(result.encoder, x[:8], lambda b: b).shape == (8, 4)
    with pytest.raises(ValueError, match=r"x_train of shape \(16, 1, 28, 28\) is not allowed: need N×3×32×32"):
        train(cfg, Split(torch.rand(16, 1, 28, 28), y, x, y))


def test_cifar_loader_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(str(tmp_path / "nowhere"))
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="holds no readable CIFAR-10"):
        load_cifar10(str(tmp_path))
    with pytest.raises(DataError, match="data_dir=None"):
        load_cifar10(None)


def test_encoder_must_match_dataset_and_old_hashes_stay():
    with pytest.raises(ConfigError, match="encoder='resnet18' is not allowed: cannot read dataset='mnist5k'"):
        make_config("cpu", encoder="resnet18")
    with pytest.raises(ConfigError, match="encoder='mnist-cnn' is not allowed: cannot read dataset='cifar10'"):
        make_config("paper", dataset="cifar10")
    # the committed run keeps its hash: the encoder field is left out at its default
    assert (ROOT / "results" / run_hash(make_config("cpu", numerics="fp32", tau_lr=1e-3))).is_dir()
