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
    """One NINE run: the certificate C − InfoNCE (test digits) beside an independent estimate of the KL
    of the smoothed law of its test-view embeddings from the smoothed prior, that estimator's value on a
    sample of the prior itself (its floor), and the second moment E‖u‖²/d the Gaussian identity assumes."""
    from nine.eval.metrics import smoothed_kl, smoothed_kl_floor

    cfg, m = run.config, run.metrics
    if cfg.head != "nine":
        raise ValueError(f"run {run.hash} has head={cfg.head!r}: the certificate needs the NINE channel")
    u = run.embeddings["z_test_view"].astype(np.float64)  # eval mode: BatchNorm's running statistics
    noise = cfg.noise_level
    floor, floor_std = smoothed_kl_floor(cfg.prior, noise, len(u), cfg.d, draws=3)
    return {
        "run": run.hash, "d": cfg.d, "noise": noise, "seed": cfg.seed,
        "certificate": m["capacity"] - m["infonce_test"],
        "certificate_se": m["infonce_test_std"] / math.sqrt(10),  # 10 held-out draws (Objective.estimate)
        "kl_estimate": smoothed_kl(u, cfg.prior, noise, draws=draws),
        "kl_floor": floor, "kl_floor_std": floor_std,
        "second_moment": (float((cfg.law.to_normal(u) ** 2).sum(1).mean() / cfg.d) if cfg.law.gaussian_channel
                          else np.nan),
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
