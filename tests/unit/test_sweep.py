"""The sweep: its grid of configs, the tidy table built from finished runs, and its bad inputs."""

import numpy as np
import pandas as pd
import pytest

from nine.book.tables import summary
from nine.config import ConfigError, make_config
from nine.eval.seed_rules import trend_decrease
from nine.eval.support import on_prior_support
from nine.experiments.runner import run_sweep
from nine.experiments.sweep import (
    GRIDS,
    Grid,
    best_level,
    configs,
    grid_for,
    sweep_table,
)
from nine.store import execute, load_run, resolve_numerics


def test_grid_is_seed_major_with_references_and_shares_the_plain_runs():
    cfgs = configs(GRIDS["gaussian"])
    assert len(cfgs) == 3 * 2 * (5 + 2)
    assert [c.seed for c in cfgs] == sorted(c.seed for c in cfgs)  # an interrupted sweep has whole seeds
    assert {(c.head, c.prior) for c in cfgs} == {("nine", "gaussian"), ("plain", "gaussian"), ("normalise", "gaussian")}
    uniform = configs(GRIDS["uniform"])
    assert {c.eps for c in uniform if c.head == "nine"} == set(GRIDS["uniform"].levels)
    plain = lambda cs: {c for c in cs if c.head == "plain"}  # noqa: E731
    assert plain(cfgs) == plain(uniform)  # the same runs serve both notebooks
    assert grid_for("gaussian", "smoke").seeds == (0,)
    with pytest.raises(ConfigError, match="prior='cauchy' is not allowed"):
        grid_for("cauchy", "cpu")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A finished 2-level × 1-seed Gaussian sweep on 8×8 digits, with both references."""
    from nine.config import make_config

    store = tmp_path_factory.mktemp("sweep")
    grid = Grid("gaussian", levels=(0.3, 1.0), dims=(2,), seeds=(0, 1))
    base = dict(dataset="digits", n_train=128, n_test=64, batch_size=32, epochs=1)
    cfgs = configs(grid, "smoke", **base)
    import torch

    torch.set_num_threads(1)
    paths = [execute(cfg, store) for cfg in cfgs]
    return grid, cfgs, paths, store, make_config("smoke", prior="uniform", eps=0.2, d=2, **base)


def test_table_has_one_row_per_run_and_sane_columns(tiny_sweep):
    grid, cfgs, paths, _, _ = tiny_sweep
    table = sweep_table(paths, "gaussian", permutations=19)
    assert len(table) == len(cfgs) and table["run"].is_unique
    assert list(table["head"]) == ["nine"] * 4 + ["normalise"] * 2 + ["plain"] * 2
    assert table["noise"].isna().sum() == 4 and set(table["noise"].dropna()) == {0.3, 1.0}
    assert table["ks_max"].between(0, 1).all() and table["energy_p"].between(0, 1).all()
    assert (table["capacity"][table["head"] == "nine"] < np.inf).all()
    assert best_level(table) in grid.levels
    nine = table[table["head"] == "nine"]
    trend = trend_decrease(nine["noise"], nine["kl_knn"])
    assert -1 <= trend.rho <= 1 and 0 <= trend.p_fall <= 1
    # exact over the 6 arrangements of 2 levels × 2 seeds: both tails count the observed arrangement
    assert trend.p_fall + trend.p_rise >= 1 and min(trend.p_fall, trend.p_rise) >= 1 / 6
    shown = summary(table, {2: {"ks_max": 0.05}}, {"ks_max": "max KS", "probe_acc": "probe"})
    assert shown.loc[(2, "a sample of the prior"), "max KS"] == "0.05"  # the book's number format
    assert " ± " in shown.loc[(2, "NINE σ=0.3"), "max KS"]  # two seeds: mean ± std


def test_plain_embeddings_are_standardised_and_mapped_onto_the_cube(tiny_sweep):
    _, cfgs, paths, _, _ = tiny_sweep
    plain = load_run(next(p for p, c in zip(paths, cfgs) if c.head == "plain"))
    gaussian = on_prior_support(plain, "gaussian")
    assert np.allclose(gaussian["z_train"].mean(0), 0, atol=1e-6) and np.allclose(gaussian["z_train"].std(0, ddof=1), 1)
    cube = on_prior_support(plain, "uniform")
    assert ((0 < cube["z_test"]) & (cube["z_test"] < 1)).all()


def test_a_run_is_not_evaluated_against_another_prior(tiny_sweep):
    _, cfgs, paths, _, _ = tiny_sweep
    gaussian = load_run(paths[0])
    with pytest.raises(ValueError, match=r"prior='uniform' is not allowed for run .*trained towards prior='gaussian'"):
        on_prior_support(gaussian, "uniform")
    with pytest.raises(ConfigError, match="prior='cauchy' is not allowed"):
        on_prior_support(gaussian, "cauchy")


def test_sweep_trains_only_what_is_missing(tiny_sweep, monkeypatch, capsys):
    _, cfgs, paths, store, uniform_cfg = tiny_sweep
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", store)
    done = run_sweep(cfgs[:3], store)
    assert done == paths[:3] and "3 finished, none to train" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="workers=0 is not allowed"):
        run_sweep(cfgs, store, workers=0)
    new = run_sweep([uniform_cfg], store, workers=1000000000)  # never more workers than runs to train or cores
    out = capsys.readouterr().out
    assert "workers=1000000000 capped at 1" in out and "1 to train with 1 worker" in out
    assert load_run(new[0]).config == resolve_numerics([uniform_cfg], (store,))[0][0]
    row = sweep_table(new, "uniform", permutations=9)
    assert isinstance(row, pd.DataFrame) and row["noise"].iloc[0] == 0.2 and row["method"].iloc[0] == "NINE ε=0.2"


def test_cli_sweep_refuses_an_unknown_prior(capsys):
    from nine.cli import main

    assert main(["sweep", "cauchy", "--profile", "smoke"]) == 2
    assert "prior='cauchy' is not allowed: must be one of gaussian, uniform, laplace" in capsys.readouterr().err


def test_findings_state_the_table_numbers():
    from nine.book.tables import findings

    rows = [dict(d=2, head="nine", noise=s, seed=0, kl_knn=kl, ks_max=ks, max_corr=0.1, probe_acc=acc)
            for s, kl, ks, acc in ((0.3, 0.2, 0.06, 0.40), (1.0, 0.1, 0.05, 0.38))]
    rows.append(dict(d=2, head="plain", noise=float("nan"), seed=0, kl_knn=0.5, ks_max=0.2, max_corr=0.3, probe_acc=0.45))
    text = findings(pd.DataFrame(rows), {2: {"kl_knn": 0.005, "max_corr": 0.02}}, "gaussian", critical={2: 0.043})
    assert text.startswith("**d = 2.** The joint kNN KL to the prior is lowest at σ = 1 (0.1 nats")
    assert "family-wise 5% value of 0.0430" in text
    assert "plain InfoNCE 0.5)" in text and "from 0.380 (σ = 1) to 0.400 (σ = 0.3)" in text


def test_summary_shows_infinite_capacity_without_a_warning(recwarn):
    rows = [dict(d=2, method="plain InfoNCE", capacity=float("inf"), ks_max=0.1 + 0.01 * seed) for seed in range(3)]
    shown = summary(pd.DataFrame(rows), {}, {"capacity": "capacity", "ks_max": "max KS"})
    assert shown.loc[(2, "plain InfoNCE"), "capacity"] == "∞"
    assert shown.loc[(2, "plain InfoNCE"), "max KS"] == "0.110 ± 0.010"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_every_sweep_the_book_shows_is_committed():
    """A page in _toc.yml is executed by the book build: its sweep must be in results/, not trained there."""
    from pathlib import Path

    import yaml

    from nine.book.rerun import notebook_defaults
    from nine.store import RESULTS_DIR, run_hash

    root = Path(__file__).resolve().parents[2]
    toc = (root / "_toc.yml").read_text()
    shown = {"gaussian": "notebooks/02_gaussian_matching", "uniform": "notebooks/03_uniform_matching"}
    assert yaml.safe_load(toc)["chapters"]
    for prior, page in shown.items():
        if page in toc:
            defaults = notebook_defaults(Path(page).name)  # the page's numerics and τ rate
            cfgs = configs(GRIDS[prior], numerics=defaults["numerics"], tau_lr=defaults["tau_lr"])
            missing = [run_hash(c) for c in cfgs if not (RESULTS_DIR / run_hash(c)).is_dir()]
            assert not missing, f"{page} is in _toc.yml but {len(missing)} of its sweep runs are not in results/"


def _fake_run(head: str, prior: str, z_train, z_test, z_view):
    from types import SimpleNamespace

    cfg = make_config("smoke", head=head, prior=prior)
    return SimpleNamespace(config=cfg, hash="fake", embeddings={"z_train": z_train, "z_test": z_test, "z_test_view": z_view})


def test_the_evaluation_path_lets_a_prior_sample_pass_and_removes_running_statistic_offsets():
    """The defect of eval-mode BatchNorm: offsets of up to 0.16 and stds of 0.89–1.08 per coordinate
    (what running statistics of noisy crops gave for clean crops) are rejected by the energy test at
    n = 1,000 although the sample is otherwise perfectly Gaussian; the train-statistics path removes
    them, and a sample of the prior itself passes that path at about the nominal rate."""
    from nine.eval.metrics import calibration, dm_statistics, sample_prior

    rng = np.random.default_rng(0)
    d = 16
    offset, scale = rng.uniform(-0.16, 0.16, d), rng.uniform(0.89, 1.08, d)
    z_train, z_test, z_view = (offset + scale * sample_prior("gaussian", n, d, seed=s) for n, s in ((4000, 1), (1000, 2), (1000, 3)))
    run = _fake_run("nine", "gaussian", z_train, z_test, z_view)
    running = dm_statistics(*(on_prior_support(run, "gaussian", law="running")[k] for k in ("z_test", "z_test_view")), "gaussian", 99)
    recalibrated = dm_statistics(*(on_prior_support(run, "gaussian")[k] for k in ("z_test", "z_test_view")), "gaussian", 99)
    assert running["energy_p"] <= 0.02 and recalibrated["energy_p"] > 0.05
    # the positive control: a prior sample pushed through the path the pages use
    for prior in ("gaussian", "uniform"):
        rejected = []
        for draw in range(10):
            train, test, view = (sample_prior(prior, n, d, seed=100 * draw + s) for n, s in ((4000, 1), (1000, 2), (1000, 3)))
            z = on_prior_support(_fake_run("nine", prior, train, test, view), prior)
            rejected.append(dm_statistics(z["z_test"], z["z_test_view"], prior, 99, seed=draw)["energy_p"] < 0.05)
        assert sum(rejected) <= 3, (prior, rejected)  # nominal 5 %: 3 of 10 has probability < 0.02
        control = calibration(prior, 1000, d, draws=3, permutations=19, n_train=4000)
        assert control["ks_max"] < 0.06  # the 5 % critical value of one coordinate at n = 1,000 is 0.043


def test_every_method_is_evaluated_alike():
    """The same embeddings under any head give the same statistics: the path standardises each with its
    own clean train embeddings, undoing only the squashing function its head ends with."""
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(1)
    h = [rng.normal(0.3, 1.2, (n, 4)) for n in (400, 200, 200)]  # |h| < 5.3: Φ(h) is not clipped
    plain = on_prior_support(_fake_run("plain", "gaussian", *h), "gaussian")
    nine = on_prior_support(_fake_run("nine", "gaussian", *h), "gaussian")
    normalised = on_prior_support(_fake_run("normalise", "gaussian", *h), "gaussian")
    for name in plain:
        assert np.allclose(plain[name], nine[name]) and np.allclose(plain[name], normalised[name])
    # uniform: NINE stores Φ(h), adversarial matching sigmoid(h); both come back to the same cube
    nine_u = on_prior_support(_fake_run("nine", "uniform", *(scipy_stats.norm.cdf(x) for x in h)), "uniform")
    adv_u = on_prior_support(_fake_run("adversarial", "uniform", *(1 / (1 + np.exp(-x)) for x in h)), "uniform")
    plain_u = on_prior_support(_fake_run("plain", "gaussian", *h), "uniform")
    for name in plain_u:
        assert np.allclose(nine_u[name], plain_u[name], atol=1e-7) and np.allclose(adv_u[name], plain_u[name], atol=1e-7)


def test_limiting_factor_reads_the_runs_own_record():
    from types import SimpleNamespace

    from nine.experiments.certificate import limiting_factor

    def run(capacity, curve):
        return SimpleNamespace(hash="x", metrics={"capacity": capacity, "log_n": 6.24, "infonce_test": curve[-1]},
                               log=[{"infonce": v} for v in curve])

    rng = np.random.default_rng(0)
    rising = list(3 + 0.02 * np.arange(60) + 0.005 * rng.standard_normal(60))
    flat = list(3.5 + 0.01 * (-1.0) ** np.arange(60))  # no trend at all
    assert limiting_factor(run(8.0, flat))["factor"] == "estimator"  # C > log N, whatever the curve
    assert limiting_factor(run(5.5, rising))["factor"] == "budget"
    result = limiting_factor(run(5.5, flat))
    assert result["factor"] == "method (plateau)" and result["gap"] == pytest.approx(5.5 - flat[-1])
    assert limiting_factor(run(5.5, flat[:2]))["factor"].startswith("unknown")


def test_require_trained_stops_with_one_line_unless_allowed(tmp_path, monkeypatch):
    from nine.config import ConfigError, make_config
    from nine.experiments.runner import require_trained

    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "a")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "b")
    cfgs = [make_config("cpu", seed=s) for s in range(3)]
    with pytest.raises(ConfigError) as info:
        require_trained(cfgs, "cpu", False, "the sweep", minutes_each=2)
    assert str(info.value) == ("sweep_training=False is not allowed with these parameters: 3 of the sweep's 3 runs are "
                               "not trained (about 6 min on two cores); rerun with -p sweep_training True to train them")
    assert require_trained(cfgs, "cpu", True, "the sweep", 2) == 3
    assert require_trained(cfgs, "smoke", False, "the sweep", 2) == 3  # the smoke profile trains what it needs


def test_a_failing_run_stops_the_sweep_and_closes_its_pool(tmp_path):
    import multiprocessing

    from nine.config import NineError

    good = make_config("smoke", dataset="digits", n_train=64, n_test=32, batch_size=32, epochs=1, d=2)
    bad = good.replace(dataset="mnist", data_dir=str(tmp_path / "no-such-folder"))  # fails inside its worker
    with pytest.raises(NineError, match="no-such-folder"):
        run_sweep([bad, good], tmp_path / "store", workers=2)
    assert multiprocessing.active_children() == []


def test_killing_a_sweep_stops_its_workers(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = make_config("smoke", dataset="digits", n_train=256, n_test=64, batch_size=32, epochs=400, d=2)
    code = ("import sys, json; from nine.config import make_config; from nine.experiments.runner import run_sweep;"
            "cfg = make_config(**json.loads(sys.argv[1]));"
            "run_sweep([cfg, cfg.replace(seed=1)], sys.argv[2], workers=2)")
    main = subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in main.stdout:
        if line.startswith("epoch"):
            break
    children = [int(p) for p in subprocess.run(["pgrep", "-P", str(main.pid)], capture_output=True, text=True).stdout.split()]
    workers = [pid for pid in children if "spawn_main" in open(f"/proc/{pid}/cmdline").read()]  # not the resource tracker
    assert len(workers) == 2
    main.send_signal(signal.SIGTERM)
    main.wait(timeout=60)
    time.sleep(1)
    alive = []
    for pid in workers:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert alive == [], f"workers {alive} outlived their sweep"
