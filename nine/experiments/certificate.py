"""The certificate C − InfoNCE beside an independent estimate of the KL it bounds (theory page, section 6),
and what limits a run's matching, read from its own record."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nine.priors import get as get_prior
from nine.store import load_run


def testable_levels(prior: str, d: int, log_n: float, levels) -> list[float]:
    """The noise levels whose capacity is at most log N: where InfoNCE can reach the capacity, so that
    the capacity argument (and not the estimator's ceiling) shapes what training does."""
    law = get_prior(prior)
    return [level for level in levels if law.capacity(level, d) <= log_n]


def certificate_row(run, draws: int = 3) -> dict[str, Any]:
    """One NINE run: the certificate C − InfoNCE (test digits) beside independent estimates of the KL it bounds,
    KL(smoothed law of the test-view embeddings ‖ smoothed prior), none subtracted from anything.

    Gaussian channel: a bracket, ``kl_low`` (leave-one-out mixture: low in expectation, by Jensen) and
    ``kl_high`` (resubstitution: each point's own bump included, reads high); ``kl_estimate`` is the low one.
    Uniform channel: ``kl_estimate``, the kNN estimator against a box sample (no bracket: ``kl_low`` and
    ``kl_high`` are NaN). Beside them: ``kl_floor``, the same estimator on a sample of the prior itself, and
    ``prior_kl``, that sample's exact KL (0 for a Gaussian channel; d·(log(1 + 2ε) − ε) for the uniform one, so
    that ``kl_floor − prior_kl`` is the estimator's bias); ``looseness``, the certificate over the largest
    estimate (C − InfoNCE is at least this many times the KL if the KL is below it); the second moment E‖u‖²/d
    the Gaussian identity assumes."""
    from nine.eval.smoothed import smoothed_kl, smoothed_kl_floor, smoothed_prior_kl

    cfg, m = run.config, run.metrics
    if cfg.head != "nine":
        raise ValueError(f"run {run.hash} has head={cfg.head!r}: the certificate needs the NINE channel")
    u = run.embeddings["z_test_view"].astype(np.float64)  # eval mode: BatchNorm's running statistics
    noise, gaussian = cfg.noise_level, cfg.law.gaussian_channel
    floor, floor_std = smoothed_kl_floor(cfg.prior, noise, len(u), cfg.d, draws=3)
    estimate = smoothed_kl(u, cfg.prior, noise, draws=draws)
    high = smoothed_kl(u, cfg.prior, noise, draws=draws, leave_out=False) if gaussian else np.nan
    certificate = m["capacity"] - m["infonce_test"]
    largest = high if gaussian else estimate
    return {
        "run": run.hash, "d": cfg.d, "noise": noise, "seed": cfg.seed,
        "certificate": certificate,
        "certificate_se": m["infonce_test_std"] / math.sqrt(10),  # 10 held-out draws (Objective.estimate)
        "kl_estimate": estimate,
        "kl_low": estimate if gaussian else np.nan, "kl_high": high,
        "kl_floor": floor, "kl_floor_std": floor_std, "prior_kl": smoothed_prior_kl(cfg.prior, noise, cfg.d),
        "looseness": certificate / largest if largest > 0 else np.nan,
        "second_moment": float((cfg.law.to_normal(u) ** 2).sum(1).mean() / cfg.d) if gaussian else np.nan,
        "saturated": m["capacity"] > m["log_n"],
    }


def violation_margin(runs: int, alpha: float = 0.05) -> float:
    """How many standard errors above the certificate a run's KL estimate must lie to count as a violation:
    the one-sided normal quantile at ``alpha`` / ``runs`` (Bonferroni), so that with every run exactly on the
    bound the chance of counting any violation is at most ``alpha``."""
    from scipy import stats

    if runs < 1 or not 0 < alpha < 1:
        raise ValueError(f"runs={runs}, alpha={alpha!r} is not allowed: need runs >= 1 and 0 < alpha < 1")
    return float(stats.norm.isf(alpha / runs))


def certificate_violations(cert, alpha: float = 0.05) -> int:
    """Runs whose KL estimate (the low end of the bracket for a Gaussian channel) exceeds the certificate by
    more than :func:`violation_margin` standard errors: where the data contradict C − InfoNCE ≥ KL, at a
    family-wise rate of at most ``alpha`` over all the runs. Every run counts."""
    if len(cert) == 0:
        return 0
    margin = violation_margin(len(cert), alpha)
    return int((cert["kl_estimate"] > cert["certificate"] + margin * cert["certificate_se"]).sum())


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
