"""Page tables and prose computed from the sweeps' tables: summaries, findings, the numerics comparison
of the reproducing page, and what limits each failing claim."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from nine.book.numbers import fmt, over_seeds
from nine.config import make_config
from nine.experiments.certificate import limiting_factor
from nine.experiments.sweep import sweep_table
from nine.priors import get as get_prior
from nine.store import get_or_train_all


def summary(table, calibration: dict[int, dict[str, float]], columns: dict[str, str]):
    """Mean ± std over seeds of ``columns`` for each method and d, with the prior-sample row per d."""
    import pandas as pd

    rows = []
    for (d, method), part in table.groupby(["d", "method"], sort=False):
        row = {"d": d, "method": method, "seeds": len(part)}
        for column, name in columns.items():
            row[name] = over_seeds(part[column].to_numpy(dtype=float))
        rows.append(row)
        if method == table.loc[table["d"] == d, "method"].iloc[-1] and d in calibration:
            reference = {"d": d, "method": "a sample of the prior", "seeds": "—"}
            for column, name in columns.items():
                value = calibration[d].get(column)
                reference[name] = fmt(value)
            rows.append(reference)
    return pd.DataFrame(rows).set_index(["d", "method"])


def findings(table, calibration: dict[int, dict[str, float]], prior: str, critical: dict[int, float]) -> str:
    """What the sweep shows, as Markdown sentences computed from the table (one paragraph per d), so
    that the text of a page always states the numbers of the runs it shows. ``critical[d]``: the value the
    largest per-coordinate KS statistic of a prior sample exceeds 5% of the time at d (the path rule)."""
    symbol = get_prior(prior).symbol
    paragraphs = []
    for d, part in table.groupby("d"):
        nine = part[part["head"] == "nine"].groupby("noise")
        kl, ks, corr, acc = (nine[c].mean() for c in ("kl_knn", "ks_max", "max_corr", "probe_acc"))
        best = float(kl.idxmin())
        plain = part[part["head"] == "plain"]
        text = (
            f"**d = {d}.** The joint kNN KL to the prior is lowest at {symbol} = {best:g} ({kl[best]:.3g} nats; "
            f"a sample of the prior scores {calibration[d]['kl_knn']:.3g}, plain InfoNCE {plain['kl_knn'].mean():.3g}). "
            f"There the largest per-coordinate KS statistic is {ks[best]:.4f} against the family-wise 5% value of "
            f"{critical[d]:.4f}, and the largest correlation between two coordinates is {corr[best]:.2f} "
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

    field = get_prior(prior).level
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
        rows.append({"statistic": label, first: over_seeds(a), second: over_seeds(b),
                     f"shift in {first} seed std": round(float(shift), 2), "within the seed spread": bool(abs(shift) <= 2),
                     "Welch p": round(float(welch), 3)})
    return pd.DataFrame(rows).set_index("statistic")


def _fastest_first(runs: dict) -> list[tuple[str, dict]]:
    """bench.json's whole runs per CPU class, the largest speed-up (the machine as it is) first."""
    return sorted(runs.items(), key=lambda item: -item[1]["speedup"])


def pair_ratios(run: dict) -> list[float]:
    """The speed-up of each pair of whole runs of one CPU class (bench.json's ``speed.runs[class]``): the
    previous trainer's wall time over the default's, pair by pair (empty for a record without them)."""
    return [a / b for a, b in zip(run["previous"].get("walls_s", []), run["default"].get("walls_s", []))]


def speed_table(runs: dict):
    """The whole-run timings of ``benchmarks/speed.py`` (bench.json's ``speed.runs``), one row per CPU class
    (the fastest first): whether oneDNN could use bf16 units, torch's kernel ISA, the previous fp32 trainer's
    and today's default's wall time (medians over the pairs of runs), the default's numerics, the speed-up (the
    ratio of the medians), the range of the pairs' own ratios, and the target."""
    import pandas as pd

    rows = []
    for name, run in _fastest_first(runs):
        pairs = pair_ratios(run)
        previous, default = run["previous"], run["default"]
        cpu = default["cpu"]
        units = ("yes" if default["bf16_units"] else
                 f"hidden ({cpu['onednn_max_isa']})" if cpu["onednn_max_isa"] != "all" else "no")
        rows.append({"timed as": name, "CPU": cpu["model"], "bf16 units": units, "torch kernels": cpu["torch_isa"],
                     "previous fp32 (min)": previous["wall_s"] / 60, "default": default["numerics"],
                     "default (min)": default["wall_s"] / 60, "× faster": run["speedup"],
                     "pairs: × faster": f"{min(pairs):.2f}–{max(pairs):.2f} ({len(pairs)} pairs)" if len(pairs) > 1 else "one pair",
                     "target": f"≥ {run['target']:g}: {'met' if run['speedup'] >= run['target'] else 'not met'}"})
    return pd.DataFrame(rows).set_index("timed as")


SPEED_METRICS = {"infonce_test": "test InfoNCE", "linear_probe_acc": "linear probe", "knn_acc": "5-NN",
                 "ks_view_mean": "mean view KS", "tau": "τ"}


def speed_agreement(runs: dict):
    """The headline metrics of the two runs timed in each class (same config and seed): what the faster
    trainer changes in one run, beside the seed spread the numerics table shows."""
    import pandas as pd

    rows = {}
    for name, run in _fastest_first(runs):
        for trainer in ("previous", "default"):
            label = f"{name}: {'previous fp32' if trainer == 'previous' else run[trainer]['numerics']}"
            rows[label] = {SPEED_METRICS.get(metric, metric): value for metric, value in run[trainer]["metrics"].items()}
    return pd.DataFrame(rows).T[[label for label in SPEED_METRICS.values() if label in next(iter(rows.values()))]]


def failure_attribution(claims, scopes: dict[str, tuple[int, list[float]]], table, runs: dict):
    """For every failing claim among ``claims`` (a ledger's :class:`~nine.book.claims.Claim` objects) that
    ``scopes`` names, what limits the NINE runs it rests on (:func:`limiting_factor`), counted over the
    runs of its scope: ``scopes[claim id] = (d, noise levels)``, as the page that states the claim gives
    them (the testable levels of its d for a trend, the best level otherwise).
    A pandas DataFrame, one row per failing claim (empty when none fails)."""
    import pandas as pd

    rows = []
    for claim in claims:
        if claim.verdict != "FAIL" or claim.id not in scopes:
            continue
        dim, levels = scopes[claim.id]
        part = table[(table["head"] == "nine") & (table["d"] == dim) & table["noise"].isin(levels)]
        factors = pd.DataFrame([limiting_factor(runs[r]) for r in part["run"]])
        counts = factors["factor"].value_counts() if len(factors) else pd.Series(dtype=int)
        rows.append({"claim": claim.id, "runs": len(factors),
                     **{f: int(counts.get(f, 0)) for f in ("estimator", "budget", "method (plateau)")},
                     "mean C − InfoNCE (nats)": round(float(factors["gap"].mean()), 2) if len(factors) else np.nan})
    return pd.DataFrame(rows)


def failure_reasons(attribution) -> dict[str, str]:
    """One line per failing claim of :func:`failure_attribution`: what limits the runs it rests on."""
    labels = {"estimator": "the estimator (C > log N)", "budget": "the budget (InfoNCE still rising)",
              "method (plateau)": "a plateau below C"}
    reasons = {}
    for row in attribution.to_dict("records"):
        parts = [f"{label} in {row[f]}" for f, label in labels.items() if row[f]]
        reasons[row["claim"]] = f"what limits its {row['runs']} runs: " + (", ".join(parts) if parts else "none found")
    return reasons
