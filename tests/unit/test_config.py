import dataclasses

import pytest

from nine.config import FIELDS, PROFILES, ConfigError, RunConfig, make_config


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("sigma", -1.0, "sigma=-1.0 is not allowed"),
        ("sigma", 0.0, "sigma=0.0 is not allowed"),
        ("sigma", float("nan"), "sigma=nan is not allowed"),
        ("eps", 0.0, "eps=0.0 is not allowed: the uniform noise half-width must lie in (0, 0.5]"),
        ("eps", 0.7, "eps=0.7 is not allowed"),
        ("d", 0, "d=0 is not allowed: must be an integer in [1, 1000000000]"),
        ("d", 2.5, "d=2.5 is not allowed"),
        ("prior", "cauchy", "prior='cauchy' is not allowed: must be one of gaussian, uniform, laplace"),
        ("dataset", "cifar", "dataset='cifar' is not allowed: must be one of mnist5k, mnist, digits"),
        ("critic", "bilinear", "critic='bilinear' is not allowed: must be one of quadratic, mlp"),
        ("batch_size", 1, "batch_size=1 is not allowed: must be an integer in [2, 1000000000]"),
        ("epochs", 0, "epochs=0 is not allowed"),
        ("lr", -0.1, "lr=-0.1 is not allowed"),
        ("noise_on", "neither", "noise_on='neither' is not allowed"),
        ("pixel_noise", -0.2, "pixel_noise=-0.2 is not allowed"),
        ("seed", -3, "seed=-3 is not allowed"),
        ("device", "tpu", "device='tpu' is not allowed"),
        ("download", "yes", "download='yes' is not allowed: must be True or False"),
    ],
)
def test_bad_value_names_field_value_and_allowed(field, value, fragment):
    with pytest.raises(ConfigError) as info:
        make_config("cpu", **{field: value})
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_profile_and_field():
    with pytest.raises(ConfigError, match="profile='gpu' is not allowed: must be one of smoke, cpu, paper"):
        make_config("gpu")
    with pytest.raises(ConfigError, match="unknown config field"):
        make_config("cpu", temperature=1.0)


def test_batch_larger_than_subset_rejected():
    with pytest.raises(ConfigError, match="batch_size=512 is not allowed: must not exceed n_train=100"):
        make_config("cpu", n_train=100)


def test_profiles_change_sizes_only():
    size_fields = {"dataset", "n_train", "n_test", "epochs", "batch_size"}
    for values in PROFILES.values():
        assert set(values) <= size_fields
    smoke, cpu = make_config("smoke"), make_config("cpu")
    assert smoke.epochs < cpu.epochs and smoke.n_train < 4000
    assert {f for f in FIELDS if getattr(smoke, f) != getattr(cpu, f)} <= size_fields | {"profile"}


def test_none_override_keeps_profile_value_and_replace_revalidates():
    cfg = make_config("cpu", epochs=None, sigma=0.5)
    assert cfg.epochs == PROFILES["cpu"]["epochs"] and cfg.sigma == 0.5
    with pytest.raises(ConfigError, match="sigma"):
        cfg.replace(sigma=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sigma = 1.0


def test_noise_std():
    assert RunConfig(sigma=0.7).noise_std == 0.7
    assert RunConfig(prior="uniform", eps=0.3).noise_std == pytest.approx(0.3 / 3**0.5)


def test_check_positive_list_names_the_parameter():
    from nine.config import check_positive_list

    check_positive_list("w", [0.1, 2], "weights")
    check_positive_list("w", [], "weights", empty=True)
    for bad in ([], [0], [1.0, -2.0], [float("nan")], "1.0", 3.0):
        with pytest.raises(ConfigError, match=r"^w=.* is not allowed: must be a non-empty list of weights"):
            check_positive_list("w", bad, "weights")
