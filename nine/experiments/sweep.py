"""The noise sweeps of the matching notebooks: which runs they need, and one table of them.

A sweep is a grid of run configs: the noise level (σ for the Gaussian prior, ε for the uniform
one) × representation size d × seed, plus the reference heads at the same d and seeds — plain
InfoNCE (no normalisation, no noise) and normalisation without noise. The runs are trained by
:func:`nine.experiments.runner.run_sweep`, seed 0 of the whole grid first, so an interrupted sweep
leaves complete grids with fewer seeds:

    python -m nine sweep gaussian --profile cpu --store results --workers 2

What else the pages read from the sweeps lives beside it: the evaluation path in
:mod:`nine.eval.support`, the certificate in :mod:`nine.experiments.certificate`, prose and page
tables in :mod:`nine.book.tables`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nine.config import RunConfig, check_choice, make_config
from nine.core.objectives import make_objective
from nine.eval.metrics import dm_statistics
from nine.eval.support import on_prior_support
from nine.priors import get as get_prior
from nine.store import load_run


@dataclass(frozen=True)
class Grid:
    """Noise levels, dimensions and seeds of one prior's sweep."""

    prior: str
    levels: tuple[float, ...]
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    references: tuple[str, ...] = ("plain", "normalise")


# The grids of the book (cpu profile). σ spans weak (0.1) to strong (2.0) noise; ε spans 0.02 to
# the largest allowed half-width, 0.5 (noise as wide as the prior's support).
GRIDS = {
    "gaussian": Grid("gaussian", levels=(0.1, 0.3, 0.5, 1.0, 2.0), dims=(2, 16), seeds=(0, 1, 2)),
    "uniform": Grid("uniform", levels=(0.02, 0.05, 0.1, 0.2, 0.5), dims=(2, 16), seeds=(0, 1, 2)),
    # the third prior, a bijection of the Gaussian one (nine.priors): one level of the Gaussian grid, its
    # references are the Gaussian sweep's (the theory page, §5)
    "laplace": Grid("laplace", levels=(0.5,), dims=(2, 16), seeds=(0, 1, 2), references=()),
}
# The smoke profile's grids: two levels, d = 2, one seed, so a notebook runs in under a minute.
SMOKE_GRIDS = {
    "gaussian": Grid("gaussian", levels=(0.3, 1.0), dims=(2,), seeds=(0,)),
    "uniform": Grid("uniform", levels=(0.1, 0.5), dims=(2,), seeds=(0,)),
    "laplace": Grid("laplace", levels=(0.3,), dims=(2,), seeds=(0,), references=()),
}
# the page whose recipe (numerics, τ rate) a prior's sweep is trained with (nine.book.rerun.notebook_defaults)
RECIPE_PAGES = {"gaussian": "02_gaussian_matching", "uniform": "03_uniform_matching", "laplace": "02_gaussian_matching"}


def grid_for(prior: str, profile: str) -> Grid:
    """The sweep grid a notebook uses for ``prior`` at ``profile``."""
    check_choice("prior", prior, tuple(GRIDS))
    return (SMOKE_GRIDS if profile == "smoke" else GRIDS)[prior]


def configs(grid: Grid, profile: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """Every run of the grid, seed-major (all of seed 0 first), references after the noisy runs.

    The plain reference has no prior; it is listed with the Gaussian prior (its default) in both sweeps,
    so the two notebooks share those runs.
    """
    field = get_prior(grid.prior).level
    out: list[RunConfig] = []
    for seed in grid.seeds:
        for d in grid.dims:
            for level in grid.levels:
                out.append(make_config(profile, prior=grid.prior, head="nine", d=d, seed=seed, **{field: level}, **overrides))
            for head in grid.references:
                prior = "gaussian" if head == "plain" else grid.prior
                out.append(make_config(profile, prior=prior, head=head, d=d, seed=seed, **overrides))
    return out


# ---------------------------------------------------------------------------------------------
# One tidy table: a row per run


def method_label(cfg: RunConfig) -> str:
    """How a run is named in tables and legends (its objective's label)."""
    return make_objective(cfg).label()


def table_row(path: Path, prior: str, permutations: int = 200) -> dict[str, Any]:
    """One run as one row: its config, the DM statistics against ``prior`` and the downstream figures."""
    run = load_run(path)
    cfg, m = run.config, run.metrics
    z = on_prior_support(run, prior)
    return {
        "run": run.hash,
        "method": method_label(cfg),
        "head": cfg.head,
        "d": cfg.d,
        "noise": cfg.noise_level if cfg.head == "nine" else np.nan,
        "seed": cfg.seed,
        "numerics": cfg.numerics,  # the recipe: how the run computed, and the critic's τ rate
        "tau_lr": cfg.tau_lr,
        **dm_statistics(z["z_test"], z["z_test_view"], prior, permutations),
        "probe_acc": m["linear_probe_acc"],
        "knn_acc": m["knn_acc"],
        "infonce_test": m["infonce_test"],
        "capacity": m["capacity"],
        "log_n": m["log_n"],
        "n_test": m["n_test"],
        "wall_time_s": run.provenance["wall_time_s"],
    }


def sweep_table(paths: list[Path], prior: str, permutations: int = 200):
    """A pandas DataFrame with one :func:`table_row` per run, NINE runs by d, noise and seed, then references."""
    import pandas as pd

    table = pd.DataFrame([table_row(path, prior, permutations) for path in paths])
    order = table["head"].map({"nine": 0, "normalise": 1, "plain": 2})
    return table.assign(_order=order).sort_values(["d", "_order", "noise", "seed"]).drop(columns="_order").reset_index(drop=True)


def best_level(table, column: str = "kl_knn") -> float:
    """The noise level whose NINE runs have the lowest mean ``column`` (the best-matched level)."""
    return float(table[table["head"] == "nine"].groupby("noise")[column].mean().idxmin())


