"""The encoder, the heads the methods put on it, the channel noise, and the objective registry."""

import math

import pytest
import torch

from nine.config import HEADS, ConfigError, make_config
from nine.core.models import ChannelNoise, Encoder, Normalise, PosteriorMean, Squash, pick_device
from nine.core.objectives import OBJECTIVES, make_objective


def test_encoder_shapes():
    enc = Encoder(5, torch.nn.Identity())
    assert enc(torch.rand(8, 1, 24, 24)).shape == (8, 5)
    assert enc.body(torch.rand(3, 1, 24, 24)).shape == (3, 128)
    with pytest.raises(ValueError, match=r"input of shape \(3, 1, 28, 28\) is not allowed"):
        enc(torch.rand(3, 1, 28, 28))


def test_gaussian_head_standardises_each_coordinate():
    head = Normalise(3).train()
    h = torch.randn(4096, 3) * torch.tensor([5.0, 0.5, 2.0]) + torch.tensor([10.0, -3.0, 0.0])
    u = head(h)
    torch.testing.assert_close(u.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(u.var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert not any(p.requires_grad for p in head.parameters())  # affine=False: no learnable scale


def test_uniform_head_maps_into_cube_and_noise_is_bounded():
    u = Normalise(2, "uniform").train()(torch.randn(4096, 2) * 3)
    assert u.min() >= 0 and u.max() <= 1 and abs(u.mean().item() - 0.5) < 0.01
    z = ChannelNoise("uniform", 0.1).sample(torch.Size([4096, 2]), torch.device("cpu"))
    assert z.abs().max() <= 0.1 + 1e-6 and z.abs().max() > 0.09


def test_gaussian_noise_has_std_sigma_and_follows_its_generator():
    noise = ChannelNoise("gaussian", 0.5)
    z = noise.sample(torch.Size([8192, 2]), torch.device("cpu"), torch.Generator().manual_seed(3))
    assert float(z.std()) == pytest.approx(0.5, rel=0.05)
    again = noise.sample(torch.Size([8192, 2]), torch.device("cpu"), torch.Generator().manual_seed(3))
    assert torch.equal(z, again)


def test_baseline_heads_squash_or_take_the_mean():
    h = torch.randn(16, 4) * 3
    assert torch.equal(Squash("gaussian")(h), h)
    assert float(Squash("uniform")(h).min()) > 0 and float(Squash("uniform")(h).max()) < 1
    assert torch.equal(PosteriorMean()(h), h[:, :2])


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device='cuda'"):
            pick_device("cuda")


def test_every_head_a_config_allows_has_an_objective_with_a_label():
    assert set(OBJECTIVES) == set(HEADS)
    labels = {head: make_objective(make_config("cpu", head=head, d=4)).label() for head in HEADS}
    assert labels["nine"] == "NINE σ=0.3" and labels["plain"] == "plain InfoNCE" and len(set(labels.values())) == 5


@pytest.mark.parametrize(("head", "noisy"), [("nine", True), ("normalise", False), ("plain", False),
                                             ("adversarial", False)])
def test_only_nine_adds_noise_and_only_to_the_second_view(head, noisy):
    objective = make_objective(make_config("cpu", head=head, d=2, sigma=0.5))
    encoder, _ = objective.build()
    encoder.eval()
    x = torch.rand(256, 1, 28, 28)
    same_view = lambda batch, generator: batch[..., 2:26, 2:26]  # noqa: E731 (both views identical)
    u, y = objective.pair(encoder, x, same_view, torch.Generator(), torch.Generator().manual_seed(0))
    difference = (y - u).std().item()
    assert difference == pytest.approx(0.5, rel=0.1) if noisy else difference == 0
    assert math.isfinite(objective.capacity()) == noisy


def test_reference_runs_have_infinite_capacity_and_default_hash_is_unchanged(tiny_cfg, tmp_path):
    from nine.store import execute, load_run, run_hash

    run = load_run(execute(tiny_cfg.replace(head="plain"), tmp_path))
    assert math.isinf(run.metrics["capacity"]) and math.isfinite(run.metrics["infonce_test"])
    assert run_hash(tiny_cfg.replace(head="nine")) == run_hash(tiny_cfg) != run_hash(tiny_cfg.replace(head="plain"))
    encoder, critic = run.load_model()
    assert type(encoder.head).__name__ == "Identity" and hasattr(critic, "tau")
