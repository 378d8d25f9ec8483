"""dSprites from its factors, the original-file loader, and the disentanglement scores on known latents."""

import numpy as np
import pytest

from nine.data import dsprites
from nine.eval.disentanglement import dci, factor_r2, mig, random_rotation


def test_grid_is_the_original_one():
    assert dsprites.SIZES == (3, 6, 40, 32, 32) and np.prod(dsprites.SIZES) == 737_280
    assert dsprites.GRID["scale"][0] == 0.5 and dsprites.GRID["orientation"][-1] == pytest.approx(2 * np.pi)


def test_render_is_binary_inside_the_image_and_follows_the_factors():
    s = dsprites.sample(200, seed=0)
    assert s.images.shape == (200, 1, 64, 64) and set(np.unique(s.images)) <= {0.0, 1.0}
    border = np.concatenate([s.images[:, 0, 0], s.images[:, 0, -1], s.images[:, 0, :, 0], s.images[:, 0, :, -1]], axis=1)
    assert border.sum() == 0 and (s.images.sum((1, 2, 3)) > 0).all()  # every sprite drawn, none cut by the edge
    area = s.images.sum((1, 2, 3))
    small, large = s.classes[:, 1] == 0, s.classes[:, 1] == 5
    assert area[large].mean() > 3 * area[small].mean()  # area grows with scale² (1/0.5)² = 4
    left = dsprites.render(np.array([[0, 5, 0, 0, 16]]))
    right = dsprites.render(np.array([[0, 5, 0, 31, 16]]))
    cols = lambda im: np.nonzero(im.images[0, 0].sum(0))[0].mean()  # noqa: E731
    assert cols(left) < 20 < 44 < cols(right)
    square = dsprites.render(np.array([[0, 5, 0, 16, 16], [0, 5, 5, 16, 16]]))
    assert not np.array_equal(square.images[0], square.images[1])  # rotation changes the square
    assert dsprites.sample(5, seed=1, size=32).images.shape == (5, 1, 32, 32)
    assert (dsprites.sample(20, seed=2, fixed={"shape": 2}).classes[:, 0] == 2).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dsprites.render(np.array([[3, 0, 0, 0, 0]])), "shape index 3 is not allowed: must lie in 0..2"),
        (lambda: dsprites.render(np.zeros((2, 4), dtype=int)), "factor indices of shape"),
        (lambda: dsprites.render(np.zeros((1, 5), dtype=int), size=4), "size=4 is not allowed"),
        (lambda: dsprites.sample(0), "n=0 is not allowed"),
        (lambda: dsprites.sample(3, fixed={"colour": 0}), "factor 'colour' is not allowed"),
    ],
)
def test_bad_factors_give_one_line_errors(call, message):
    with pytest.raises(dsprites.DSpritesError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_loader_reads_a_file_in_the_original_format(tmp_path):
    made = dsprites.sample(30, seed=3)
    colour = np.zeros((30, 1))
    values = made.values.copy()
    values[:, 0] += 1  # the original stores shape as 1, 2, 3
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    np.savez(path, imgs=made.images[:, 0].astype(np.uint8), latents_classes=np.hstack([colour, made.classes]).astype(np.int64),
             latents_values=np.hstack([colour + 1, values]))
    loaded = dsprites.load_npz(path)
    assert np.array_equal(loaded.images, made.images) and np.array_equal(loaded.classes, made.classes)
    assert np.allclose(loaded.values, made.values)
    subset = dsprites.load_npz(path, n=10, seed=0)
    assert len(subset.images) == 10 and subset.images.shape[1:] == (1, 64, 64)
    with pytest.raises(dsprites.DSpritesError, match="does not exist: download"):
        dsprites.load_npz(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(dsprites.DSpritesError, match="cannot be read"):
        dsprites.load_npz(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def latents():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 10, (3000, 3))
    aligned = factors + 0.3 * rng.standard_normal(factors.shape)
    rotated = (aligned - aligned.mean(0)) @ random_rotation(3, seed=1)
    return factors, aligned, rotated, rng.standard_normal(factors.shape)


def test_scores_rank_aligned_over_rotated_over_unrelated_latents(latents):
    f, aligned, rotated, noise = latents
    split = lambda z: (z[:2000], f[:2000], z[2000:], f[2000:])  # noqa: E731
    assert mig(aligned, f) > 0.8 > mig(rotated, f) > 0.1 > mig(noise, f)
    a, r, n = dci(*split(aligned)), dci(*split(rotated)), dci(*split(noise))
    assert a["disentanglement"] > 0.7 > 0.2 > r["disentanglement"] and n["disentanglement"] < 0.05
    assert a["completeness"] > 0.7 > 0.2 > r["completeness"]
    assert a["informativeness"] > 0.85 and n["informativeness"] < 0.2
    # a rotation keeps what is linearly decodable: R² is rotation-invariant, the axis-based scores are not
    assert factor_r2(*split(aligned)) == pytest.approx(factor_r2(*split(rotated)), abs=1e-9) and factor_r2(*split(aligned)) > 0.95


def test_random_rotation_is_orthogonal_and_seeded():
    q = random_rotation(5, seed=4)
    assert np.allclose(q @ q.T, np.eye(5)) and np.array_equal(q, random_rotation(5, seed=4))
    assert not np.allclose(q, random_rotation(5, seed=5))


def test_scores_refuse_mismatched_factors():
    with pytest.raises(ValueError, match="factors of shape .* are not allowed"):
        mig(np.zeros((10, 2)), np.zeros((9, 2), dtype=int))
    with pytest.raises(ValueError, match="need d >= 2"):
        mig(np.random.default_rng(0).standard_normal((10, 1)), np.zeros((10, 1), dtype=int))


def test_dsprites_dataset_gives_factors_and_views_that_keep_them():
    import torch

    from nine.config import ConfigError, make_config
    from nine.data import load_split, training_view

    cfg = make_config("smoke", dataset="dsprites", encoder="sprites-cnn", n_train=64, n_test=32, batch_size=32)
    split = load_split(cfg)
    assert split.x_train.shape == (64, 1, 28, 28) and split.factors_train.shape == (64, 5)
    assert torch.equal(split.y_test, torch.as_tensor(split.factors_test[:, 0]))
    assert not np.array_equal(split.factors_train[:32], split.factors_test)  # train and test drawn apart
    view = training_view(cfg)(split.x_train, torch.Generator().manual_seed(0))
    assert view.shape == split.x_train.shape  # no crop: position, scale and orientation are untouched
    assert float((view - split.x_train).std()) == pytest.approx(cfg.pixel_noise, rel=0.05)
    with pytest.raises(ConfigError, match="encoder='mnist-cnn' is not allowed: cannot read dataset='dsprites'"):
        make_config("smoke", dataset="dsprites")
