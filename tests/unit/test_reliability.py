"""Faults injected into runs: kills, concurrent starts, corrupt files, full disks, invalid configs."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nine.store.evaluations as evaluations_module
import nine.store.store as runs
from nine import config
from nine.config import FIELDS, ConfigError, make_config
from nine.core.checkpoint import TRAILER
from nine.store import RunError, execute, get_or_train, load_run, run_hash
from nine.store.reproduce import compare_metrics


@pytest.fixture
def cfg():
    """Six epochs of 4 steps, a checkpoint every 2 epochs."""
    return make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=32, epochs=6, d=2,
                       checkpoint_every=2)


def _train_in_subprocess(cfg, store, env_extra=None):
    code = (
        "import sys, json; from nine.config import make_config; from nine.store import execute;"
        "execute(make_config(**json.loads(sys.argv[1])), sys.argv[2])"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env_extra or {})},
    )


def _read_until(proc, marker):
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"process ended before printing {marker!r}: {''.join(lines)}")


def test_sigkill_then_resume_gives_identical_metrics(cfg, tmp_path):
    """Every run in its own process, so all use the same number of threads."""
    reference_proc = _train_in_subprocess(cfg, tmp_path / "uninterrupted")
    assert reference_proc.wait() == 0
    reference = load_run(tmp_path / "uninterrupted" / run_hash(cfg))
    store = tmp_path / "killed"
    proc = _train_in_subprocess(cfg, store)
    _read_until(proc, "epoch    5/6")  # checkpoint after epoch 4 is on disk, epoch 5 is logged
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = store / f".partial-{run_hash(cfg)}"
    assert (partial / "checkpoint.pt").is_file() and not (store / run_hash(cfg)).exists()
    assert len((partial / "log.jsonl").read_text().splitlines()) == 5
    with pytest.raises(RunError):  # the partial run is never loaded as finished
        load_run(partial)
    resume_proc = _train_in_subprocess(cfg, store)
    assert "resuming from the checkpoint after epoch 4/6" in resume_proc.communicate()[0]
    resumed = load_run(store / run_hash(cfg))
    assert resumed.metrics == reference.metrics
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in reference.log]
    assert not partial.exists()


def test_resume_false_starts_afresh(cfg, tmp_path, capsys):
    store = tmp_path / "s"
    proc = _train_in_subprocess(cfg, store)
    _read_until(proc, "epoch    3/6")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    capsys.readouterr()
    execute(cfg, store, resume=False)
    assert "resuming" not in capsys.readouterr().out
    proc = _train_in_subprocess(cfg, tmp_path / "t")
    _read_until(proc, "epoch    3/6")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    execute(cfg, tmp_path / "t")
    assert "resuming from the checkpoint after epoch 2/6" in capsys.readouterr().out


def test_two_processes_same_run_second_waits(cfg, tmp_path):
    cfg = cfg.replace(epochs=60)  # long enough for the second process to start while the first trains
    store = tmp_path / "s"
    first = _train_in_subprocess(cfg, store)
    _read_until(first, "epoch    1/60")
    second = _train_in_subprocess(cfg, store)
    out_second = second.communicate(timeout=300)[0]
    first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, out_second
    assert "waiting for another process that is training run" in out_second
    assert "epoch" not in out_second  # it did not train: it found the finished run
    assert load_run(store / run_hash(cfg)).metrics
    assert not list(store.glob(".partial-*"))


@pytest.mark.parametrize("name", ["embeddings.npz", "model.pt", "log.jsonl", "config.json", "provenance.json"])
def test_corrupt_or_truncated_file_is_named(cfg, tmp_path, name):
    path = execute(cfg.replace(epochs=1), tmp_path)
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match=rf"{name} is corrupt .* `python -m nine train --retrain"):
        load_run(path)


def test_retrain_replaces_a_corrupt_run_only_when_done(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "runs")
    small = cfg.replace(epochs=1)
    path = get_or_train(small).path
    (path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(RunError, match="model.pt is corrupt"):
        get_or_train(small)
    run = get_or_train(small, retrain=True)
    assert run.path == path and run.load_model()


class Payload:
    """Unpickling this object would run code (it writes a file)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_checkpoint_loads_weights_only(cfg, tmp_path):
    """A checkpoint whose unpickling would run code is refused, with the file named; no code runs."""
    store = tmp_path / "s"
    partial = store / f".partial-{run_hash(cfg)}"
    partial.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    torch.save({"epoch": 1, "encoder": Payload(str(marker))}, partial / "checkpoint.pt")
    data = (partial / "checkpoint.pt").read_bytes()  # sealed as the trainer seals its checkpoints
    (partial / "checkpoint.pt").write_bytes(data + TRAILER + hashlib.sha256(data).hexdigest().encode())
    with pytest.raises(Exception, match=r"checkpoint.pt cannot be read") as info:
        execute(cfg, store)
    assert not marker.exists()
    assert "it is not a plain tensor file (it holds posix.mkdir); it is refused" in str(info.value)
    assert "weights_only" not in str(info.value) and "Re-running" not in str(info.value)


def test_a_planted_pickle_in_model_pt_is_refused_in_one_line_without_advice_to_unpickle_it(cfg, tmp_path, capsys):
    """A run's model.pt replaced by a pickle that would run code (its manifest resealed to match) is refused,
    by the command line in one line that names the file and does not repeat torch's advice to load it with
    weights_only=False (which would run the code)."""
    from nine.cli import main

    store = tmp_path / "s"
    parent = execute(cfg.replace(epochs=1), store)
    marker = tmp_path / "code-ran"
    torch.save({"encoder": Payload(str(marker)), "critic": {}}, parent / "model.pt", _use_new_zipfile_serialization=True,
               pickle_protocol=4)  # protocol 4: torch warns about it on stderr too
    manifest = json.loads((parent / "manifest.json").read_text())
    manifest["model.pt"] = runs.sha256(parent / "model.pt")
    (parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=r"model.pt cannot be read \(it is not a plain tensor file"):
        load_run(parent).load_model()
    capsys.readouterr()
    code = main(["train", "--profile", "smoke", "--dataset", "digits", "--n_train", "128", "--n_test", "64",
                 "--batch_size", "32", "--d", "2", "--checkpoint_every", "2", "--epochs", "2",
                 "--continues", parent.name, "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{parent / 'model.pt'} cannot be read (it is not a plain tensor file" in err and "refused" in err
    assert "weights_only" not in err and "Re-running" not in err
    assert not marker.exists() and not list(store.glob(".partial-*"))


@pytest.mark.parametrize(
    ("owner", "writer", "errno_", "reason"),
    [
        (runs.np, "savez_compressed", 28, "No space left on device"),  # disk full while saving
        # read-only file system (EROFS injected: permission bits do not bind root, who runs the tests)
        (runs, "write_json", 30, "Read-only file system"),
    ],
)
def test_write_failure_gives_clear_error_and_keeps_finished_runs(cfg, tmp_path, monkeypatch, owner, writer, errno_,
                                                                  reason):
    store = tmp_path / "s"
    finished = execute(cfg.replace(epochs=1), store)
    before = {p.name: p.read_bytes() for p in finished.iterdir()}

    def fail(*args, **kwargs):
        raise OSError(errno_, reason)

    monkeypatch.setattr(owner, writer, fail)
    with pytest.raises(RunError, match=rf"cannot write run .* \({reason}\); finished runs there are untouched"):
        execute(cfg.replace(epochs=2), store)
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before
    assert load_run(finished)
    # what is left of the failed run is only ever a resumable checkpoint (the trained epochs are not lost)
    assert all((p / "checkpoint.pt").is_file() for p in store.glob(".partial-*"))


def test_unwritable_store_gives_clear_error(cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match=r"cannot write run .* to .*file/runs"):
        execute(cfg, blocker / "runs")


def test_code_status_of_a_run(cfg, tmp_path):
    from nine.store import provenance

    run = load_run(execute(cfg.replace(epochs=1), tmp_path))
    assert run.provenance["numerical_code"] is None or set(run.provenance["numerical_code"]) == set(
        provenance.NUMERICAL_CODE)
    state = provenance.code_state(run.provenance)
    assert state in ("current", "unknown") and run.code_status().startswith(provenance.STATES[state])
    run.provenance["numerical_code"] = {path: "0" * 40 for path in provenance.NUMERICAL_CODE}
    run.provenance["numerical_code_dirty"] = False
    if provenance.code_state(run.provenance) != "unknown":
        assert run.code_status().startswith("made by an earlier numerical code of nine/")


def _not_one_of(choices):
    """Any text that is not one of ``choices`` (read from nine.config itself, so the lists cannot drift), or a number."""
    return st.one_of(st.text().filter(lambda v: v not in choices), st.integers())


INVALID = {
    "prior": _not_one_of(config.PRIORS),
    "dataset": _not_one_of(config.DATASETS),
    "critic": _not_one_of(config.CRITICS),
    "softmax": _not_one_of(config.SOFTMAX_AXES),
    "encoder": _not_one_of(tuple(config.ENCODERS)),
    "head": _not_one_of(config.HEADS),
    "noise_on": _not_one_of(config.NOISE_BRANCHES),
    "device": _not_one_of(config.DEVICES),
    "adv_head": _not_one_of(config.ADVERSARY_HEADS),
    "views": _not_one_of(config.VIEW_PAIRS),
    "numerics": _not_one_of(config.NUMERICS),
    "profile": _not_one_of(tuple(config.PROFILES)),
    "tau_lr": st.one_of(st.floats(max_value=0.0), st.just(float("nan")), st.text()),  # None: "the default"
    "adv_gp": st.one_of(st.floats(max_value=0, exclude_max=True), st.just(float("inf")), st.just(float("nan")), st.text()),
    "adv_lr_ratio": st.one_of(st.floats(max_value=0), st.just(float("nan")), st.text()),
    "d": st.one_of(st.integers(max_value=0), st.floats(), st.text(), st.booleans()),
    "sigma": st.one_of(st.floats(max_value=config.SIGMA_RANGE[0], exclude_max=True),
                       st.floats(min_value=config.SIGMA_RANGE[1], exclude_min=True), st.just(float("nan")), st.text()),
    "eps": st.one_of(st.floats(max_value=0), st.floats(min_value=0.5, exclude_min=True), st.just(float("nan"))),
    "pixel_noise": st.one_of(st.floats(max_value=0, exclude_max=True), st.just(float("inf"))),
    "epochs": st.one_of(st.integers(max_value=0), st.floats(), st.booleans()),
    "batch_size": st.one_of(st.integers(max_value=1), st.floats()),
    "lr": st.one_of(st.floats(max_value=0), st.just(float("nan")), st.text()),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=config.MAX_SEED + 1), st.floats()),
    "n_train": st.one_of(st.integers(max_value=1), st.floats()),
    "n_test": st.one_of(st.integers(max_value=1), st.floats()),
    "data_dir": st.one_of(st.integers(), st.floats()),
    "download": st.one_of(st.integers(), st.text()),
    "checkpoint_every": st.one_of(st.integers(max_value=0), st.floats()),
    "adv_weight": st.one_of(st.floats(max_value=0), st.just(float("nan")), st.text()),
    "beta": st.one_of(st.floats(max_value=0), st.just(float("inf")), st.booleans()),
    "continues": st.one_of(st.text().filter(lambda v: not re.fullmatch("[0-9a-f]{12}", v)), st.integers()),
    "held_out": st.one_of(
        st.lists(st.integers().filter(lambda c: not 0 <= c <= 9), min_size=1).map(tuple),  # not a class
        st.integers(0, 9).map(lambda c: (c, c)),  # repeated
        st.permutations(range(10)).map(lambda p: tuple(p[:9])),  # fewer than two classes left
        st.text(), st.integers(),
    ),
}


def test_every_config_field_has_an_invalid_strategy():
    assert set(INVALID) == set(FIELDS)


@pytest.mark.parametrize("field", sorted(INVALID))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_invalid_value_gives_one_line_config_error(field, data):
    value = data.draw(INVALID[field])
    with pytest.raises(ConfigError) as info:
        if field == "profile":
            make_config(value)
        else:
            make_config("smoke", **{field: value})
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith(("profile=", f"{field}=", "batch_size=")), message


def test_compare_metrics_flags_each_mismatch_with_both_numbers():
    committed = {"ks": [0.03, 0.04], "linear_probe_acc": 0.40, "capacity": 2.49, "n_test": 1000}
    same = compare_metrics(committed, committed)
    assert all(r.ok for r in same) and len(same) == 5
    changed = compare_metrics(committed, {**committed, "linear_probe_acc": 0.30, "capacity": 2.5})
    bad = {r.metric: (r.committed, r.recomputed) for r in changed if not r.ok}
    assert bad == {"linear_probe_acc": (0.40, 0.30), "capacity": (2.49, 2.5)}
    missing = compare_metrics(committed, {k: v for k, v in committed.items() if k != "n_test"})
    assert [r.metric for r in missing if not r.ok] == ["n_test"]


def test_reproduce_cli_reports_and_fails_on_mismatch(cfg, tmp_path, capsys):
    from nine.cli import main

    path = execute(cfg.replace(epochs=1), tmp_path / "committed")
    assert main(["reproduce", str(path), "--store", str(tmp_path / "again")]) == 0
    assert "bit-identical: yes; all within tolerance" in capsys.readouterr().out
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["knn_acc"] += 0.5
    (path / "metrics.json").write_text(json.dumps(metrics))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["metrics.json"] = runs.sha256(path / "metrics.json")
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["reproduce", str(path), "--store", str(tmp_path / "again")]) == 1
    out = capsys.readouterr().out
    assert "knn_acc" in out and "MISMATCH in knn_acc" in out



def test_budget_continued_finds_the_long_runs_in_the_store_they_were_trained_into(tmp_path, monkeypatch, capsys):
    """`budget --continued --store S` continues the runs `budget --store S` trained (not only those of results/
    or the runs folder)."""
    from nine.cli import main
    from nine.experiments import budget

    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", tmp_path / "runs")
    long = make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=32, epochs=2, d=2, sigma=1.0)
    monkeypatch.setattr(budget, "long_configs", lambda profile="cpu", **overrides: [long.replace(**overrides)])
    monkeypatch.setattr(budget, "limit_configs", lambda profile="cpu", **overrides: {})
    monkeypatch.setattr(budget, "critic_configs", lambda profile="cpu", **overrides: {})
    store = tmp_path / "S"
    assert main(["budget", "--profile", "smoke", "--store", str(store)]) == 0
    (trained,) = [p for p in store.iterdir() if not p.name.startswith(".")]
    assert main(["budget", "--profile", "smoke", "--continued", "--store", str(store)]) == 0, capsys.readouterr().err
    (continued,) = budget.continued_configs("smoke", (store,), numerics="auto", tau_lr=0.1)
    assert continued.continues == trained.name
    run = load_run(store / run_hash(continued))
    assert [row["epoch"] for row in run.log] == list(range(1, continued.epochs + 1))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("[0-9a-f]*"))


def test_a_renamed_run_folder_is_named_as_such_with_both_hashes(cfg, tmp_path):
    run = execute(cfg.replace(epochs=1), tmp_path)
    renamed = run.rename(tmp_path / "0123456789ab")
    with pytest.raises(RunError) as info:
        load_run(renamed)
    message = str(info.value)
    assert f"the folder's name 0123456789ab does not match its config's hash {run.name}" in message
    assert "renamed" in message and f"rename it back to {run.name}" in message and "\n" not in message


def test_a_full_disk_while_model_pt_is_written_is_a_one_line_run_error(cfg, tmp_path, monkeypatch):
    """torch.save reports a failed write as RuntimeError, not OSError: it is the same "cannot write run" error,
    the finished runs are untouched and no run folder is left as if finished (here model.pt goes to /dev/full,
    a device that is always full)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    store = tmp_path / "s"
    finished = execute(cfg.replace(epochs=1), store)
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    save = torch.save

    def save_to_full_disk(obj, f, *args, **kwargs):
        return save(obj, "/dev/full" if str(f).endswith("model.pt") else f, *args, **kwargs)

    monkeypatch.setattr(runs.torch, "save", save_to_full_disk)
    for snapshots in ((), (1,)):  # the run itself, and a snapshot saved on the way
        with pytest.raises(RunError, match=r"cannot write run .* \(model.pt could not be written: .*\); finished runs "
                                           r"there are untouched"):
            execute(cfg.replace(epochs=2, seed=len(snapshots) + 1), store, snapshots=snapshots)
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before
    assert [p.name for p in store.iterdir() if not p.name.startswith(".")] == [finished.name]
    assert all((p / "checkpoint.pt").is_file() for p in store.glob(".partial-*"))  # resumable, never finished
    monkeypatch.setattr(runs.torch, "save", save)
    resumed = execute(cfg.replace(epochs=2, seed=1), store)
    assert load_run(resumed).load_model()


@evaluations_module.evaluation()
def _halved(scale: float) -> dict:
    """A stand-in evaluation."""
    return {"half": scale / 2}


def test_an_evaluation_that_cannot_be_stored_is_returned_with_one_line_saying_so(tmp_path, monkeypatch, capsys):
    from nine.store import paths

    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")

    def read_only(*args, **kwargs):  # EROFS injected: permission bits do not bind root, who runs the tests
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(evaluations_module.os, "replace", read_only)
    assert _halved(3.0) == {"half": 1.5}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evaluation _halved could not be stored in" in err[0], err
    assert "(Read-only file system): it is returned, and computed again next time" in err[0]
    assert not list((tmp_path / "runs").rglob("*.json")), "no partial file is left"
    monkeypatch.undo()
    blocker = tmp_path / "file"  # a runs folder that cannot be created at all
    blocker.write_text("not a folder")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "RUNS_DIR", blocker / "runs")
    assert _halved(5.0) == {"half": 2.5}
    assert "could not be stored" in capsys.readouterr().err


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (children, their children, ...), read from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {p for p, pp in parents.items() if pp == parent} - found
        found |= children
        todo += children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("executor", ["pool", "local"])
def test_a_sweep_killed_by_sigkill_leaves_no_training_process_behind(cfg, tmp_path, executor):
    """Two runs, two workers (a process pool, or local submitit jobs under their controllers): once both train,
    the sweep is killed by SIGKILL, which leaves it no time to stop them; every process it started ends too."""
    long = cfg.replace(epochs=5000, checkpoint_every=1000)  # far longer than the test
    code = (
        "import sys, json; from nine.config import make_config; from nine.experiments.runner import run_sweep;"
        "cfg = make_config(**json.loads(sys.argv[1]));"
        "run_sweep([cfg, cfg.replace(seed=cfg.seed + 1)], sys.argv[2], workers=2, executor=sys.argv[3])"
    )
    store = tmp_path / "store"
    sweep = subprocess.Popen([sys.executable, "-c", code, json.dumps(long.to_dict()), str(store), executor],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logs = [store / f".partial-{run_hash(c)}" / "log.jsonl" for c in (long, long.replace(seed=long.seed + 1))]
    deadline = time.time() + 120
    try:
        while not all(log.is_file() and log.read_text().strip() for log in logs):
            assert sweep.poll() is None, "the sweep ended before both runs trained"
            assert time.time() < deadline, "the runs never started training"
            time.sleep(0.2)
        started = _descendants(sweep.pid)
        assert started, "the sweep trains in processes of its own"
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    deadline = time.time() + 15
    while any(_alive(pid) for pid in started) and time.time() < deadline:
        time.sleep(0.2)
    left = [pid for pid in started if _alive(pid)]
    for pid in left:  # not to leave them training after a failure
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed sweep still run: {left}"


TINY_ARGS = ["--profile", "smoke", "--dataset", "digits", "--n_train", "128", "--n_test", "64", "--batch_size", "32",
             "--d", "2", "--checkpoint_every", "2"]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--epochs", "1", "--batch_size", "1000"], "batch_size=1000 is not allowed"),  # the data refuse it
    (["--epochs", "2", "--continues", "0" * 12], "no finished run with that hash"),
])
def test_a_value_refused_before_training_creates_no_store_nor_lock(tmp_path, capsys, args, fragment):
    from nine.cli import main

    store = tmp_path / "new" / "store"
    assert main(["train", *TINY_ARGS, *args, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [["train", *TINY_ARGS, "--epochs", "1"], ["sweep", "gaussian", "--profile", "smoke"],
                                     ["budget", "--profile", "smoke"], ["calibrate", "gaussian", "--profile", "smoke"],
                                     ["reproduce"]])
def test_an_empty_store_is_refused_not_the_working_folder(tmp_path, monkeypatch, capsys, command):
    from nine.cli import main

    monkeypatch.chdir(tmp_path)
    assert main([*command, "--store", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ConfigError: store='' is not allowed: name a folder"), err
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="store=' ' is not allowed"):
        get_or_train(make_config("smoke"), " ")


def test_a_process_that_waits_for_another_and_loads_its_run_does_not_say_it_trains(cfg, tmp_path):
    cfg = cfg.replace(epochs=60)  # long enough for the second process to start while the first trains
    store = tmp_path / "s"
    first = _train_in_subprocess(cfg, store)
    _read_until(first, "epoch    1/60")
    second = subprocess.run([sys.executable, "-m", "nine", "train", *TINY_ARGS, "--epochs", "60", "--store", str(store)],
                            capture_output=True, text=True, timeout=300)
    first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, second.stdout + second.stderr
    assert f"waiting for another process that is training run {run_hash(cfg)}" in second.stdout
    assert f"run {run_hash(cfg)} was finished meanwhile by the process we waited for; loading it" in second.stdout
    assert "training run" not in second.stdout.replace("is training run", ""), second.stdout
    assert "epoch" not in second.stdout


def test_reproducing_a_continued_run_continues_the_committed_run_and_says_so(cfg, tmp_path, capsys):
    """A continued run is recomputed by continuing the committed run it continues (the one beside it, not a
    recomputation of that run left in the folder the recomputation goes to), and the command says so."""
    from nine.cli import main

    committed, again = tmp_path / "committed", tmp_path / "again"
    parent = execute(cfg.replace(epochs=1), committed)
    continued = execute(cfg.replace(epochs=2, continues=parent.name), committed)
    other = again / parent.name  # a recomputation of the parent that differs from the committed one
    runs.shutil.copytree(parent, other)
    state = torch.load(other / "model.pt", weights_only=True)
    state["encoder"] = {k: v + 0.1 if v.is_floating_point() else v for k, v in state["encoder"].items()}
    torch.save(state, other / "model.pt")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["model.pt"] = runs.sha256(other / "model.pt")
    (other / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["reproduce", str(continued), "--store", str(again)]) == 0
    out = capsys.readouterr().out
    assert f"recomputing {continued} by continuing the committed run {parent.name} it continues to 2 epochs" in out
    assert "from scratch into" not in out and "bit-identical: yes" in out
