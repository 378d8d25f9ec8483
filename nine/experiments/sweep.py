"""The noise sweeps of the matching notebooks: which runs they need, training them, one table.

A sweep is a grid of run configs: the noise level (σ for the Gaussian prior, ε for the uniform
one) × representation size d × seed, plus the reference heads at the same d and seeds — plain
InfoNCE (no normalisation, no noise) and normalisation without noise. Every run is an ordinary
run of :mod:`nine.store`, so a sweep trains only what is missing and resumes what was cut off.

    python -m nine sweep gaussian --profile cpu --store results --workers 2

Runs are spread over ``workers`` processes of one thread each: on two CPU cores two one-thread
runs train ≈1.4× as many samples per second as one two-thread run (``benchmarks/processes.py``).
The first seed of the whole grid is trained before the second, so an interrupted sweep leaves
complete grids with fewer seeds.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats

from nine.config import ConfigError, RunConfig, check_choice, make_config
from nine.core.objectives import make_objective
from nine.eval.metrics import dm_statistics, standardise_like_train
from nine.store import find_run, get_or_train, get_or_train_all, load_run, run_hash

NOISE_FIELD = {"gaussian": "sigma", "uniform": "eps"}


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
}
# The smoke profile's grids: two levels, d = 2, one seed, so a notebook runs in under a minute.
SMOKE_GRIDS = {
    "gaussian": Grid("gaussian", levels=(0.3, 1.0), dims=(2,), seeds=(0,)),
    "uniform": Grid("uniform", levels=(0.1, 0.5), dims=(2,), seeds=(0,)),
}


def grid_for(prior: str, profile: str) -> Grid:
    """The sweep grid a notebook uses for ``prior`` at ``profile``."""
    check_choice("prior", prior, tuple(GRIDS))
    return (SMOKE_GRIDS if profile == "smoke" else GRIDS)[prior]


def configs(grid: Grid, profile: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """Every run of the grid, seed-major (all of seed 0 first), references after the noisy runs.

    The plain reference has no prior; it is listed with the Gaussian prior (its default) in both sweeps,
    so the two notebooks share those runs.
    """
    field = NOISE_FIELD[grid.prior]
    out: list[RunConfig] = []
    for seed in grid.seeds:
        for d in grid.dims:
            for level in grid.levels:
                out.append(make_config(profile, prior=grid.prior, head="nine", d=d, seed=seed, **{field: level}, **overrides))
            for head in grid.references:
                prior = "gaussian" if head == "plain" else grid.prior
                out.append(make_config(profile, prior=prior, head=head, d=d, seed=seed, **overrides))
    return out


def _train_one(args: tuple[RunConfig, str | None, int, tuple[int, ...]]) -> tuple[str, float]:
    import torch

    cfg, store, threads, snapshots = args
    torch.set_num_threads(threads)
    started = time.perf_counter()
    run = get_or_train(cfg, store, snapshots=snapshots)
    return run.hash, time.perf_counter() - started


def run_sweep(
    cfgs: list[RunConfig], store: Path | str | None = None, workers: int = 1,
    snapshots: tuple[int, ...] | Callable[[RunConfig], tuple[int, ...]] = (),
) -> list[Path]:
    """Train every config that has no finished run, ``workers`` at a time; return the run directories.

    ``snapshots``: epochs (or a function of the config giving them) at which a run also saves the run
    of its config with that many epochs (:func:`nine.store.store.execute`); those are not returned."""
    epochs_of = snapshots if callable(snapshots) else (lambda cfg: tuple(snapshots))
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers={workers!r} is not allowed: must be an integer >= 1")
    missing = [cfg for cfg in cfgs if find_run(cfg) is None]
    print(f"sweep: {len(cfgs)} runs, {len(cfgs) - len(missing)} finished, {len(missing)} to train "
          f"with {workers} worker(s)", flush=True)
    if missing:
        started = time.perf_counter()
        threads = 1 if workers > 1 else 0
        jobs = [(cfg, None if store is None else str(store), threads or _default_threads(), tuple(epochs_of(cfg)))
                for cfg in missing]
        if workers == 1:
            results = map(_train_one, jobs)
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_train_one, jobs)
        for done, (key, seconds) in enumerate(results, 1):
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (len(missing) - done)
            print(f"sweep: [{done}/{len(missing)}] run {key} finished in {seconds / 60:.1f} min; "
                  f"sweep ETA {eta / 60:.0f} min", flush=True)
        if workers > 1:
            pool.close()
            pool.join()
    paths = []
    for cfg in cfgs:
        found = find_run(cfg)
        if found is None:  # pragma: no cover - get_or_train raised above
            raise RuntimeError(f"run {run_hash(cfg)} is missing after the sweep")
        load_run(found)  # verifies its manifest
        paths.append(found)
    return paths


def require_trained(cfgs: list[RunConfig], profile: str, training_allowed: bool, what: str,
                    minutes_each: float, also: tuple[RunConfig, ...] = ()) -> int:
    """How many of ``cfgs`` have no finished run, said before anything is trained. When some are
    missing, the profile is not ``smoke`` and training was not asked for (a notebook's
    ``sweep_training``), raise one :class:`ConfigError` line saying how many and about how long training
    them takes, instead of starting to train. ``also``: the page's other runs, trained whenever missing
    (counted in the plan it prints)."""
    missing = sum(find_run(cfg) is None for cfg in cfgs)
    if missing and profile != "smoke" and not training_allowed:
        raise ConfigError(f"sweep_training=False is not allowed with these parameters: {missing} of {what}'s "
                          f"{len(cfgs)} runs are not trained (about {missing * minutes_each:.0f} min on two cores); "
                          "rerun with -p sweep_training True to train them")
    others = sum(find_run(cfg) is None for cfg in also)
    if missing or others:
        print(f"plan: this page trains {missing + others} run(s) ({missing} of {what}'s {len(cfgs)}, "
              f"{others} of its own), about {(missing + others) * minutes_each:.0f} min on two cores", flush=True)
    return missing


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------------------------------------
# One tidy table: a row per run


def method_label(cfg: RunConfig) -> str:
    """How a run is named in tables and legends (its objective's label)."""
    return make_objective(cfg).label()


LAWS = ("train", "running")


def on_prior_support(run, prior: str, law: str = "train") -> dict[str, np.ndarray]:
    """The run's train, test and test-view embeddings, as they are compared with ``prior``.

    ``law="train"`` (every statistic of the matching pages, every method alike): each coordinate is
    standardised with the clean train embeddings' mean and std, before Φ for the uniform prior
    (:func:`nine.eval.metrics.standardise_like_train`). For NINE this is its head with BatchNorm
    statistics of clean views; for plain InfoNCE, which has no prior, the most favourable affine map.
    ``law="running"``: the embeddings as the encoder gives them in eval mode, its BatchNorm using running
    statistics gathered on noisy random crops (plain InfoNCE is standardised as above, having nothing
    else); the conditions of the committed generators of :mod:`nine.experiments.generative`.
    Raises ValueError for a run trained towards a different prior than ``prior``.
    """
    check_choice("prior", prior, tuple(GRIDS))
    check_choice("law", law, LAWS)
    cfg = run.config
    if cfg.head != "plain" and cfg.prior != prior:
        raise ValueError(f"prior={prior!r} is not allowed for run {run.hash}: it was trained towards "
                         f"prior={cfg.prior!r}; evaluate it against {cfg.prior!r}")
    e = run.embeddings
    z = {name: e[name].astype(np.float64) for name in ("z_train", "z_test", "z_test_view")}
    if law == "running" and cfg.head != "plain":
        return z
    squash = None
    normalised = cfg.head in ("nine", "normalise") or (cfg.head == "adversarial" and cfg.adv_head == "normalise")
    if cfg.prior == "uniform" and normalised:
        squash = "normal"  # NINE's head ends with Φ
    elif cfg.prior == "uniform" and cfg.head == "adversarial":
        squash = "logistic"
    return standardise_like_train(z["z_train"], z, squash, prior)


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
        "noise": {"gaussian": cfg.sigma, "uniform": cfg.eps}[cfg.prior] if cfg.head == "nine" else np.nan,
        "seed": cfg.seed,
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


def summary(table, calibration: dict[int, dict[str, float]], columns: dict[str, str]):
    """Mean ± std over seeds of ``columns`` for each method and d, with the prior-sample row per d."""
    import pandas as pd

    rows = []
    for (d, method), part in table.groupby(["d", "method"], sort=False):
        row = {"d": d, "method": method, "seeds": len(part)}
        for column, name in columns.items():
            row[name] = _mean_std(part[column].to_numpy(dtype=float))
        rows.append(row)
        if method == table.loc[table["d"] == d, "method"].iloc[-1] and d in calibration:
            reference = {"d": d, "method": "a sample of the prior", "seeds": "—"}
            for column, name in columns.items():
                value = calibration[d].get(column)
                reference[name] = "—" if value is None else f"{value:.3f}"
            rows.append(reference)
    return pd.DataFrame(rows).set_index(["d", "method"])


def _mean_std(values: np.ndarray) -> str:
    """"mean ± std" over seeds; "∞" for an infinite value (a head without noise has no capacity)."""
    if np.isinf(values).any():
        return "∞" if (values > 0).all() else "—"
    if len(values) == 1 or np.ptp(values) == 0:  # one seed, or a value no seed changes (a capacity)
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def spearman_decrease(table, column: str) -> tuple[float, float]:
    """Spearman ρ between noise level and ``column`` over the NINE runs of ``table``, and the
    one-sided p-value of "``column`` decreases as the noise grows" (NaN with fewer than 3 runs)."""
    nine = table[table["head"] == "nine"]
    if len(nine) < 3 or nine["noise"].nunique() < 2:
        return float("nan"), float("nan")
    result = stats.spearmanr(nine["noise"], nine[column], alternative="less")
    return float(result.statistic), float(result.pvalue)


def best_level(table, column: str = "kl_knn") -> float:
    """The noise level whose NINE runs have the lowest mean ``column`` (the best-matched level)."""
    return float(table[table["head"] == "nine"].groupby("noise")[column].mean().idxmin())


def findings(table, calibration: dict[int, dict[str, float]], prior: str, critical: float) -> str:
    """What the sweep shows, as Markdown sentences computed from the table (one paragraph per d), so
    that the text of a page always states the numbers of the runs it shows."""
    symbol = {"gaussian": "σ", "uniform": "ε"}[prior]
    paragraphs = []
    for d, part in table.groupby("d"):
        nine = part[part["head"] == "nine"].groupby("noise")
        kl, ks, corr, acc = (nine[c].mean() for c in ("kl_knn", "ks_max", "max_corr", "probe_acc"))
        best = float(kl.idxmin())
        plain = part[part["head"] == "plain"]
        text = (
            f"**d = {d}.** The joint kNN KL to the prior is lowest at {symbol} = {best:g} ({kl[best]:.3g} nats; "
            f"a sample of the prior scores {calibration[d]['kl_knn']:.3g}, plain InfoNCE {plain['kl_knn'].mean():.3g}). "
            f"There the largest per-coordinate KS statistic is {ks[best]:.4f} against a 5% critical value of "
            f"{critical:.4f}, and the largest correlation between two coordinates is {corr[best]:.2f} "
            f"(a prior sample: {calibration[d]['max_corr']:.2f}). Across the levels, the KS statistic runs from "
            f"{ks.max():.3f} ({symbol} = {ks.idxmax():g}) to {ks.min():.3f} ({symbol} = {ks.idxmin():g}), and the "
            f"linear-probe accuracy from {acc.min():.3f} ({symbol} = {acc.idxmin():g}) to {acc.max():.3f} "
            f"({symbol} = {acc.idxmax():g}); plain InfoNCE reaches {plain['probe_acc'].mean():.3f}."
        )
        paragraphs.append(text)
    return "\n\n".join(paragraphs)


NUMERICS_COLUMNS = {
    "infonce_test": "test InfoNCE (nats)", "ks_max": "max KS", "energy": "energy distance",
    "kl_knn": "kNN KL (nats)", "max_corr": "max |corr|", "probe_acc": "linear probe", "knn_acc": "5-NN accuracy",
}


def numerics_table(prior: str, level: float, d: int = 16, numerics: tuple[str, str] = ("fp32", "bf16"),
                   seeds: tuple[int, ...] = (0, 1, 2), permutations: int = 200, tau_lr: float = 1e-3):
    """Two numerics of the same cpu-profile configuration, seed by seed: for each column of
    :data:`NUMERICS_COLUMNS`, the mean ± std over ``seeds`` of each, the difference of the means in
    units of the first one's seed std, whether it is within two of them ("within the seed spread"),
    and the p-value of Welch's t-test of equal means (two samples of len(seeds) runs).

    Loads (or, outside the book, trains) the runs of both numerics, at the committed runs' ``tau_lr``."""
    import pandas as pd

    field = {"gaussian": "sigma", "uniform": "eps"}[prior]
    tables = {}
    for name in numerics:
        cfgs = [make_config("cpu", prior=prior, head="nine", d=d, seed=s, numerics=name, tau_lr=tau_lr, **{field: level})
                for s in seeds]
        tables[name] = sweep_table([run.path for run in get_or_train_all(cfgs)], prior, permutations)
    first, second = numerics
    rows = []
    for column, label in NUMERICS_COLUMNS.items():
        a, b = (tables[name][column].to_numpy(dtype=float) for name in numerics)
        spread = a.std(ddof=1)
        shift = (b.mean() - a.mean()) / spread if spread > 0 else math.inf * np.sign(b.mean() - a.mean())
        welch = stats.ttest_ind(a, b, equal_var=False).pvalue if spread > 0 or b.std() > 0 else 1.0
        rows.append({"statistic": label, first: _mean_std(a), second: _mean_std(b),
                     f"shift in {first} seed std": round(float(shift), 2), "within the seed spread": bool(abs(shift) <= 2),
                     "Welch p": round(float(welch), 3)})
    return pd.DataFrame(rows).set_index("statistic")


# ---------------------------------------------------------------------------------------------
# The certificate C − InfoNCE beside an independent estimate of the KL it bounds (theory page, section 6)


def testable_levels(prior: str, d: int, log_n: float, levels) -> list[float]:
    """The noise levels whose capacity is at most log N: where InfoNCE can reach the capacity, so that
    the capacity argument (and not the estimator's ceiling) shapes what training does."""
    from nine.theory import capacity_gaussian, capacity_uniform

    capacity = capacity_gaussian if prior == "gaussian" else capacity_uniform
    return [level for level in levels if float(capacity(level, d)) <= log_n]


def certificate_row(run, draws: int = 3) -> dict[str, Any]:
    """One NINE run: the certificate C − InfoNCE (test digits) beside an independent estimate of the KL
    of the smoothed law of its test-view embeddings from the smoothed prior, that estimator's value on a
    sample of the prior itself (its floor), and the second moment E‖u‖²/d the Gaussian identity assumes."""
    from nine.eval.metrics import smoothed_kl, smoothed_kl_floor

    cfg, m = run.config, run.metrics
    if cfg.head != "nine":
        raise ValueError(f"run {run.hash} has head={cfg.head!r}: the certificate needs the NINE channel")
    u = run.embeddings["z_test_view"].astype(np.float64)  # eval mode: BatchNorm's running statistics
    noise = cfg.sigma if cfg.prior == "gaussian" else cfg.eps
    floor, floor_std = smoothed_kl_floor(cfg.prior, noise, len(u), cfg.d, draws=3)
    return {
        "run": run.hash, "d": cfg.d, "noise": noise, "seed": cfg.seed,
        "certificate": m["capacity"] - m["infonce_test"],
        "certificate_se": m["infonce_test_std"] / math.sqrt(10),  # 10 held-out draws (Objective.estimate)
        "kl_estimate": smoothed_kl(u, cfg.prior, noise, draws=draws),
        "kl_floor": floor, "kl_floor_std": floor_std,
        "second_moment": float((u**2).sum(1).mean() / cfg.d) if cfg.prior == "gaussian" else np.nan,
        "saturated": m["capacity"] > m["log_n"],
    }


def certificate_table(paths: list[Path]):
    """:func:`certificate_row` for every NINE run among ``paths``, as a pandas DataFrame."""
    import pandas as pd

    runs = [load_run(path) for path in paths]
    return pd.DataFrame([certificate_row(run) for run in runs if run.config.head == "nine"])


def limiting_factor(run, last: int = 10) -> dict[str, Any]:
    """What limits a NINE run's matching, read from its own record:

    - "estimator" when its capacity exceeds log N: InfoNCE cannot reach C, so the capacity argument
      that pushes the law to the prior cannot act in full, whatever the budget;
    - "budget" when the training InfoNCE still rises at the end (its least-squares slope over the last
      ``last`` epochs exceeds twice its standard error): more epochs would move it;
    - "method (plateau)" otherwise: InfoNCE has settled below C, so more of the same training would not help.
    Also returns the slope (nats per epoch) and the final gap C − InfoNCE on the test digits.
    """
    m = run.metrics
    values = np.array([record["infonce"] for record in run.log[-last:]])
    epochs = np.arange(len(values), dtype=float)
    fit = stats.linregress(epochs, values) if len(values) >= 3 else None
    slope, se = (fit.slope, fit.stderr) if fit is not None else (math.nan, math.nan)
    if m["capacity"] > m["log_n"]:
        factor = "estimator"
    elif fit is None:
        factor = "unknown (fewer than 3 epochs)"
    elif slope > 2 * se:
        factor = "budget"
    else:
        factor = "method (plateau)"
    return {"run": run.hash, "factor": factor, "slope_per_epoch": float(slope), "gap": m["capacity"] - m["infonce_test"]}


def failure_attribution(claims, sweep_claims: set[str], table, runs: dict, testable: dict[int, list[float]],
                        best: float, top_d: int):
    """For every failing sweep claim among ``claims`` (a ledger's :class:`~nine.book.claims.Claim` objects),
    what limits the NINE runs it rests on (:func:`limiting_factor`), counted over the runs at the
    claim's noise levels: the testable levels of its d for trend claims, the best level otherwise.
    A pandas DataFrame, one row per failing claim (empty when none fails)."""
    import pandas as pd

    rows = []
    for claim in claims:
        if claim.verdict != "FAIL" or claim.id not in sweep_claims:
            continue
        suffix = claim.id.rsplit("-d", 1)[-1]
        dim = int(suffix) if suffix.isdigit() else top_d
        levels = testable[dim] if "improves" in claim.id or "decreases" in claim.id else [best]
        part = table[(table["head"] == "nine") & (table["d"] == dim) & table["noise"].isin(levels)]
        factors = pd.DataFrame([limiting_factor(runs[r]) for r in part["run"]])
        counts = factors["factor"].value_counts() if len(factors) else pd.Series(dtype=int)
        rows.append({"claim": claim.id, "runs": len(factors),
                     **{f: int(counts.get(f, 0)) for f in ("estimator", "budget", "method (plateau)")},
                     "mean C − InfoNCE (nats)": round(float(factors["gap"].mean()), 2) if len(factors) else np.nan})
    return pd.DataFrame(rows)
