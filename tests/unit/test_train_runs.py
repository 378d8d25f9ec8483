import json
import math
import statistics

import numpy as np
import pytest
import torch

from nine.config import ConfigError, fastest_numerics, make_config
from nine.core.losses import infonce
from nine.core.train import TrainingDiverged, train
from nine.data import load_split
from nine.store import RunError, execute, find_run, get_or_train, load_run, run_hash


def test_loss_decreases_on_fake_data():
    """Two clusters of noisy blobs: InfoNCE must learn to tell images apart within a few epochs."""
    cfg = make_config("smoke", dataset="digits", n_train=256, n_test=64, batch_size=64, epochs=6, d=4, sigma=0.3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 28, 28, generator=g)
    split = type(load_split(cfg))(x, torch.zeros(256, dtype=torch.long), x[:64], torch.zeros(64, dtype=torch.long))
    history = train(cfg, split, progress=lambda line: None).history
    assert history[-1]["loss"] < history[0]["loss"] - 0.3
    assert all(r["infonce"] <= math.log(64) for r in history)


def test_progress_lines_and_log(tiny_cfg, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    train(tiny_cfg, load_split(tiny_cfg), log_path=log)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == tiny_cfg.epochs and err == ""
    assert lines[-1].startswith("epoch    2/2") and "nats" in lines[-1] and "samples/s" in lines[-1] and "ETA" in lines[-1]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"loss", "infonce", "samples_per_s", "tau"} <= set(records[0])


def test_nan_loss_stops_with_epoch_and_step(tiny_cfg, monkeypatch):
    """Fault injection: the loss turns NaN at the 7th step (epoch 2, step 3 with 4 steps per epoch)."""
    import nine.core.objectives

    calls = []

    def poisoned(scores, softmax):
        calls.append(1)
        loss, estimate = infonce(scores, softmax)
        return (loss * float("nan"), estimate) if len(calls) == 7 else (loss, estimate)

    monkeypatch.setattr(nine.core.objectives, "infonce", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss=nan at epoch 2, step 3"):
        train(tiny_cfg, load_split(tiny_cfg), progress=lambda line: None)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.full((8, 1, 28, 28), float("nan")), "contains NaN"),
        (torch.rand(8, 1, 28, 28) * 255, r"pixels in \[.*\]: need values in \[0, 1\] \(divide by 255\?\)"),
        (torch.rand(8, 3, 28, 28), r"shape \(8, 3, 28, 28\) is not allowed"),
        (torch.rand(0, 1, 28, 28), "is empty"),
        (torch.randint(0, 2, (8, 1, 28, 28)), "need a float torch.Tensor"),
    ],
)
def test_bad_images_give_clear_errors(tiny_cfg, images, message):
    split = load_split(tiny_cfg)
    with pytest.raises(ValueError, match=message):
        train(tiny_cfg, type(split)(images, split.y_train[: len(images)], split.x_test, split.y_test))


def test_batch_above_dataset_and_wrong_view_shape(tiny_cfg):
    split = load_split(tiny_cfg)
    small = type(split)(split.x_train[:16], split.y_train[:16], split.x_test, split.y_test)
    with pytest.raises(ConfigError, match="batch_size=32 is not allowed: the train split has only 16 images"):
        train(tiny_cfg, small)
    with pytest.raises(ValueError, match=r"input of shape \(2, 1, 28, 28\) is not allowed"):
        train(tiny_cfg, split, progress=lambda line: None).encoder(split.x_test[:2])


def test_same_seed_same_metrics_other_seed_differs(tiny_cfg, tmp_path):
    a = load_run(execute(tiny_cfg, tmp_path / "a"))
    b = load_run(execute(tiny_cfg, tmp_path / "b"))
    c = load_run(execute(tiny_cfg.replace(seed=1), tmp_path / "c"))
    assert a.metrics == b.metrics
    assert np.array_equal(a.embeddings["z_test"], b.embeddings["z_test"])
    assert a.metrics["ks"] != c.metrics["ks"]


def test_run_store_roundtrip_and_hash(tiny_cfg, tmp_path, monkeypatch):

    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "runs")
    run = get_or_train(tiny_cfg)
    assert run.path == tmp_path / "runs" / run_hash(tiny_cfg)
    assert not list((tmp_path / "runs").glob(".partial-*"))
    assert run.metrics["n_train"] == 128 and len(run.metrics["ks"]) == 2
    assert run.embeddings["z_test"].shape == run.embeddings["z_test_view"].shape == (64, 2)
    assert len(run.metrics["ks_view"]) == 2 and not np.array_equal(run.embeddings["z_test"], run.embeddings["z_test_view"])
    assert run.provenance["nine_version"] and run.provenance["wall_time_s"] > 0
    assert len(run.log) == tiny_cfg.epochs
    encoder, critic = run.load_model()
    assert encoder(torch.rand(3, 1, 24, 24)).shape == (3, 2)
    again = get_or_train(tiny_cfg)  # loads, does not retrain
    assert again.provenance == run.provenance
    # bookkeeping fields do not change the hash; anything computed does
    assert run_hash(tiny_cfg.replace(device="cpu")) == run_hash(tiny_cfg)
    assert run_hash(tiny_cfg.replace(sigma=0.31)) != run_hash(tiny_cfg)


def test_no_training_flag_refuses_a_missing_run_and_still_loads_a_finished_one(tiny_cfg, tmp_path, monkeypatch):

    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "runs")
    monkeypatch.setenv("NINE_NO_TRAINING", "1")
    with pytest.raises(RunError, match=f"run {run_hash(tiny_cfg)} .* NINE_NO_TRAINING is set"):
        get_or_train(tiny_cfg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    monkeypatch.delenv("NINE_NO_TRAINING")
    trained = get_or_train(tiny_cfg)
    monkeypatch.setenv("NINE_NO_TRAINING", "1")
    assert get_or_train(tiny_cfg).provenance == trained.provenance


def test_failed_run_leaves_nothing_and_keeps_finished_runs(tiny_cfg, tmp_path):
    finished = execute(tiny_cfg, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir() if p.name != ".locks")
    bad = tiny_cfg.replace(dataset="mnist", data_dir=str(tmp_path / "missing"))
    with pytest.raises(Exception, match="does not exist"):
        execute(bad, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".locks") == before
    assert load_run(finished).metrics


def test_corrupt_or_incomplete_run_gives_clear_error(tiny_cfg, tmp_path):
    path = execute(tiny_cfg, tmp_path)
    (path / "metrics.json").write_text("{truncated")
    with pytest.raises(RunError, match=r"metrics.json is corrupt .*--retrain"):
        load_run(path)
    (path / "model.pt").unlink()
    with pytest.raises(RunError, match="missing model.pt"):
        load_run(path)
    assert find_run(tiny_cfg, (tmp_path,)) == path


def test_cheapest_committed_run_prefers_this_thread_count_then_small_budgets(tmp_path, monkeypatch):
    import json

    import torch

    from nine.store import reproduce as runs

    def fake(name, epochs, n_train, threads, wall):
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"epochs": epochs}))
        (path / "metrics.json").write_text(json.dumps({"n_train": n_train}))
        (path / "provenance.json").write_text(json.dumps({"torch_threads": threads, "wall_time_s": wall}))

    here = torch.get_num_threads()
    fake("big", 60, 4000, here, 10.0)  # short wall time (e.g. resumed) but a large budget
    fake("other_threads", 2, 512, here + 1, 5.0)
    fake("small", 2, 512, here, 50.0)
    fake("tiny_other_threads", 1, 128, here + 1, 1.0)  # cheaper, but its rounding cannot be matched here
    (tmp_path / ".partial-x").mkdir()
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path)
    assert runs.cheapest_committed_run().name == "small"


def test_code_summary_counts_current_older_unrecorded_and_unknown_runs(monkeypatch):
    from nine.store import provenance

    now = {path: f"{path}-now" for path in provenance.NUMERICAL_CODE}
    answers = {("rev-parse", f"HEAD:{path}"): oid for path, oid in now.items()}
    answers[("status", "--porcelain", "--", *provenance.NUMERICAL_CODE)] = ""
    monkeypatch.setattr(provenance, "git", lambda *args: answers.get(args))
    made = [{"numerical_code": now, "numerical_code_dirty": False, "git_commit": "a" * 40},
            {"numerical_code": {**now, "nine/core": "old"}, "numerical_code_dirty": False, "git_commit": "b" * 40},
            {"nine_tree": "flat-layout", "git_dirty": False, "git_commit": "c" * 40},
            {"numerical_code": now, "numerical_code_dirty": True, "git_commit": "d" * 40}]
    assert [provenance.code_state(r) for r in made] == ["current", "older", "unrecorded", "unknown"]
    text = provenance.code_summary(made)
    assert text.startswith("Of these 4 runs, 1 made by the current numerical code of nine/; 1 made by an earlier "
                           "numerical code of nine/ (commit bbbbbbbbbb); 1 made before nine/ recorded")
    assert "make reproduce" in text
    assert provenance.code_summary(made[1:2] * 3) == ("All 3 were made by an earlier numerical code of nine/ (commit "
                                                      f"bbbbbbbbbb); {provenance.REMEDY}.")
    answers[("status", "--porcelain", "--", *provenance.NUMERICAL_CODE)] = " M nine/core/train.py"
    assert provenance.code_state(made[0]) == "unknown"


def test_get_or_train_all_keeps_order_trains_missing_and_says_loaded_runs_in_one_line(tiny_cfg, tmp_path, monkeypatch, capsys):
    import nine.store.store as runs

    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "runs")
    other = tiny_cfg.replace(seed=1)
    first = get_or_train(tiny_cfg)
    capsys.readouterr()
    both = runs.get_or_train_all([other, tiny_cfg])
    here = fastest_numerics()  # "auto": the numerics a new run takes on this machine, one for both
    assert [r.config for r in both] == [other.replace(numerics=here), tiny_cfg.replace(numerics=here)]
    assert both[1].provenance == first.provenance
    out = capsys.readouterr().out
    assert f"training run {run_hash(other)}" in out
    assert out.count("loaded") == 1 and "loaded 1 finished run from" in out and "It was made by" in out
    monkeypatch.setenv("NINE_NO_TRAINING", "1")
    with pytest.raises(RunError, match=run_hash(tiny_cfg.replace(seed=2))):
        runs.get_or_train_all([tiny_cfg, tiny_cfg.replace(seed=2)])


def test_reproduce_references_come_from_the_committed_seeds(tmp_path, monkeypatch):
    """A value must lie in the 95 % prediction interval of one more seed; a per-coordinate statistic is a
    set, no farther from the committed one than two committed seeds are; fewer than three seeds fall back
    to the fixed table."""
    import json
    import math

    from scipy import stats

    from nine.config import make_config
    from nine.store import reproduce as runs

    for seed, acc in ((0, 0.80), (1, 0.82), (2, 0.84)):
        path = tmp_path / f"run{seed}"
        path.mkdir()
        (path / "config.json").write_text(json.dumps(make_config("cpu", d=4, seed=seed).to_dict()))
        (path / "metrics.json").write_text(json.dumps({"knn_acc": acc, "n_test": 1000, "ks": [0.1, 0.1 + seed / 100]}))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(make_config("cpu", d=8).to_dict()))
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path)
    assert [p.name for p in runs.siblings(tmp_path / "run1")] == ["run0", "run1", "run2"]
    references, n = runs.seed_references(tmp_path / "run0")
    half_width = stats.t.ppf(0.975, 2) * 0.02 * math.sqrt(4 / 3)  # s = 0.02 over the three seeds
    assert n == 3 and math.isclose(references["knn_acc"].centre, 0.82)
    assert math.isclose(references["knn_acc"].tolerance, half_width) and references["n_test"].tolerance == 0
    # the seeds' sets are 0.005, 0.01 and 0.005 apart: one more seed's set within their mean + t · s · √(1 + 1/n)
    pairs = [0.005, 0.01, 0.005]
    bound = statistics.fmean(pairs) + stats.t.ppf(0.975, 2) * math.sqrt(4 / 3) * statistics.stdev(pairs)
    assert math.isclose(references["ks"].tolerance, bound) and 0.02 < bound < 0.022
    near, far = 0.82 + 0.9 * half_width, 0.82 + 1.1 * half_width
    assert runs.compare_metrics({"knn_acc": 0.80}, {"knn_acc": near}, references)[0].ok
    assert not runs.compare_metrics({"knn_acc": 0.80}, {"knn_acc": far}, references)[0].ok
    assert not runs.compare_metrics({"n_test": 1000}, {"n_test": 999}, references)[0].ok
    assert runs.seed_references(other) == (None, 1)
    # per-coordinate statistics are a set: the same values in another coordinate order are at distance 0
    # (but not bit-identical), a value moved farther than the seeds' sets differ is a mismatch
    swapped = runs.compare_metrics({"ks": [0.1, 0.12]}, {"ks": [0.12, 0.1]}, references)[0]
    assert swapped.ok and swapped.distance == 0 and not swapped.identical and swapped.metric == "ks (set of 2)"
    assert not runs.compare_metrics({"ks": [0.1, 0.12]}, {"ks": [0.1, 0.2]}, references)[0].ok
    assert not runs.compare_metrics({"ks": [0.1, 0.12]}, {"ks": [0.1]}, references)[0].ok  # sizes differ
    # without seeds, the fixed table holds each sorted value
    fixed = {r.metric: r for r in runs.compare_metrics({"ks": [0.1, 0.12]}, {"ks": [0.12, 0.13]})}
    assert fixed["ks[sorted 1]"].ok and math.isclose(fixed["ks[sorted 1]"].distance, 0.01)


def test_reproduce_names_the_machines():
    from nine.store.provenance import cpu_class
    from nine.store.reproduce import made_on

    assert "not recorded" in made_on({"device": "cpu", "device_name": "2 CPU cores"})
    cpu = cpu_class("model name\t: EPYC\nflags\t\t: fpu avx2 fma\n")
    assert made_on({"device": "cpu", "cpu": cpu}).startswith("EPYC, no bf16 units")
    assert made_on({"device": "cuda:0", "device_name": "NVIDIA H200"}) == "NVIDIA H200"
