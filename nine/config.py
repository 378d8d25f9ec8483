"""Typed run configuration, its validation, and the three profiles.

A profile only sets sizes (data, epochs, batch); it never changes a code path.

- ``smoke``: a few hundred MNIST digits and two epochs, so every notebook runs in under a
  minute on two CPU cores (used by the notebook tests).
- ``cpu``: what the book shows: the 5,000-digit MNIST subset (4,000 train / 1,000 test), 60 epochs.
- ``paper``: the published MNIST protocol at full scale (60,000 digits, 2,000 epochs), for a GPU.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from nine.priors import NAMES as PRIORS
from nine.priors import Prior
from nine.priors import get as get_prior

DATASETS = ("mnist5k", "mnist", "digits", "cifar10", "dsprites")
# encoder -> the datasets it reads
ENCODERS = {"mnist-cnn": ("mnist5k", "mnist", "digits"), "resnet18": ("cifar10",), "sprites-cnn": ("dsprites",)}
CRITICS = ("quadratic", "mlp")
NOISE_BRANCHES = ("one", "both")
VIEW_PAIRS = ("two", "same")
ADVERSARY_HEADS = ("squash", "normalise")
HEADS = ("nine", "normalise", "plain", "adversarial", "vae")  # one objective each in nine.core.objectives
SOFTMAX_AXES = ("both", "clean")
DEVICES = ("auto", "cpu", "cuda")
# how the encoder computes: float32 in PyTorch's default memory layout (every run before the field
# existed), float32 in channels-last layout, or channels-last with bfloat16 autocast in the encoder's convolutions
# and MLP (its output, the head, the critic and the loss stay float32). "fused" (a hand-written kernel for the first
# block, retired) is what six committed runs recorded: they load, keep their hashes and compute as channels_last
# (the same function of the same weights), and no new run is trained with it.
NUMERICS = ("fp32", "channels_last", "bf16")
RETIRED_NUMERICS = ("fused",)
# "auto" (the default) is resolved by the run store when a run is looked up or trained
# (nine.store.runs.resolve_numerics), never from the machine alone: the numerics of a finished run of the same
# configuration (the book's recipe, bf16, first), so that a committed run is found on every CPU; else the fastest
# here: bf16 where bf16 runs on hardware units (a CUDA device with bf16; a CPU with AMX or AVX-512 BF16, unless
# oneDNN is told to stay below them), else float32 channels-last (bf16 would be emulated, slower than float32).
# (A config trained directly by nine.core.train.train, outside the store, computes with that fastest numerics.)
AUTO_NUMERICS = "auto"
RECIPE_NUMERICS = "bf16"  # what the committed runs of the pages were computed with
BF16_UNITS = ("avx512_bf16", "amx_bf16")
SIGMA_RANGE = (1e-3, 1e3)
MAX_SEED = 2**32 - 1


class NineError(Exception):
    """An error a user can cause (a bad value, missing data, a corrupt run); its message is one line
    naming the value and what is allowed, and the command line prints just that line."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (library errors can run to many lines), for
    quoting inside a one-line message."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


# the fields that do not change what a run computes (where it runs, where its data lie, how often it checkpoints)
BOOKKEEPING = ("profile", "device", "data_dir", "download", "checkpoint_every")


def computation_key(cfg: RunConfig) -> str:
    """What a run computes, as one string (its config less :data:`BOOKKEEPING`): a checkpoint carries it, so
    that it is resumed only by the run it was written by."""
    import hashlib
    import json

    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in BOOKKEEPING}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=list).encode()).hexdigest()[:16]


class ConfigError(NineError, ValueError):
    """A configuration value outside what is allowed; the message is one line."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a training run (and hence its hash in :mod:`nine.store`)."""

    # representation and its prior
    prior: str = "gaussian"  # law the representation is pushed towards: a name of nine.priors.PRIORS
    head: str = "nine"  # nine: normalise + noise | normalise: no noise | plain: plain InfoNCE (neither)
    # | adversarial: InfoNCE + DIM's adversarial prior matching | vae: a VAE with the same encoder body
    d: int = 2  # representation dimension
    sigma: float = 0.3  # std of the Gaussian noise N(0, sigma^2 I) (priors whose channel is Gaussian)
    eps: float = 0.05  # half-width of the uniform noise U(-eps, eps) (the uniform prior)
    # sigma and eps are one idea, the noise level (``noise_level``); the prior says which field holds it
    adv_weight: float = 1.0  # head="adversarial": weight of the adversarial (non-saturating) term
    adv_head: str = "squash"  # head="adversarial": "squash" onto the prior's support, or NINE's "normalise" (no noise)
    adv_gp: float = 0.0  # head="adversarial": weight of the R1 gradient penalty on prior samples (0 = none)
    adv_lr_ratio: float = 1.0  # head="adversarial": the discriminator's learning rate / lr (two time-scale updates)
    beta: float = 1.0  # head="vae": weight of the KL term (beta-VAE; 1 = the plain VAE)
    noise_on: str = "one"  # views that get noise: "one" (I(f(X'); f(X)+Z)) or "both"
    views: str = "two"  # "two" independent augmented views per image, or the "same" view in both branches (only Z differs)
    encoder: str = "mnist-cnn"  # mnist-cnn (the MNIST protocol) | resnet18 (CIFAR-10, SimCLR views)
    critic: str = "quadratic"  # quadratic: -|y-u|^2/(2 tau^2); mlp: MLP on concatenated pairs
    softmax: str = "clean"  # InfoNCE softmax over the clean u only (exact for the quadratic critic) or "both"
    # data
    dataset: str = "mnist5k"  # mnist5k (offline, 5,000 real digits) | mnist | cifar10 (torchvision) | digits
    # | dsprites (generated from its factors, 28×28)
    data_dir: str | None = None  # torchvision data root (dataset="mnist" or "cifar10")
    download: bool = False  # dataset="mnist" or "cifar10": download into data_dir when it is not there
    n_train: int | None = None  # stratified subset of the train split; None = all of it
    n_test: int | None = None  # stratified subset of the test split; None = all of it
    pixel_noise: float = 0.2  # std of the additive Gaussian pixel noise of the augmentation
    held_out: tuple[int, ...] = ()  # classes removed from train and test (novel classes for outlier detection)
    # optimisation
    epochs: int = 60
    batch_size: int = 512  # InfoNCE batch N: the estimate never exceeds log N
    lr: float = 1e-3
    tau_lr: float = 0.1  # Adam rate of the quadratic critic's log τ (its own parameter group); every run
    # before this field has 0.001, the encoder's rate, at which τ barely leaves its start in a cpu-profile run
    seed: int = 0
    numerics: str = AUTO_NUMERICS  # bf16 | channels_last | fp32 (every run before this field) | auto: see AUTO_NUMERICS
    continues: str | None = None  # hash of a finished run of this config with fewer epochs: start from its
    # weights after its last epoch and train on to `epochs` (its optimiser state is not stored: Adam restarts)
    # bookkeeping (not part of the run hash)
    profile: str = "cpu"
    device: str = "auto"  # auto = CUDA when available, else CPU
    checkpoint_every: int = 5  # epochs between checkpoints of an unfinished run (resume after a crash)

    def __post_init__(self) -> None:
        check_classes("held_out", self.held_out)  # before a list (as config.json stores it) becomes a tuple
        if isinstance(self.held_out, list):
            object.__setattr__(self, "held_out", tuple(self.held_out))
        if self.numerics not in RETIRED_NUMERICS:  # a committed run's record: it loads, it is never trained again
            check_choice("numerics", self.numerics, (*NUMERICS, AUTO_NUMERICS))
        check_choice("device", self.device, DEVICES)
        validate(self)

    @property
    def law(self) -> Prior:
        """The prior (:mod:`nine.priors`) the representation is pushed towards."""
        return get_prior(self.prior)

    @property
    def noise_level(self) -> float:
        """The channel's noise level: σ or ε, whichever field the prior names."""
        return getattr(self, self.law.level)

    @property
    def noise_std(self) -> float:
        """Standard deviation of one noise coordinate (uniform U(-eps, eps) has eps/sqrt(3))."""
        return self.law.noise_std(self.noise_level)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        """This config with ``changes`` (a None among them sets the field to None, e.g. ``n_train=None``)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
        return dataclasses.replace(self, **changes)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    line = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def native_bf16(device: str = "auto", flags: set[str] | None = None, max_isa: str | None = None) -> bool:
    """Whether bfloat16 runs on hardware units on ``device``: CUDA with bf16 support, or a CPU whose flags name
    AMX or AVX-512 BF16 while oneDNN's ``ONEDNN_MAX_CPU_ISA`` (``max_isa``) does not hide them."""
    import os

    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA", "") if max_isa is None else max_isa).upper()
    if isa and isa != "ALL" and not any(part in isa for part in ("BF16", "AMX")):
        return False
    return bool(set(BF16_UNITS) & (cpu_flags() if flags is None else flags))


def fastest_numerics(device: str = "auto") -> str:
    """The numerics a new run computes fastest with on this machine: "bf16" with hardware bf16
    (:func:`native_bf16`), else "channels_last" (float32)."""
    return "bf16" if native_bf16(device) else "channels_last"


PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="mnist5k", n_train=512, n_test=256, epochs=2, batch_size=128),
    "cpu": dict(dataset="mnist5k", n_train=None, n_test=None, epochs=60, batch_size=512),
    "paper": dict(dataset="mnist", n_train=None, n_test=None, epochs=2000, batch_size=512),
}

FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


def make_config(profile: str = "cpu", **overrides: Any) -> RunConfig:
    """Build a validated :class:`RunConfig` from a profile's sizes and explicit overrides.

    ``None`` overrides are ignored, so a notebook can pass ``epochs=None`` for "the profile's".
    """
    check_choice("profile", profile, tuple(PROFILES))
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    values = {**PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None}}
    values["profile"] = profile
    return RunConfig(**values)


def config_from_dict(fields: dict[str, Any]) -> RunConfig:
    """The config a ``config.json`` (:meth:`RunConfig.to_dict`) describes, a None in it kept as None
    (where :func:`make_config` would take the profile's value instead)."""
    return make_config(**fields).replace(**{k: None for k, v in fields.items() if v is None and k != "profile"})


# fields whose value is text on the command line, whatever it looks like ("5", "1e3", an all-digit run hash)
TEXT_FIELDS = ("prior", "head", "adv_head", "noise_on", "views", "encoder", "critic", "softmax", "dataset",
               "data_dir", "numerics", "continues", "profile", "device")


def parse_field(name: str, text: str) -> Any:
    """A config field as written on a command line: text for :data:`TEXT_FIELDS` ('None' is None for those
    that may be None), else :func:`parse_value`."""
    if name in TEXT_FIELDS:
        return None if text == "None" and name in ("data_dir", "continues") else text
    return parse_value(text)


def parse_value(text: str) -> Any:
    """A parameter as written on a command line, read back: '0.3' → 0.3, '16' → 16, 'None' → None,
    '[8, 9]' → [8, 9]; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except Exception:  # noqa: BLE001 (also MemoryError, RecursionError: a huge or deeply nested literal stays text)
        return text


def _fail(name: str, value: Any, allowed: str) -> None:
    if _is_int(value) and value.bit_length() > 200:  # repr of a huge integer is slow, and past 4,300 digits an error
        shown = f"<an integer of {value.bit_length():,} bits>"
    else:
        shown = repr(value)
    if len(shown) > 80:  # a long value is cut, so that the message stays one short line
        shown = shown[:60] + " … " + shown[-15:]
    raise ConfigError(f"{name}={shown} is not allowed: {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    if _is_int(value):
        return abs(value) < 1e308  # an integer past the float range is no finite number here
    return isinstance(value, float) and math.isfinite(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        _fail(name, value, f"must be one of {', '.join(choices)}")


MAX_COUNT = 10**9  # no count of a run (epochs, batch, digits, dimensions) is larger: a bigger one is a typo


def check_int(name: str, value: Any, low: int, optional: bool = False, high: int = MAX_COUNT) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer in [``low``, ``high``] (or None if ``optional``)."""
    if optional and value is None:
        return
    if not _is_int(value) or not low <= value <= high:
        _fail(name, value, f"must be an integer in [{low}, {high}]" + (" or None" if optional else ""))


def check_positive(name: str, value: Any, what: str = "the value", at_most: float = math.inf) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number > 0 (and <= ``at_most``)."""
    if not _is_real(value) or value <= 0 or value > at_most:
        _fail(name, value, f"{what} must be a finite number > 0" + (f" and <= {at_most:g}" if at_most < math.inf else ""))


def check_bool(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is True or False."""
    if not isinstance(value, bool):
        _fail(name, value, "must be True or False")


def check_int_list(name: str, value: Any, low: int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a non-empty list of integers >= ``low``."""
    if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) and v >= low for v in value):
        _fail(name, value, f"must be a non-empty list of integers >= {low}")


def check_positive_list(name: str, value: Any, what: str = "values", empty: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a list of finite numbers > 0 (non-empty unless ``empty``)."""
    if (not isinstance(value, (list, tuple)) or (not value and not empty)
            or not all(_is_real(v) and v > 0 for v in value)):
        _fail(name, value, f"must be a {'' if empty else 'non-empty '}list of {what}, each a finite number > 0")


def check_classes(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a tuple or list of distinct classes 0..9 leaving two."""
    if (not isinstance(value, (tuple, list)) or not all(_is_int(c) and 0 <= c <= 9 for c in value)
            or len(set(value)) != len(value) or len(value) > 8):
        _fail(name, value, "must be a list of distinct classes in 0..9 leaving at least two, e.g. [8, 9]")


def validate(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` naming the first field whose value is not allowed."""
    for name, choices in (
        ("prior", PRIORS),
        ("dataset", DATASETS),
        ("critic", CRITICS),
        ("noise_on", NOISE_BRANCHES),
        ("views", VIEW_PAIRS),
        ("adv_head", ADVERSARY_HEADS),
        ("softmax", SOFTMAX_AXES),
        ("encoder", tuple(ENCODERS)),
        ("head", HEADS),
        ("device", DEVICES),
        ("numerics", (*NUMERICS, AUTO_NUMERICS, *RETIRED_NUMERICS)),
        ("profile", tuple(PROFILES)),
    ):
        check_choice(name, getattr(cfg, name), choices)
    if cfg.dataset not in ENCODERS[cfg.encoder]:
        _fail("encoder", cfg.encoder, f"cannot read dataset={cfg.dataset!r}; it takes {', '.join(ENCODERS[cfg.encoder])}")
    check_int("d", cfg.d, 1)
    check_positive("adv_weight", cfg.adv_weight, "the adversarial weight", at_most=1e3)
    if not _is_real(cfg.adv_gp) or not 0 <= cfg.adv_gp <= 1e4:
        _fail("adv_gp", cfg.adv_gp, "the gradient-penalty weight must lie in [0, 10000]")
    check_positive("adv_lr_ratio", cfg.adv_lr_ratio, "the discriminator's learning-rate ratio", at_most=1e3)
    check_positive("beta", cfg.beta, "the KL weight", at_most=1e3)
    vae = [name for name in PRIORS if get_prior(name).supports_vae]
    if cfg.head == "vae" and cfg.prior not in vae:
        _fail("prior", cfg.prior, f"head='vae' matches N(0, I) only: use prior={' or '.join(map(repr, vae))}")
    adversarial = [name for name in PRIORS if get_prior(name).adversary_squash]
    if cfg.head == "adversarial" and cfg.prior not in adversarial:
        _fail("prior", cfg.prior, f"head='adversarial' has a squashing head for {', '.join(map(repr, adversarial))} only")
    if not _is_real(cfg.sigma) or not SIGMA_RANGE[0] <= cfg.sigma <= SIGMA_RANGE[1]:
        _fail("sigma", cfg.sigma, f"the Gaussian noise std must lie in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}] "
              "(the embedding has unit variance: beyond these the channel carries everything or nothing)")
    if not _is_real(cfg.eps) or not 0 < cfg.eps <= 0.5:
        _fail("eps", cfg.eps, "the uniform noise half-width must lie in (0, 0.5]")
    if not _is_real(cfg.pixel_noise) or not 0 <= cfg.pixel_noise <= 10:
        _fail("pixel_noise", cfg.pixel_noise, "the pixel-noise std must lie in [0, 10] (pixels lie in [0, 1])")
    check_int("epochs", cfg.epochs, 1)
    check_int("batch_size", cfg.batch_size, 2)
    check_positive("lr", cfg.lr, "the learning rate", at_most=1.0)
    check_positive("tau_lr", cfg.tau_lr, "the learning rate of the critic's temperature", at_most=10.0)
    check_int("seed", cfg.seed, 0, high=MAX_SEED)
    check_int("checkpoint_every", cfg.checkpoint_every, 1)
    check_int("n_train", cfg.n_train, 2, optional=True)
    if cfg.continues is not None and not (isinstance(cfg.continues, str) and len(cfg.continues) == 12
                                          and all(c in "0123456789abcdef" for c in cfg.continues)):
        _fail("continues", cfg.continues, "must be a run's hash (12 hex digits) or None")
    check_int("n_test", cfg.n_test, 2, optional=True)
    if cfg.n_train is not None and cfg.batch_size > cfg.n_train:
        _fail("batch_size", cfg.batch_size, f"must not exceed n_train={cfg.n_train}")
    if cfg.data_dir is not None and not isinstance(cfg.data_dir, str):
        _fail("data_dir", cfg.data_dir, "must be a path string or None")
    check_bool("download", cfg.download)
    check_classes("held_out", cfg.held_out)
