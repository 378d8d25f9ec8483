"""The budget study's configs and its readings, on synthetic tables with known answers."""

import pandas as pd
import pytest

from nine.experiments import budget, budget_readings


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
    readings = budget_readings.budget_verdicts(table, {"gaussian": 0.01, "uniform": 0.01}).set_index(["prior", "noise"])["reading"]
    assert readings[("gaussian", 1.0)] == "still falling (budget)"
    assert readings[("gaussian", 2.0)] == "not clearly falling (a plateau, or a fall within the seeds' spread)"
    assert readings[("uniform", 0.2)] == "at the floor"


def test_power_law_recovers_the_exponent_and_brackets_the_extrapolation():
    table = _table({("gaussian", 1.0): [[1] * 6, [1] * 6]})
    fit = budget_readings.gap_power_law(table, 2000).iloc[0]
    assert fit["exponent b"] == pytest.approx(-0.5, abs=1e-9)
    assert fit["gap at 2000 epochs"] == pytest.approx(2.0 * 2000 ** -0.5, rel=1e-9)
    assert fit["95% low"] == pytest.approx(fit["95% high"], rel=1e-6)  # an exact power law: no residual


def test_statistic_against_gap_line():
    table = _table({("gaussian", 1.0): [[1] * 6, [1] * 6]})
    table["kl_knn"] = 0.5 + 3.0 * table["reachable_gap"]
    line = budget_readings.statistic_vs_gap(table).iloc[0]
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


def test_prediction_verdicts_have_known_answers():
    long = _table({("gaussian", 0.5): [[0] * 6, [0] * 6], ("uniform", 0.2): [[0] * 6, [0] * 6],
                   ("gaussian", 1.0): [[0] * 6, [0] * 6], ("uniform", 0.5): [[0] * 6] * 2, ("gaussian", 2.0): [[0] * 6] * 2})
    long["reachable_gap"] = 0.30  # every configuration at 600 epochs
    power = pd.DataFrame([{"prior": p, "noise": n, "gap at 2000 epochs": 0.15, "95% low": 0.13, "95% high": 0.17}
                          for p, n in [("gaussian", 0.5), ("uniform", 0.2), ("gaussian", 1.0), ("uniform", 0.5),
                                       ("gaussian", 2.0)]])
    at_2000 = {("gaussian", 0.5): [0.150, 0.152],  # on the prediction, seeds close: met
               ("uniform", 0.2): [0.280, 0.282],  # barely moved, seeds close: missed (slower than predicted)
               ("gaussian", 1.0): [0.10, 0.40],  # seeds far apart: the interval holds 0.30 too
               ("uniform", 0.5): [0.15],  # one seed
               ("gaussian", 2.0): [0.20, 0.21]}  # overlaps the prediction, but its mean lies above it
    continued = pd.DataFrame([{"prior": p, "noise": n, "seed": s, "epochs": 2000, "reachable_gap": v}
                              for (p, n), values in at_2000.items() for s, v in enumerate(values)])
    verdicts = budget_readings.prediction_verdicts(power, long, continued).set_index(["prior", "noise"])["verdict"]
    assert verdicts[("gaussian", 0.5)] == "met"
    assert verdicts[("uniform", 0.2)] == "missed"
    assert verdicts[("gaussian", 1.0)] == "inconclusive"
    assert verdicts[("uniform", 0.5)] == "inconclusive"
    assert verdicts[("gaussian", 2.0)] == "inconclusive"
    assert set(verdicts) <= set(budget_readings.PREDICTION_READINGS)
    where = budget_readings.prediction_verdicts(power, long, continued).set_index(["prior", "noise"])["where"]
    assert where[("gaussian", 2.0)] == "above the prediction (slower)" and where[("gaussian", 0.5)] == "within the prediction"
    untrained = budget_readings.prediction_verdicts(power, long, continued[continued["noise"] != 2.0])
    assert untrained.set_index(["prior", "noise"])["verdict"][("gaussian", 2.0)] == "not trained"


def test_continued_configs_continue_the_long_runs():
    from nine.store import run_hash

    long = {run_hash(cfg): cfg for cfg in budget.long_configs("cpu")}
    continued = budget.continued_configs("cpu")
    assert len(continued) == len(long) and all(cfg.epochs == budget.CONTINUED_EPOCHS for cfg in continued)
    for cfg in continued:
        parent = long[cfg.continues]
        assert cfg.replace(epochs=parent.epochs, continues=None, numerics=parent.numerics) == parent
    # the three configurations still falling at 600 epochs come first, both seeds each
    assert [(c.prior, budget.noise_of(c)) for c in continued[:6:2]] == list(budget.CONTINUED_ORDER[:3])
