"""The prior registry (nine/priors.py): each prior's maps are consistent, its samples follow its law, its
channel numbers are the closed forms', and no module outside the registry branches on a prior's name."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from nine.config import ConfigError, make_config
from nine.core.capacity import capacity_gaussian, capacity_uniform
from nine.core.models import Normalise
from nine.eval.metrics import standardise_like_train
from nine.priors import PRIORS, get

PACKAGE = Path(__file__).resolve().parents[2] / "nine"
NAMES = tuple(PRIORS)
# nine/theory.py computes with the channels' noise laws ("gaussian" / "uniform" noise Z, nine.priors.CHANNELS),
# whose names two priors share; it never branches on a prior
EXEMPT = {"priors.py", "theory.py"}


def test_three_priors_are_registered():
    assert NAMES == ("gaussian", "uniform", "laplace")
    with pytest.raises(ValueError, match="prior='cauchy' is unknown; allowed: gaussian, uniform, laplace"):
        get("cauchy")


@pytest.mark.parametrize("name", NAMES)
def test_normal_coordinates_round_trip(name):
    law = get(name)
    h = np.linspace(-5, 5, 201)
    assert np.allclose(law.to_normal(law.from_normal(h)), h, atol=1e-9)
    # the torch head + embedding agree with the numpy map (float32)
    t = torch.tensor(h, dtype=torch.float32)
    assert np.allclose(law.embed(law.head(t)).numpy(), law.from_normal(h), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_the_marginal_and_a_shifted_sample_does_not(name):
    law = get(name)
    z = law.sample(4000, 2, seed=3)
    for column in z.T:
        assert stats.kstest(column, law.cdf).pvalue > 0.01
    assert stats.kstest(z[:, 0] + 0.2, law.cdf).pvalue < 1e-6
    # the map from standard normal coordinates carries N(0, 1) onto the marginal
    assert stats.kstest(law.from_normal(np.random.default_rng(4).standard_normal(4000)), law.cdf).pvalue > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_the_noise_has_the_stated_law_and_std(name):
    law = get(name)
    z = law.noise(0.3, torch.Size([20000]), torch.device("cpu"), torch.Generator().manual_seed(0)).numpy()
    assert abs(z.std() - law.noise_std(0.3)) < 0.01
    reference = stats.norm(scale=0.3) if law.gaussian_channel else stats.uniform(-0.3, 0.6)
    assert stats.kstest(z, reference.cdf).pvalue > 0.01


def test_capacity_is_the_closed_form_to_the_last_bit():
    for level in (0.02, 0.1, 0.3, 0.5, 1.0, 2.0):
        for d in (2, 16):
            assert get("gaussian").capacity(level, d) == float(capacity_gaussian(level, d))
            assert get("laplace").capacity(level, d) == float(capacity_gaussian(level, d))
            if level <= 0.5:
                assert get("uniform").capacity(level, d) == float(capacity_uniform(level, d))


def test_the_laplace_head_is_the_gaussian_head_mapped():
    torch.manual_seed(0)
    h = 3 * torch.randn(256, 4) + 1
    gaussian, laplace = Normalise(4, "gaussian"), Normalise(4, "laplace")
    assert torch.equal(gaussian(h), laplace.channel(h))  # the same channel input, bit for bit
    z = laplace(h).detach().numpy().astype(np.float64)
    assert np.allclose(get("laplace").to_normal(z), gaussian(h).detach().numpy(), atol=1e-5)
    assert stats.kstest(z.ravel(), get("laplace").cdf).pvalue > 1e-3


def test_the_evaluation_path_maps_a_prior_sample_onto_the_prior():
    for name in NAMES:
        law = get(name)
        train, test = law.sample(4000, 2, seed=1), law.sample(1000, 2, seed=2)
        out = standardise_like_train(train, {"z": test}, "head", name)["z"]
        assert all(stats.kstest(column, law.cdf).pvalue > 0.01 for column in out.T)


def test_priors_without_an_adversarial_or_vae_head_are_refused_by_name():
    with pytest.raises(ConfigError, match="prior='laplace' is not allowed: head='adversarial'"):
        make_config("smoke", prior="laplace", head="adversarial")
    with pytest.raises(ConfigError, match="prior='laplace' is not allowed: head='vae' matches N"):
        make_config("smoke", prior="laplace", head="vae")
    assert make_config("smoke", prior="laplace", sigma=0.5).noise_level == 0.5
    assert make_config("smoke", prior="uniform", eps=0.2).noise_level == 0.2


def comparisons_with_a_prior_name(source: str) -> list[int]:
    """Lines that compare with a prior's name (==, !=, in) or index a dict literal keyed by prior names."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                if any(isinstance(e, ast.Constant) and e.value in NAMES for e in items):
                    lines.append(node.lineno)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):
            if any(isinstance(k, ast.Constant) and k.value in NAMES for k in node.value.keys):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_no_module_outside_the_registry_branches_on_a_prior_name():
    found = {str(p.relative_to(PACKAGE)): lines for p in sorted(PACKAGE.rglob("*.py"))
             if p.name not in EXEMPT and (lines := comparisons_with_a_prior_name(p.read_text()))}
    assert not found, f"comparisons with a prior's name outside nine/priors.py: {found}"


def test_the_branch_finder_finds_branches():
    sample = ('if cfg.prior == "uniform":\n    pass\nx = {"gaussian": 1, "uniform": 2}[prior]\n'
              'y = prior in ("gaussian",)\nz = "laplace" if a else b\n')
    assert comparisons_with_a_prior_name(sample) == [1, 3, 4]
