"""The baselines: adversarial prior matching and the VAE, trained by the same trainer and run store."""

import math

import pytest
import torch

from nine.config import ConfigError, make_config
from nine.core.baselines import AdversarialCritic, Decoder, adversarial_terms, gaussian_kl, vae_loss
from nine.core.objectives import make_objective
from nine.store import execute, load_run


def test_each_network_gets_gradients_only_from_its_own_term():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(3, 2)
    critic = AdversarialCritic(2, tau=1.0)
    u = encoder(torch.randn(64, 3))
    encoder_term, discriminator_term = adversarial_terms(critic, u, "gaussian")
    encoder_term.backward(retain_graph=True)
    assert encoder.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.discriminator.parameters())
    encoder.weight.grad = None
    discriminator_term.backward()
    assert encoder.weight.grad is None and all(p.grad.abs().sum() > 0 for p in critic.discriminator.parameters())


@pytest.mark.parametrize(("prior", "start", "target_std"), [("gaussian", 3.0, 1.0), ("uniform", 0.3, 1 / math.sqrt(12))])
def test_the_adversary_alone_pulls_a_wrong_scale_onto_the_prior(prior, start, target_std):
    torch.manual_seed(1)
    scale = torch.nn.Parameter(torch.tensor(start))
    critic = AdversarialCritic(1, tau=1.0)
    optimiser = torch.optim.Adam([scale, *critic.parameters()], lr=1e-2)
    for _ in range(400):
        h = scale * torch.randn(256, 1)
        u = torch.sigmoid(h) if prior == "uniform" else h
        encoder_term, discriminator_term = adversarial_terms(critic, u, prior)
        optimiser.zero_grad()
        (encoder_term + discriminator_term).backward()
        optimiser.step()
    with torch.no_grad():
        h = scale * torch.randn(20000, 1)
        u = torch.sigmoid(h) if prior == "uniform" else h
    assert float(u.std()) == pytest.approx(target_std, rel=0.25)


def test_vae_samples_in_its_loss_embeds_the_mean_and_keeps_the_kl():
    mean, log_var = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])  # variances (1, 4)
    assert float(gaussian_kl(mean, log_var)) == pytest.approx(0.5 * (1 + 0 + 1 + 4 - 2 - math.log(4.0)))
    objective = make_objective(make_config("cpu", head="vae", d=2))
    encoder, decoder = objective.build()
    assert encoder.project[-1].out_features == 4  # a mean and a log-variance per coordinate
    encoder.eval()
    x = torch.rand(8, 1, 24, 24)
    torch.testing.assert_close(encoder(x), encoder.features(x)[:, :2])
    encoder.train()
    loss, estimate = objective.loss(encoder, decoder, torch.rand(8, 1, 28, 28), lambda b, g: b[..., 2:26, 2:26], None)
    assert torch.isfinite(loss) and math.isnan(float(estimate))
    assert Decoder(2, (1, 24, 24))(mean).shape == (1, 1, 24, 24) and Decoder(2, (1, 28, 28))(mean).shape == (1, 1, 28, 28)
    loss = vae_loss(decoder, mean, gaussian_kl(mean, log_var), torch.rand(1, 1, 24, 24) * 1.4 - 0.2, beta=4.0)
    assert torch.isfinite(loss)  # targets outside [0, 1] are clipped


@pytest.mark.parametrize("head", ["adversarial", "vae"])
def test_baselines_train_resume_and_evaluate_like_any_run(tiny_cfg, tmp_path, head, monkeypatch):
    cfg = tiny_cfg.replace(head=head, epochs=4, checkpoint_every=2)
    whole = load_run(execute(cfg, tmp_path / "whole"))
    assert whole.metrics["linear_probe_acc"] > 0.1 and len(whole.log) == 4
    assert math.isnan(whole.metrics["infonce_test"]) == (head == "vae")
    encoder, critic = whole.load_model()
    assert type(critic).__name__ == {"adversarial": "AdversarialCritic", "vae": "Decoder"}[head]

    import nine.core.train

    calls = {"n": 0}
    original = nine.core.train.training_step

    def dies_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * (len(load_run(whole.path).embeddings["y_train"]) // cfg.batch_size) + 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(nine.core.train, "training_step", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        execute(cfg, tmp_path / "cut")
    monkeypatch.setattr(nine.core.train, "training_step", original)
    resumed = load_run(execute(cfg, tmp_path / "cut"))
    assert resumed.log == [{**r, "samples_per_s": s["samples_per_s"], "elapsed_s": s["elapsed_s"]}
                           for r, s in zip(whole.log, resumed.log)]


def test_baseline_configs_refuse_what_they_cannot_do():
    with pytest.raises(ConfigError, match="prior='uniform' is not allowed: head='vae' matches N\\(0, I\\) only"):
        make_config(head="vae", prior="uniform")
    with pytest.raises(ConfigError, match="beta=0 is not allowed"):
        make_config(head="vae", beta=0)
    with pytest.raises(ConfigError, match="adv_weight=-1 is not allowed"):
        make_config(head="adversarial", adv_weight=-1)


def test_adversarial_tuning_knobs():
    """The R1 penalty adds ∇D on prior samples; the discriminator's own rate is a parameter group of
    its own only when asked; the normalise head is NINE's normalisation."""
    from nine.core.models import Normalise, Squash

    cfg = make_config("smoke", dataset="digits", head="adversarial", d=2)
    objective = make_objective(cfg)
    encoder, networks = objective.build()
    torch.manual_seed(0)
    u = torch.randn(64, 2)
    torch.manual_seed(1)
    _, plain = adversarial_terms(networks, u, "gaussian")
    torch.manual_seed(1)
    _, penalised = adversarial_terms(networks, u, "gaussian", gradient_penalty=10.0)
    assert penalised > plain
    penalised.backward()
    assert all(p.grad is not None for p in networks.discriminator.parameters())
    assert len(objective.parameter_groups(encoder, networks)) == 2  # everything, and log τ
    tuned = make_objective(cfg.replace(adv_lr_ratio=4.0))
    encoder, networks = tuned.build()
    groups = tuned.parameter_groups(encoder, networks)
    discriminator = {id(p) for p in networks.discriminator.parameters()}
    assert {id(p) for p in groups[-1]["params"]} == discriminator and groups[-1]["lr"] == 4 * cfg.lr
    assert not discriminator & {id(p) for p in groups[0]["params"]}
    assert isinstance(make_objective(cfg).build()[0].head, Squash)
    assert isinstance(make_objective(cfg.replace(adv_head="normalise")).build()[0].head, Normalise)
