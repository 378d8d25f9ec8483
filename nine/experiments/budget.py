"""The budget study at d = 16: is a failing sweep claim the method's limit or our training budget's?

Three parts, every run an ordinary run of :mod:`nine.store`:

- **long runs**: the sweep's d = 16 runs at σ ∈ {0.5, 1, 2} (Gaussian) and ε ∈ {0.2, 0.5} (uniform),
  two seeds, trained to :data:`LONG_EPOCHS`; the runs with :data:`SNAPSHOTS` epochs are saved on the
  way (a snapshot is the very run one would get by training that long, so it has its own hash);
- **what limits InfoNCE** (Gaussian, σ = 1, seed 0, :data:`LIMIT_EPOCHS` epochs' worth of steps):
  the same augmented view in both branches (only the channel noise differs) against two views;
  n_train ∈ {1000, 2000} against the 4,000 digits of the page, at equal optimiser steps; and a batch
  N = 2048 against 512 at σ = 0.5, where C_G = 12.9 nats exceeds log 512 = 6.24, on as many samples;
- **the critic**: the MLP critic on the same digits and budget as the sweep's quadratic one (σ = 1).

    python -m nine budget --store results --workers 2   # about 80 minutes on two cores (bf16)
"""

from __future__ import annotations

from nine.config import RunConfig, make_config
from nine.priors import get as get_prior

D = 16
LONG_EPOCHS = 600
SNAPSHOTS = (60, 120, 240, 360, 480, 960)
LONG_LEVELS = {"gaussian": (0.5, 1.0, 2.0), "uniform": (0.2, 0.5)}
LONG_SEEDS = (0, 1)
LIMIT_EPOCHS = 240  # at n_train = 4000 and N = 512: 7 steps an epoch, 1,680 steps
SMOKE = dict(long_epochs=4, snapshots=(2,), limit_epochs=2, continued_epochs=8, continued_snapshots=(6,))
# The registered prediction: the long runs continued from their last epoch to the paper profile's
# epoch count (on our 4,000 digits, not its 60,000), saving runs on the way.
CONTINUED_EPOCHS = 2000
CONTINUED_SNAPSHOTS = (960, 1200, 1600)
# bf16 pays only on CPUs with bf16 units; elsewhere it is emulated (about 200 samples/s on one AVX2 thread
# against 1,800 in channels-last fp32), so the continuations compute in float32
CONTINUED_NUMERICS = "channels_last"
# the three configurations still falling at 600 epochs first, then the other two
CONTINUED_ORDER = (("gaussian", 0.5), ("uniform", 0.2), ("uniform", 0.5), ("gaussian", 1.0), ("gaussian", 2.0))


def _steps_per_epoch(n_train: int, batch: int) -> int:
    return n_train // batch


def long_configs(profile: str = "cpu", **overrides) -> list[RunConfig]:
    """The long runs (their final epochs), seed-major; pass ``snapshots`` to train them."""
    epochs = SMOKE["long_epochs"] if profile == "smoke" else LONG_EPOCHS
    d = 2 if profile == "smoke" else D
    seeds = LONG_SEEDS[:1] if profile == "smoke" else LONG_SEEDS
    return [make_config(profile, prior=prior, d=d, seed=seed, epochs=epochs, **{get_prior(prior).level: level}, **overrides)
            for seed in seeds for prior, levels in LONG_LEVELS.items() for level in levels]


def continued_configs(profile: str = "cpu", stores=None, **overrides) -> list[RunConfig]:
    """The long runs continued to :data:`CONTINUED_EPOCHS` in :data:`CONTINUED_NUMERICS`, in
    :data:`CONTINUED_ORDER`, both seeds of a configuration together; each names the finished long run
    it continues (:func:`nine.store.run_hash`; a long run with ``numerics="auto"`` as it resolves in
    ``stores``, default ``results/`` and the runs folder)."""
    from nine.store import resolve_numerics, run_hash

    epochs = SMOKE["continued_epochs"] if profile == "smoke" else CONTINUED_EPOCHS
    long = long_configs(profile, **overrides)
    order = {level: i for i, level in enumerate(CONTINUED_ORDER)}
    long.sort(key=lambda cfg: (order[(cfg.prior, noise_of(cfg))], cfg.seed))
    return [cfg.replace(epochs=epochs, continues=run_hash(resolve_numerics([cfg], stores)[0][0]),
                        numerics=CONTINUED_NUMERICS) for cfg in long]


def continued_snapshots(profile: str = "cpu") -> tuple[int, ...]:
    return SMOKE["continued_snapshots"] if profile == "smoke" else CONTINUED_SNAPSHOTS


def continued_trajectory(cfg: RunConfig) -> list[RunConfig]:
    """A continued run's saved runs on the way, then the run itself."""
    return [cfg.replace(epochs=e) for e in continued_snapshots(cfg.profile) if e < cfg.epochs] + [cfg]


def continue_all(profile: str = "cpu", store=None, workers: int = 1, jobs: dict | None = None, **overrides) -> None:
    """Continue every long run to :data:`CONTINUED_EPOCHS` (the long runs must be finished). ``jobs``: the
    executor options of :func:`nine.experiments.runner.run_sweep`."""
    from nine.experiments.runner import run_sweep, stores_of

    snaps = continued_snapshots(profile)
    run_sweep(continued_configs(profile, stores_of(store), **overrides), store, workers, snapshots=lambda cfg: snaps,
              **(jobs or {}))


def snapshot_epochs(profile: str = "cpu") -> tuple[int, ...]:
    return SMOKE["snapshots"] if profile == "smoke" else SNAPSHOTS


def trajectory(cfg: RunConfig) -> list[RunConfig]:
    """The runs of a long run's config at each snapshot below its epochs, then the run itself."""
    return [cfg.replace(epochs=e) for e in snapshot_epochs(cfg.profile) if e < cfg.epochs] + [cfg]


def limit_configs(profile: str = "cpu", **overrides) -> dict[str, RunConfig]:
    """The runs that ask what limits InfoNCE, by label; every one takes as many optimiser steps as the
    reference (two views, 4,000 digits, N = 512), but for the wide batch, which sees as many training
    samples (a quarter of the steps, each four times as large)."""
    smoke = profile == "smoke"
    epochs = SMOKE["limit_epochs"] if smoke else LIMIT_EPOCHS
    d = 2 if smoke else D
    base = make_config(profile, prior="gaussian", d=d, sigma=1.0, seed=0, epochs=epochs, **overrides)
    n = base.n_train or 4000  # the cpu profile's mnist5k train split
    steps = epochs * _steps_per_epoch(n, base.batch_size)

    def at_equal_steps(**changes) -> RunConfig:
        cfg = base.replace(**changes)
        return cfg.replace(epochs=steps // _steps_per_epoch(cfg.n_train or n, cfg.batch_size))

    out = {"two views (reference)": base, "same view, only Z differs": base.replace(views="same")}
    for small in ((128, 256) if smoke else (1000, 2000)):
        out[f"n_train = {small}"] = at_equal_steps(n_train=small)
    wide = 2 * base.batch_size if smoke else 2048
    out["σ = 0.5, N = 512"] = base.replace(sigma=0.5)
    wide_steps = _steps_per_epoch(n, wide)  # the same number of training samples: a quarter of the steps
    out[f"σ = 0.5, N = {wide}"] = base.replace(sigma=0.5, batch_size=wide,
                                               epochs=steps * base.batch_size // (wide * wide_steps))
    return out


def critic_configs(profile: str = "cpu", **overrides) -> dict[str, RunConfig]:
    """The quadratic critic of the sweep and the MLP critic, at the sweep's budget (σ = 1, seed 0)."""
    d = 2 if profile == "smoke" else D
    base = make_config(profile, prior="gaussian", d=d, sigma=1.0, seed=0, **overrides)
    return {"quadratic (the sweep's)": base, "MLP": base.replace(critic="mlp")}


def all_configs(profile: str = "cpu", **overrides) -> list[RunConfig]:
    """Every run the study trains, the most telling first, less those a long run saves on the way."""
    long = long_configs(profile, **overrides)
    on_the_way = {short for cfg in long for short in trajectory(cfg)[:-1]}
    limits = list(limit_configs(profile, **overrides).values())
    critics = list(critic_configs(profile, **overrides).values())
    first, rest = long[: len(long) // len(LONG_SEEDS)], long[len(long) // len(LONG_SEEDS):]  # seed 0, then seed 1
    out = []
    for cfg in first + critics + limits + rest:
        if cfg not in out and cfg not in on_the_way:
            out.append(cfg)
    return out


def snapshots_of(cfg: RunConfig) -> tuple[int, ...]:
    """The snapshots a run of the study saves: the long runs and the wide batch's trajectory (not the
    runs on fewer digits, whose epochs are shorter)."""
    limit = SMOKE["limit_epochs"] if cfg.profile == "smoke" else LIMIT_EPOCHS
    if cfg.n_train != make_config(cfg.profile).n_train or cfg.epochs <= limit:
        return ()
    return tuple(e for e in snapshot_epochs(cfg.profile) if e < cfg.epochs)


def train_all(profile: str = "cpu", store=None, workers: int = 1, jobs: dict | None = None, **overrides) -> None:
    """Train every missing run of the study (with its snapshots). ``jobs``: the executor options of
    :func:`nine.experiments.runner.run_sweep`."""
    from nine.experiments.runner import run_sweep

    run_sweep(all_configs(profile, **overrides), store, workers, snapshots=snapshots_of, **(jobs or {}))


def noise_of(cfg: RunConfig) -> float:
    """The noise level of a run of the study (σ or ε, by its prior)."""
    return cfg.noise_level
