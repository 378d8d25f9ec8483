"""The budget study's configs and its readings, on synthetic tables with known answers."""

import pandas as pd
import pytest

from nine.experiments import budget


def _table(kl_by_epoch: dict[tuple[str, float], list[list[float]]], epochs=(60, 120, 240, 360, 480, 600)):
    rows = []
    for (prior, noise), seeds in kl_by_epoch.items():
        for seed, values in enumerate(seeds):
            for e, v in zip(epochs, values):
                rows.append({"prior": prior, "noise": noise, "seed": seed, "epochs": e, "kl_knn": v,
                             "reachable_gap": 2.0 * e ** -0.5, "gap": 3.0 * e ** -0.5})
    return pd.DataFrame(rows)


def test_readings_tell_budget_from_plateau_from_floor():
    table = _table({
        ("gaussian", 1.0): [[5, 4, 3, 2.5, 2.0, 1.5], [5.1, 4.1, 3.1, 2.6, 2.1, 1.6]],  # still falling
        ("gaussian", 2.0): [[5, 4, 3.5, 3.2, 3.1, 3.1], [5, 4, 3.6, 3.3, 3.2, 3.25]],  # stopped above the floor
        ("uniform", 0.2): [[1, 0.5, 0.2, 0.05, 0.02, 0.01], [1, 0.5, 0.2, 0.05, 0.02, 0.012]],  # at the floor
    })
    readings = budget.budget_verdicts(table, {"gaussian": 0.01, "uniform": 0.01}).set_index(["prior", "noise"])["reading"]
    assert readings[("gaussian", 1.0)] == "still falling (budget)"
    assert readings[("gaussian", 2.0)] == "not clearly falling (a plateau, or a fall within the seeds' spread)"
    assert readings[("uniform", 0.2)] == "at the floor"


def test_power_law_recovers_the_exponent_and_brackets_the_extrapolation():
    table = _table({("gaussian", 1.0): [[1] * 6, [1] * 6]})
    fit = budget.gap_power_law(table, 2000).iloc[0]
    assert fit["exponent b"] == pytest.approx(-0.5, abs=1e-9)
    assert fit["gap at 2000 epochs"] == pytest.approx(2.0 * 2000 ** -0.5, rel=1e-9)
    assert fit["95% low"] == pytest.approx(fit["95% high"], rel=1e-6)  # an exact power law: no residual


def test_statistic_against_gap_line():
    table = _table({("gaussian", 1.0): [[1] * 6, [1] * 6]})
    table["kl_knn"] = 0.5 + 3.0 * table["reachable_gap"]
    line = budget.statistic_vs_gap(table).iloc[0]
    assert line["slope"] == pytest.approx(3.0) and line["intercept"] == pytest.approx(0.5) and line["Pearson r"] == pytest.approx(1.0)


def test_study_configs_share_steps_and_snapshots():
    limits = budget.limit_configs("cpu")
    steps = {label: cfg.epochs * ((cfg.n_train or 4000) // cfg.batch_size) for label, cfg in limits.items()}
    wide = next(label for label in limits if label.endswith("2048"))
    assert len({v for k, v in steps.items() if k != wide}) == 1  # equal optimiser steps
    assert steps[wide] * 2048 == steps["two views (reference)"] * 512  # the wide batch: equal samples
    long = budget.long_configs("cpu")
    assert len(long) == 10 and all(cfg.epochs == budget.LONG_EPOCHS and cfg.d == 16 for cfg in long)
    assert budget.snapshots_of(long[0]) == (60, 120, 240, 360, 480)
    assert budget.snapshots_of(limits["n_train = 1000"]) == ()  # runs on fewer digits save no snapshots
    # the runs a long run saves on the way are not trained again
    on_the_way = {short for cfg in long for short in budget.trajectory(cfg)[:-1]}
    assert not on_the_way & set(budget.all_configs("cpu"))
    assert limits["two views (reference)"] in on_the_way
