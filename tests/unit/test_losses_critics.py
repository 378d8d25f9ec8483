import math

import pytest
import torch

from nine.config import make_config
from nine.core.critics import MLPCritic, QuadraticCritic
from nine.core.losses import infonce
from nine.core.objectives import make_critic


def brute_force_infonce(scores: torch.Tensor, softmax: str) -> float:
    """InfoNCE written as explicit loops: over candidates u_i for each y_j, and (both) over y_j for each u_i."""
    n = scores.shape[0]
    s = scores.double().tolist()
    col = sum(-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)) / n
    row = sum(-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)) / n
    return col if softmax == "clean" else 0.5 * (row + col)


@pytest.mark.parametrize("softmax", ["both", "clean"])
@pytest.mark.parametrize("n", [2, 7, 32])
def test_infonce_equals_brute_force(n, softmax):
    scores = torch.randn(n, n, generator=torch.Generator().manual_seed(n)) * 3
    loss, estimate = infonce(scores, softmax)
    reference = brute_force_infonce(scores, softmax)
    assert float(loss) == pytest.approx(reference, rel=1e-6)
    assert float(estimate) == pytest.approx(math.log(n) - reference, rel=1e-5, abs=1e-6)


def test_infonce_estimate_never_exceeds_log_n():
    n = 16
    perfect = torch.eye(n) * 1e4  # positives infinitely better than negatives
    assert float(infonce(perfect)[1]) == pytest.approx(math.log(n), abs=1e-6)
    assert float(infonce(torch.randn(n, n))[1]) < math.log(n)


def test_infonce_rejects_non_square():
    with pytest.raises(ValueError, match=r"scores of shape \(3, 4\) are not allowed"):
        infonce(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="softmax='rows' is not allowed"):
        infonce(torch.zeros(3, 3), "rows")


def test_quadratic_critic_matches_definition():
    g = torch.Generator().manual_seed(0)
    u, y = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    critic = QuadraticCritic(tau=0.7)
    expected = -((y[None, :, :] - u[:, None, :]) ** 2).sum(-1) / (2 * 0.7**2)
    torch.testing.assert_close(critic(u, y), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="tau=0"):
        QuadraticCritic(tau=0)


def test_mlp_critic_equals_mlp_on_concatenated_pairs():
    g = torch.Generator().manual_seed(1)
    u, y = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    critic = MLPCritic(d=2)
    first = torch.nn.Linear(4, 256)
    with torch.no_grad():
        first.weight.copy_(torch.cat([critic.first_u.weight, critic.first_y.weight], 1))
        first.bias.copy_(critic.first_u.bias)
    pairs = torch.cat([u[:, None, :].expand(6, 6, 2), y[None, :, :].expand(6, 6, 2)], -1)
    expected = critic.rest(first(pairs)).squeeze(-1)
    torch.testing.assert_close(critic(u, y), expected, rtol=1e-5, atol=1e-5)


def test_quadratic_critic_is_optimal_on_gaussian_channel():
    """y = u + z, z ~ N(0, σ²I). Over the clean candidates, the quadratic critic at τ = σ gives the
    same estimate as the exact log-density ratio log p(y|u)/p(y) (terms in y alone cancel), beats a
    too-small and a too-large τ, and reaches the capacity C_G (here well below log N)."""
    d, sigma, n = 4, 1.0, 4096
    g = torch.Generator().manual_seed(2)
    u = torch.randn(n, d, generator=g)
    y = u + sigma * torch.randn(n, d, generator=g)
    exact = QuadraticCritic(sigma)(u, y) + (y.pow(2).sum(1) / (2 * (1 + sigma**2)))[None, :]
    estimate = {tau: float(infonce(QuadraticCritic(tau)(u, y), "clean")[1]) for tau in (0.5, sigma, 2.0)}
    assert estimate[sigma] == pytest.approx(float(infonce(exact, "clean")[1]), abs=1e-4)
    assert estimate[sigma] > estimate[0.5] + 0.1 and estimate[sigma] > estimate[2.0] + 0.1
    capacity = d / 2 * math.log(1 + 1 / sigma**2)
    assert estimate[sigma] == pytest.approx(capacity, abs=0.05)
    # over the noisy candidates it is not optimal: it lacks log p(y), and the exact critic does better
    assert float(infonce(exact.T.contiguous().T, "both")[1]) > float(infonce(QuadraticCritic(sigma)(u, y), "both")[1]) + 0.1


def test_make_critic_starts_tau_at_noise_scale():
    assert make_critic(make_config("cpu", sigma=0.4)).tau == pytest.approx(0.4)
    assert make_critic(make_config("cpu", sigma=0.4, noise_on="both")).tau == pytest.approx(0.4 * 2**0.5)
    assert make_critic(make_config("cpu", prior="uniform", eps=0.3)).tau == pytest.approx(0.3 / 3**0.5)
    assert isinstance(make_critic(make_config("cpu", critic="mlp")), MLPCritic)


def test_the_critic_temperature_learns_at_its_own_rate():
    """log τ has its own Adam group: at tau_lr = 0.05 it leaves a wrong start within a few steps; at the
    encoder's rate (0.001, every run before the field) it moves about 0.001 per step."""
    import math

    from nine.config import make_config
    from nine.core.train import train
    from nine.data import load_split

    base = make_config("smoke", dataset="digits", n_train=256, n_test=64, batch_size=64, epochs=2, d=4, sigma=0.05)
    split = load_split(base)
    steps = 2 * 256 // 64
    moved = {}
    for tau_lr in (0.001, 0.05):
        result = train(base.replace(tau_lr=tau_lr), split, progress=lambda line: None)
        assert all("tau" in record for record in result.history)  # logged every epoch
        moved[tau_lr] = math.log(result.history[-1]["tau"] / 0.05)
    assert 0 < moved[0.001] <= steps * 0.001 * 1.01  # Adam moves a parameter by at most ~lr per step
    assert moved[0.05] > 0.2  # two views differ by far more than σ: τ grows


def test_a_group_of_its_own_at_the_same_rate_changes_nothing():
    """Committed runs were trained with log τ in the encoder's group; tau_lr = lr reproduces them bit for bit."""
    import torch

    from nine.config import make_config
    from nine.core.objectives import make_objective
    from nine.core.train import training_step
    from nine.data import load_split, training_view

    cfg = make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=64, d=3, numerics="fp32", tau_lr=1e-3)
    x = load_split(cfg).x_train[:64]
    states = []
    for grouped in (False, True):
        torch.manual_seed(0)
        objective = make_objective(cfg)
        encoder, networks = objective.build()
        groups = (objective.parameter_groups(encoder, networks) if grouped
                  else [*encoder.parameters(), *networks.parameters()])
        optimiser = torch.optim.Adam(groups, lr=cfg.lr)
        generator = torch.Generator().manual_seed(0)
        for _ in range(5):
            training_step(objective, encoder, networks, optimiser, x, training_view(cfg), generator)
        states.append({**encoder.state_dict(), **networks.state_dict()})
    assert len(objective.parameter_groups(encoder, networks)) == 2
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
