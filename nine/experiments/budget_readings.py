"""Reading the budget study (:mod:`nine.experiments.budget`): each snapshot's statistics, what more training
would do to each, the power law of the gap and its registered prediction at 2,000 epochs, and the limits of
InfoNCE."""

from __future__ import annotations

import math

import numpy as np

from nine.config import RunConfig
from nine.experiments.budget import (
    CONTINUED_EPOCHS,
    continued_configs,
    continued_trajectory,
    noise_of,
    trajectory,
)
from nine.store import RunError
from nine.store.evaluations import evaluation


@evaluation("nine.experiments.sweep:table_row", "nine.experiments.sweep:method_label", "nine.eval.metrics",
            "nine.eval.support", "nine.priors:Prior", "nine.priors:get", "nine.priors:CLIP", "prior:{prior}")
def snapshot_row(run, prior: str, permutations: int, train_probe: bool) -> dict:
    """:func:`nine.experiments.sweep.table_row` of one run of the budget study (``train_probe``: with
    ``probe_train_acc``, the linear probe's accuracy on the train digits it was fitted on). Stored
    (:mod:`nine.store.evaluations`): the 200-permutation energy test of every snapshot is most of the budget
    page's time."""
    from nine.eval.metrics import linear_probe_accuracy
    from nine.experiments.sweep import table_row

    row = table_row(run.path, prior, permutations)
    if train_probe:
        z = run.embeddings
        row["probe_train_acc"] = linear_probe_accuracy(z["z_train"], z["y_train"], z["z_train"], z["y_train"])
    return row


def trajectory_table(long: list[RunConfig], permutations: int = 200):
    """One row per snapshot of every long run: its statistics as the sweeps compute them
    (:func:`nine.experiments.sweep.table_row`), the epochs, the capacity gap C − InfoNCE on the test
    digits (what the certificate bounds), the reachable gap min(C, log N) − InfoNCE (what the objective
    can still close: InfoNCE never exceeds log N), and the linear probe's accuracy on the train digits it was fitted on (beside its test
    accuracy: a probe that gains on train while it loses on test is memorising)."""
    import pandas as pd

    from nine.store import find_run, load_run

    rows = []
    for cfg in long:
        for short in trajectory(cfg):
            path = find_run(short)
            if path is None:
                raise RunError(f"run {short.profile}/{short.epochs} epochs of the budget study is missing "
                               f"({cfg.prior}, {noise_of(cfg):g}, seed {cfg.seed}); train it with `python -m nine budget`")
            row = snapshot_row(load_run(path), cfg.prior, permutations, train_probe=True)
            probe_train = row.pop("probe_train_acc")
            row.update(prior=cfg.prior, noise=noise_of(cfg), epochs=short.epochs,
                       gap=row["capacity"] - row["infonce_test"],
                       reachable_gap=min(row["capacity"], row["log_n"]) - row["infonce_test"],
                       probe_train_acc=probe_train)
            rows.append(row)
    return pd.DataFrame(rows)


def budget_verdicts(table, floors: dict[str, float], column: str = "kl_knn"):
    """For each long configuration (prior, noise level), what more training would do to ``column``:

    - its value at the first and last snapshot (mean over seeds) and the prior sample's value (floor);
    - the change over the last stretch of training (the last two snapshots), against twice the seed
      spread of that change;
    - "at the floor" when the last value is within twice the seed spread of the floor; "still falling
      (budget)" when the last stretch lowered it by more than twice its seed spread; otherwise
      "not clearly falling (a plateau, or a fall within the seeds' spread)".
    """
    import pandas as pd

    rows = []
    for (prior, noise), part in table.groupby(["prior", "noise"], sort=False):
        by_epoch = part.pivot_table(index="epochs", columns="seed", values=column)
        first, last = by_epoch.iloc[0], by_epoch.iloc[-1]
        change = by_epoch.iloc[-1] - by_epoch.iloc[-2]
        spread = float(by_epoch.iloc[-1].std(ddof=1)) if by_epoch.shape[1] > 1 else float("nan")
        change_spread = float(change.std(ddof=1)) if by_epoch.shape[1] > 1 else float("nan")
        floor = floors[prior]
        if abs(float(last.mean()) - floor) <= 2 * max(spread, 0.0) or float(last.mean()) <= floor:
            reading = "at the floor"
        elif float(change.mean()) < -2 * max(change_spread, 0.0) and float(change.mean()) < 0:
            reading = "still falling (budget)"
        else:
            reading = "not clearly falling (a plateau, or a fall within the seeds' spread)"
        rows.append({"prior": prior, "noise": noise, "seeds": by_epoch.shape[1],
                     f"{column} at {by_epoch.index[0]}": float(first.mean()),
                     f"{column} at {by_epoch.index[-1]}": float(last.mean()),
                     "last stretch": float(change.mean()), "its seed spread": change_spread,
                     "prior sample": floor, "reading": reading})
    return pd.DataFrame(rows)


BACKTEST_EPOCHS = 240  # the backtest fits the snapshots up to this many epochs and predicts the last long-run epoch


def _seed_prediction(part, column: str, x0: float, upto: float | None = None) -> tuple[float, float, float, int]:
    """The power law fitted to each seed's own trajectory (log ``column`` against log epochs, snapshots up to
    ``upto`` epochs), each seed's prediction at log-epochs ``x0``, and their mean with a 95% t-interval over
    seeds (seeds are the unit: the snapshots of one seed are one trajectory, not independent points), back on the
    gap's scale; (centre, low, high, seeds)."""
    from scipy import stats as st

    logs = []
    for _, seed in part.groupby("seed"):
        seed = seed if upto is None else seed[seed["epochs"] <= upto]
        if len(seed) < 2:
            continue
        fit = st.linregress(np.log(seed["epochs"].to_numpy(float)), np.log(seed[column].clip(lower=1e-6).to_numpy(float)))
        logs.append(fit.intercept + fit.slope * x0)
    if not logs:
        return float("nan"), float("nan"), float("nan"), 0
    centre = float(np.mean(logs))
    half = float(st.t.ppf(0.975, len(logs) - 1) * np.std(logs, ddof=1) / math.sqrt(len(logs))) if len(logs) > 1 else float("nan")
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half), len(logs)


def curvature(part, column: str) -> tuple[float, float]:
    """Whether a straight power law fits the trajectories it is fitted to: the t statistic and two-sided p-value of
    a quadratic term in log-epochs, each seed with its own intercept. The snapshots of a seed are autocorrelated,
    so the p-value is optimistic: a small one says the line bends, a large one does not prove it straight."""
    from scipy import stats as st

    x = np.log(part["epochs"].to_numpy(float))
    y = np.log(part[column].clip(lower=1e-6).to_numpy(float))
    seeds = part["seed"].to_numpy()
    design = np.column_stack([(seeds == s).astype(float) for s in np.unique(seeds)] + [x, x**2])
    if len(y) <= design.shape[1]:
        return float("nan"), float("nan")
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    dof = len(y) - design.shape[1]
    cov = float((residual**2).sum() / dof) * np.linalg.inv(design.T @ design)
    t = float(coef[-1] / math.sqrt(cov[-1, -1]))
    return t, float(2 * st.t.sf(abs(t), dof))


def gap_power_law(table, target_epochs: int = 2000, column: str = "reachable_gap"):
    """Per configuration, the power law gap ∝ epochs^b through the snapshots of every seed (``column``: the
    reachable gap by default), the gap it predicts at ``target_epochs`` and whether the law can be trusted there:

    - the exponent b of one least-squares line over all snapshots and seeds, and that line's 95% interval at the
      target ("fit 95% low/high": it treats the snapshots as independent points, which they are not);
    - the prediction with **seeds as the unit** (each seed's own line, its prediction, a t-interval over seeds):
      "gap at … epochs", "95% low", "95% high", the interval the prediction is scored with;
    - its adequacy on the data it is fitted to (:func:`curvature`: a quadratic term in log-epochs) and by a
      **backtest**: the same method fitted on the snapshots up to :data:`BACKTEST_EPOCHS` epochs predicts the
      last epoch of the long runs, where the gap is measured. A law that bends (curvature p ≤ 0.05) or misses
      its backtest (the measured mean outside the backtest's interval) is "not identifiable at this budget":
      its prediction is shown but not scored.
    """
    import pandas as pd
    from scipy import stats as st

    rows = []
    for (prior, noise), part in table.groupby(["prior", "noise"], sort=False):
        x, y = np.log(part["epochs"].to_numpy(float)), np.log(part[column].clip(lower=1e-6).to_numpy(float))
        fit = st.linregress(x, y)
        n = len(x)
        x0 = math.log(target_epochs)
        se_pred = _prediction_se(x, y, fit, x0) if n > 2 else float("nan")
        t = st.t.ppf(0.975, n - 2) if n > 2 else float("nan")
        line = fit.intercept + fit.slope * x0
        centre, low, high, seeds = _seed_prediction(part, column, x0)
        bend_t, bend_p = curvature(part, column)
        last = float(part["epochs"].max())
        measured_last = float(part[part["epochs"] == last][column].mean())
        back, back_low, back_high, _ = _seed_prediction(part, column, math.log(last), upto=BACKTEST_EPOCHS)
        backtest = ("no backtest" if not np.isfinite(back_low) else
                    "within" if back_low <= measured_last <= back_high else "missed")
        adequate = not (np.isfinite(bend_p) and bend_p <= 0.05) and backtest != "missed"
        rows.append({"prior": prior, "noise": noise, "exponent b": fit.slope, "b std. error": fit.stderr,
                     "gap at the last snapshot": measured_last, f"gap at {target_epochs} epochs": centre,
                     "95% low": low, "95% high": high, "seeds": seeds,
                     "fit 95% low": math.exp(line - t * se_pred), "fit 95% high": math.exp(line + t * se_pred),
                     "curvature t": bend_t, "curvature p": bend_p,
                     f"backtest: predicted at {last:g}": back, "backtest low": back_low, "backtest high": back_high,
                     "backtest": backtest,
                     "model": "adequate" if adequate else "not identifiable at this budget"})
    return pd.DataFrame(rows)


def _prediction_se(x: np.ndarray, y: np.ndarray, fit, x0: float) -> float:
    """Standard error of the fitted line's mean at x0."""
    residual = y - (fit.intercept + fit.slope * x)
    s2 = float((residual**2).sum() / (len(x) - 2))
    return math.sqrt(s2 * (1 / len(x) + (x0 - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum()))


def statistic_vs_gap(table, column: str = "kl_knn", gap: str = "reachable_gap"):
    """Per configuration, the least-squares line of ``column`` against the reachable gap over every
    snapshot and seed: slope, intercept (the value a zero gap would give) with its 95% interval, and
    Pearson's r. The certificate bounds the *smoothed* law's KL by the gap; this line asks how much of
    the clean law's mismatch closing the gap would remove."""
    import pandas as pd
    from scipy import stats as st

    rows = []
    for (prior, noise), part in table.groupby(["prior", "noise"], sort=False):
        fit = st.linregress(part[gap].to_numpy(float), part[column].to_numpy(float))
        t = st.t.ppf(0.975, len(part) - 2)
        rows.append({"prior": prior, "noise": noise, "points": len(part), "slope": fit.slope, "intercept": fit.intercept,
                     "intercept 95% low": fit.intercept - t * fit.intercept_stderr,
                     "intercept 95% high": fit.intercept + t * fit.intercept_stderr, "Pearson r": fit.rvalue})
    return pd.DataFrame(rows)


def limit_table(runs: dict[str, object]):
    """One row per run of :func:`limit_configs` (or :func:`critic_configs`): what it trained on and what
    InfoNCE it reached against C and log N (the test estimate's N, which the wide batch's exceeds: its
    test InfoNCE is read against log 1,000, its training one against log 2,048)."""
    import pandas as pd

    rows = []
    for label, run in runs.items():
        cfg, m = run.config, run.metrics
        rows.append({"run": run.hash, "setting": label, "n_train": m["n_train"], "N": cfg.batch_size,
                     "epochs": cfg.epochs, "steps": cfg.epochs * (m["n_train"] // cfg.batch_size),
                     "train InfoNCE": run.log[-1]["infonce"], "test InfoNCE": m["infonce_test"],
                     # the test estimate uses min(N, test digits) candidates: compare it with that log N, not log batch_size
                     "C": m["capacity"], "log N": float(m["log_n"]), "train log N": float(np.log(cfg.batch_size)),
                     "C − InfoNCE": m["capacity"] - m["infonce_test"], "τ/σ": m.get("tau", np.nan) / cfg.sigma,
                     "probe acc": m["linear_probe_acc"], "5-NN acc": m["knn_acc"],
                     "minutes": run.provenance["wall_time_s"] / 60})
    return pd.DataFrame(rows).set_index("setting")


# ---------------------------------------------------------------------------------------------
# The registered prediction: the long runs continued to 2,000 epochs


def continued_trajectory_table(profile: str = "cpu", permutations: int = 200, **overrides):
    """One row per finished run of the continuations (:func:`continued_configs`, each with the runs it saved on
    the way), read as :func:`trajectory_table` reads the long runs; configurations not (yet) continued have no row."""
    import pandas as pd

    from nine.store import find_run, load_run

    rows = []
    for cfg in continued_configs(profile, **overrides):
        for short in continued_trajectory(cfg):
            path = find_run(short)
            if path is None:
                continue
            row = snapshot_row(load_run(path), cfg.prior, permutations, train_probe=False)
            row.update(prior=cfg.prior, noise=noise_of(cfg), epochs=short.epochs,
                       gap=row["capacity"] - row["infonce_test"],
                       reachable_gap=min(row["capacity"], row["log_n"]) - row["infonce_test"])
            rows.append(row)
    return pd.DataFrame(rows)


PREDICTION_READINGS = ("met", "missed", "inconclusive", "not identifiable", "not trained")


def prediction_verdicts(power, traj, continued, target: int = CONTINUED_EPOCHS, column: str = "reachable_gap",
                        predicted: tuple[str, str, str] = ("gap at 2000 epochs", "95% low", "95% high")):
    """Per configuration, the registered prediction of ``column`` at ``target`` epochs (``power``, from
    :func:`gap_power_law` over the long runs; ``predicted`` names its centre and interval columns, the
    interval may be a point) against the continued runs (``continued``) at ``target``:

    - the measured mean over seeds with its 95% t-interval over seeds (not over snapshots), and where the
      mean lies: within the predicted interval, above it (the runs fell slower than predicted) or below;
    - **met** when the mean lies within the predicted interval and the seeds' interval excludes the mean of
      the long runs' last epochs (so the seeds can tell the predicted change from no change);
    - **missed** when the two intervals are disjoint;
    - **inconclusive** otherwise: the intervals overlap but the mean lies outside the prediction, or the
      seeds cannot tell the change from no change, or fewer than two seeds reached ``target``;
      **not trained** when none did;
    - **not identifiable** whatever the measurement, where ``power`` says the law failed its curvature test or
      its backtest (its "model" column): a prediction from a model that fails on its own data is not scored.
    """
    import pandas as pd
    from scipy import stats as st

    last = traj["epochs"].max()
    rows = []
    for _, fit in power.iterrows():
        prior, noise = fit["prior"], fit["noise"]
        before = traj[(traj["prior"] == prior) & (traj["noise"] == noise) & (traj["epochs"] == last)][column]
        at = (continued[(continued["prior"] == prior) & (continued["noise"] == noise) & (continued["epochs"] == target)][column]
              if len(continued) else pd.Series(dtype=float))
        low, high = float(fit[predicted[1]]), float(fit[predicted[2]])
        row = {"prior": prior, "noise": noise, f"at {last} epochs": float(before.mean()),
               "predicted": float(fit[predicted[0]]), "predicted low": low, "predicted high": high,
               "seeds": len(at), "measured": float(at.mean()) if len(at) else float("nan"),
               "measured low": float("nan"), "measured high": float("nan")}
        if len(at) >= 2:
            half = float(st.t.ppf(0.975, len(at) - 1) * at.std(ddof=1) / math.sqrt(len(at)))
            row["measured low"], row["measured high"] = row["measured"] - half, row["measured"] + half
        row["where"] = ("" if not len(at) else "within the prediction" if low <= row["measured"] <= high
                        else "above the prediction (slower)" if row["measured"] > high else "below the prediction (faster)")
        row["verdict"] = _prediction_reading(row, low, high, float(before.mean()))
        if fit.get("model", "adequate") != "adequate" and row["verdict"] != "not trained":
            row["verdict"] = "not identifiable"  # the law failed its own checks: its prediction is not scored
        rows.append(row)
    return pd.DataFrame(rows)


def _prediction_reading(row: dict, low: float, high: float, before: float) -> str:
    if row["seeds"] == 0:
        return "not trained"
    if row["seeds"] < 2:
        return "inconclusive"
    m_low, m_high = row["measured low"], row["measured high"]
    if m_high < low or m_low > high:
        return "missed"
    if m_low <= before <= m_high or not low <= row["measured"] <= high:
        return "inconclusive"
    return "met"
