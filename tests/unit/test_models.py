import pytest
import torch

from nine.models import Encoder, NINEHead, pick_device


def test_encoder_shapes():
    enc = Encoder(d=5)
    assert enc(torch.rand(8, 1, 24, 24)).shape == (8, 5)
    assert enc.body(torch.rand(3, 1, 24, 24)).shape == (3, 128)


def test_gaussian_head_standardises_each_coordinate():
    head = NINEHead(d=3, sigma=0.5).train()
    h = torch.randn(4096, 3) * torch.tensor([5.0, 0.5, 2.0]) + torch.tensor([10.0, -3.0, 0.0])
    u = head.normalise(h)
    torch.testing.assert_close(u.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(u.var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert not any(p.requires_grad for p in head.parameters())  # affine=False: no learnable scale


def test_noise_in_training_mode_only():
    torch.manual_seed(0)
    head = NINEHead(d=2, sigma=0.5)
    h = torch.randn(2048, 2)
    head.train()
    clean = head(h, noisy=False)
    noisy = head(h)
    assert (noisy - clean).std().item() == pytest.approx(0.5, rel=0.05)
    head.eval()
    torch.testing.assert_close(head(h), head(h))
    torch.testing.assert_close(head(h), head.normalise(h))


def test_uniform_head_maps_into_cube_and_noise_is_bounded():
    head = NINEHead(d=2, prior="uniform", eps=0.1).train()
    h = torch.randn(4096, 2) * 3
    u = head.normalise(h)
    assert u.min() >= 0 and u.max() <= 1
    assert abs(u.mean().item() - 0.5) < 0.01
    z = head(h) - u
    assert z.abs().max() <= 0.1 + 1e-6 and z.abs().max() > 0.09


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="device='cuda'"):
            pick_device("cuda")


def test_reference_heads_normalise_only_or_nothing():
    torch.manual_seed(0)
    h = torch.randn(512, 2) * 3 + 5
    normalise = NINEHead(d=2, mode="normalise").train()
    torch.testing.assert_close(normalise(h), normalise.normalise(h))  # no noise even in training mode
    assert abs(normalise(h).mean().item()) < 1e-4
    plain = NINEHead(d=2, mode="plain").train()
    assert torch.equal(plain(h), h)
    assert NINEHead(d=2).noisy and not normalise.noisy and not plain.noisy


def test_reference_runs_have_infinite_capacity_and_default_hash_is_unchanged(tiny_cfg, tmp_path):
    import math

    from nine.runs import execute, load_run, run_hash

    run = load_run(execute(tiny_cfg.replace(head="plain"), tmp_path))
    assert math.isinf(run.metrics["capacity"]) and math.isfinite(run.metrics["infonce_test"])
    assert run_hash(tiny_cfg.replace(head="nine")) == run_hash(tiny_cfg) != run_hash(tiny_cfg.replace(head="plain"))
