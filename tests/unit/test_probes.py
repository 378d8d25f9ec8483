"""What a hostile new user tries against ``python -m nine`` and the run store, each probe a test: a
refused input gets one line naming the value and what is allowed, exit status 2 and no traceback, and
leaves every file already saved as it was; a damaged file is named, never used."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nine.cli import main
from nine.config import make_config
from nine.store import RunError, execute, load_run, run_hash
from nine.store.paths import ROOT

TINY = ["--profile", "smoke", "--dataset", "digits", "--n_train", "64", "--n_test", "32", "--batch_size", "32",
        "--epochs", "1", "--d", "2"]


def tiny(**changes):
    base = dict(dataset="digits", n_train=64, n_test=32, batch_size=32, epochs=1, d=2)
    return make_config("smoke", **{**base, **changes})


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """results/ and runs/ of their own, one run finished in results/."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    monkeypatch.setattr("nine.store.paths.RESULTS_DIR", results)
    monkeypatch.setattr("nine.store.paths.RUNS_DIR", runs)
    execute(tiny(), results)
    return results, runs


def digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (but lock files) by its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".locks" not in p.parts}


def cli(capsys, *args):
    capsys.readouterr()  # what earlier calls printed is not this call's
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(capsys, args, *fragments, keep: Path | None = None):
    """``args`` exit 2 with one line on stderr containing every fragment, and change nothing in ``keep``."""
    before = digest(keep) if keep else None
    code, out, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, out + err
    assert all(f in lines[0] for f in fragments), lines[0]
    if keep:
        assert digest(keep) == before
    return lines[0]


def reseal(run: Path) -> None:
    """Rewrite a run's manifest to match its files (what a tamperer would do)."""
    names = ("config.json", "metrics.json", "log.jsonl", "embeddings.npz", "model.pt", "provenance.json")
    (run / "manifest.json").write_text(json.dumps({n: hashlib.sha256((run / n).read_bytes()).hexdigest() for n in names}))


# --- inputs that pass the type check but cannot work: refused before anything is trained -------------------


@pytest.mark.parametrize(("args", "fragments"), [
    (["--n_test", "3"], ("n_test=3 is not allowed", "each of the 10 classes")),
    (["--n_train", "5", "--batch_size", "2"], ("n_train=5 is not allowed",)),
    (["--n_test", "12"], ("n_test=12 is not allowed", "at least 20 images")),
    (["--seed", "1180591620717411303424"], ("seed=1180591620717411303424 is not allowed", "[0, 4294967295]")),
    (["--d", "1000000000"], ("d=1000000000 is not allowed here", "GiB")),
    (["--d", "9" * 100_000], ("d='999", "must be an integer in [1, 1000000000]")),
    (["--d", "1+" * 30_000 + "1"], ("d='1+1+", "must be an integer in [1, 1000000000]")),
    (["--d", "[" * 5000 + "]" * 5000], ("d='[[[", "must be an integer in [1, 1000000000]")),
    (["--seed", "0x" + "f" * 4000], ("seed=<an integer of 16,000 bits> is not allowed", "[0, 4294967295]")),
    (["--sigma", "1" + "0" * 400], ("sigma=<an integer of", "is not allowed", "[0.001, 1000]")),
    (["--epochs", "1" + "0" * 400], ("epochs=<an integer of", "is not allowed")),
    (["--held_out", "[" + "1" * 400 + "]"], ("held_out=", "is not allowed")),
    (["--checkpoint_every", "1" + "0" * 400], ("checkpoint_every=<an integer of", "is not allowed")),
    (["--continues", "12345678e901"], ("continues='12345678e901'", "no finished run with that hash")),  # text, not inf
    (["--continues", "1234567890"], ("continues='1234567890' is not allowed", "12 hex digits")),
    (["--data_dir", "5", "--dataset", "mnist"], ("data_dir='5'",)),
    (["--sigma", "1e-300"], ("sigma=1e-300 is not allowed", "[0.001, 1000]")),
    (["--sigma", "1e300"], ("sigma=1e+300 is not allowed", "[0.001, 1000]")),
])
def test_input_refused_up_front(stores, capsys, args, fragments):
    results, runs = stores
    refused(capsys, ["train", *TINY, *args, "--store", str(runs)], *fragments, keep=results.parent)
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]  # nothing trained


def test_batch_larger_than_the_data_is_refused_before_training(stores, capsys):
    results, runs = stores
    refused(capsys, ["train", "--profile", "cpu", "--batch_size", "100000", "--epochs", "1", "--store", str(runs)],
            "batch_size=100000 is not allowed", "has only 4000 images", keep=results.parent)


def test_none_given_on_the_command_line_means_none(stores, capsys):
    results, runs = stores
    code, out, _ = cli(capsys, "train", *TINY, "--n_train", "None", "--store", str(runs))
    assert code == 0
    run = load_run(next(p for p in runs.iterdir() if not p.name.startswith(".")))
    assert run.config.n_train is None and run.metrics["n_train"] > 1000  # every train digit, not the profile's 512


# --- run files that cannot be read, or were edited -------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("manifest.json", b"\xff\xfe not utf-8", "manifest.json cannot be read"),
    ("manifest.json", b"[]", "manifest.json is corrupt (it holds a JSON list"),
    ("config.json", b'"x"', "config.json is corrupt (it holds a JSON str"),
    ("config.json", None, "config.json is not a valid config (unknown config field(s) colour"),
    ("config.json", "sigma", "does not match its config's hash"),
])
def test_unreadable_or_edited_run_file_is_named(stores, capsys, name, content, fragment):
    results, _ = stores
    run = results / run_hash(tiny())
    if content is None:
        (run / name).write_text(json.dumps({**json.loads((run / name).read_text()), "colour": "red"}))
    elif content == "sigma":
        (run / name).write_text(json.dumps({**json.loads((run / name).read_text()), "sigma": 0.5}))
    else:
        (run / name).write_bytes(content)
    if name != "manifest.json":
        reseal(run)
    line = refused(capsys, ["train", *TINY], fragment, "it is a committed run", keep=results.parent)
    assert f"checkout -- results/{run.name}" in line


def test_damaged_embeddings_with_a_matching_manifest_are_named(stores):
    results, _ = stores
    run = results / run_hash(tiny())
    data = bytearray((run / "embeddings.npz").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    (run / "embeddings.npz").write_bytes(bytes(data))
    reseal(run)
    with pytest.raises(RunError, match=r"embeddings.npz cannot be read .*checkout -- results/"):
        load_run(run).embeddings  # noqa: B018


def test_the_remedy_for_a_corrupt_run_works_where_it_is_printed(stores, capsys, tmp_path):
    """A committed run is restored from git, never recomputed over the book's evidence; a run of another store is
    retrained into that store, named by its absolute path (the command works from any folder)."""
    results, runs = stores
    run = results / run_hash(tiny())
    kept = tmp_path / "kept"
    shutil.copytree(run, kept)  # what `git checkout -- results/<hash>` restores
    (run / "metrics.json").write_text("{}")
    line = refused(capsys, ["train", *TINY], "metrics.json is corrupt", f"checkout -- results/{run.name}")
    assert "--retrain" not in line
    shutil.rmtree(run)
    shutil.copytree(kept, run)
    code, out, err = cli(capsys, "train", *TINY)  # the plain command works again
    assert code == 0 and "loaded finished run" in out, err
    other = tmp_path / "mine"
    execute(tiny(seed=1), other)
    (other / run_hash(tiny(seed=1)) / "metrics.json").write_text("{}")
    line = refused(capsys, ["train", *TINY, "--seed", "1", "--store", str(other)], "metrics.json is corrupt",
                   "--retrain --store")
    store = line.split("--retrain --store ")[1].split(" ")[0]
    assert Path(store).is_absolute() and Path(store) == other.resolve()
    code, _, _ = cli(capsys, "train", *TINY, "--seed", "1", "--retrain", "--store", store)  # the command the line gives
    assert code == 0


def test_a_finished_run_loads_from_a_store_that_cannot_be_written(stores, capsys, monkeypatch):
    results, _ = stores

    def no_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("nine.store.store.exclusive", no_write)
    monkeypatch.setattr(Path, "mkdir", no_write)
    code, out, err = cli(capsys, "train", *TINY, "--store", str(results))
    assert code == 0 and "loaded finished run" in out and "training run" not in out, err


# --- kills and damaged checkpoints ------------------------------------------------------------------------


def _train(cfg, store):
    code = ("import sys, json; from nine.config import make_config; from nine.store import execute;"
            "execute(make_config(**json.loads(sys.argv[1])), sys.argv[2])")
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _kill_after(proc, marker):
    for line in proc.stdout:
        if marker in line:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
    raise AssertionError(f"the process ended before printing {marker!r}")


def test_damaged_checkpoint_after_a_kill_is_set_aside_not_resumed(tmp_path):
    cfg = tiny(epochs=6, checkpoint_every=2)
    reference = _train(cfg, tmp_path / "reference")
    assert reference.wait() == 0
    store = tmp_path / "killed"
    _kill_after(_train(cfg, store), "epoch    5/6")  # the checkpoint of epoch 4 is on disk
    checkpoint = store / f".partial-{run_hash(cfg)}" / "checkpoint.pt"
    data = bytearray(checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 64] = bytes(b ^ 0xFF for b in data[middle: middle + 64])
    checkpoint.write_bytes(bytes(data))
    again = _train(cfg, store)
    out = again.communicate()[0]
    assert again.returncode == 0, out
    assert "checkpoint.pt is damaged" in out and "resuming" not in out
    assert (checkpoint.parent.parent / run_hash(cfg)).is_dir()
    done, ref = load_run(store / run_hash(cfg)), load_run(tmp_path / "reference" / run_hash(cfg))
    assert done.metrics == ref.metrics  # started afresh: the uninterrupted run's numbers, not a corrupted resume
    assert not list(done.path.glob("*damaged*"))  # the damaged copy is kept beside the store, outside the run
    assert [p.name for p in store.glob(".damaged-*")] == [f".damaged-{run_hash(cfg)}-checkpoint.pt.damaged"]


def test_a_checkpoint_of_another_seed_is_never_resumed(tmp_path):
    """A sealed checkpoint of seed 1, planted where seed 0 resumes from, is set aside: seed 0's run is the
    uninterrupted one's, not seed 1's weights continued."""
    cfg, other = tiny(epochs=6, checkpoint_every=2), tiny(epochs=6, checkpoint_every=2, seed=1)
    reference = _train(cfg, tmp_path / "reference")
    assert reference.wait() == 0
    store = tmp_path / "planted"
    _kill_after(_train(other, store), "epoch    5/6")  # seed 1's checkpoint of epoch 4, intact
    partial = store / f".partial-{run_hash(cfg)}"
    partial.mkdir()
    (store / f".partial-{run_hash(other)}" / "checkpoint.pt").rename(partial / "checkpoint.pt")
    again = _train(cfg, store)
    out = again.communicate()[0]
    assert again.returncode == 0, out
    assert "written by another run" in out and "resuming" not in out
    done, ref = load_run(store / run_hash(cfg)), load_run(tmp_path / "reference" / run_hash(cfg))
    assert done.metrics == ref.metrics and done.config.seed == 0


def test_a_kill_before_the_first_checkpoint_leaves_no_stale_log(tmp_path):
    cfg = tiny(epochs=6, checkpoint_every=5)
    store = tmp_path / "s"
    _kill_after(_train(cfg, store), "epoch    3/6")  # three epochs logged, no checkpoint yet
    assert _train(cfg, store).wait() == 0
    assert [r["epoch"] for r in load_run(store / run_hash(cfg)).log] == [1, 2, 3, 4, 5, 6]


# --- the other commands -------------------------------------------------------------------------------------


def test_reproduce_of_a_folder_that_is_not_a_run_says_so_first(capsys, tmp_path):
    line = refused(capsys, ["reproduce", "/etc", "--store", str(tmp_path)], "run='/etc' is not allowed")
    assert "not a run directory" in line
    assert not any(tmp_path.iterdir())


def test_reproduce_into_the_store_of_the_run_it_checks_is_refused(capsys):
    from nine.store import RESULTS_DIR

    run = sorted(p for p in RESULTS_DIR.iterdir() if (p / "config.json").is_file())[0]
    before = sorted(p.name for p in RESULTS_DIR.iterdir())
    line = refused(capsys, ["reproduce", str(run), "--store", str(RESULTS_DIR)], "store=", "is not allowed")
    assert "would replace" in line and sorted(p.name for p in RESULTS_DIR.iterdir()) == before


@pytest.mark.parametrize("content", ["{ not json", "[]", '{"label": "x"}'])
def test_gallery_with_a_malformed_sidecar_says_which_in_one_line(capsys, tmp_path, monkeypatch, content):
    (tmp_path / "book" / "figures").mkdir(parents=True)
    (tmp_path / "book" / "figures" / "broken.json").write_text(content)
    monkeypatch.setattr("nine.book.gallery.ROOT", tmp_path)
    refused(capsys, ["gallery"], "figure sidecar", "broken.json cannot be read", "make results")
    assert not (tmp_path / "book" / "figures.md").exists()


def test_a_damaged_log_is_named_not_a_traceback(stores):
    results, _ = stores
    run = load_run(results / run_hash(tiny()))
    (run.path / "log.jsonl").write_bytes(b"\xff\xfe not json\n")
    with pytest.raises(RunError, match=r"log.jsonl cannot be read"):
        run.log  # noqa: B018


def test_downloads_of_a_half_built_book_say_so_in_one_line(capsys, tmp_path, monkeypatch):
    sources = tmp_path / "_build" / "html" / "_sources" / "notebooks"
    sources.mkdir(parents=True)
    (sources / "01_theory.ipynb").write_text("{}")  # a page the build has not executed
    monkeypatch.setattr("nine.book.gallery.ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_theory.ipynb").write_text((ROOT / "notebooks" / "01_theory.ipynb").read_text())
    refused(capsys, ["downloads"], "01_theory.ipynb has no executed copy", "make book")


def test_downloads_without_a_built_book_is_an_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("nine.book.gallery.ROOT", tmp_path)
    refused(capsys, ["downloads"], "no built book", "make book")


def test_a_failed_rerun_keeps_a_visible_notebook_and_no_tcp_warning(capfd, tmp_path, monkeypatch):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("raise RuntimeError('stops here')")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(notebook, tmp_path / "notebooks" / "demo.ipynb")
    monkeypatch.setattr("nine.book.rerun.ROOT", tmp_path)
    monkeypatch.setattr("nine.book.rerun.RUNS_DIR", tmp_path / "runs")
    notebook.cells.insert(1, nbformat.v4.new_code_cell("print('plan: shown as it runs', x)"))
    nbformat.write(notebook, tmp_path / "notebooks" / "demo.ipynb")
    code = main(["rerun", "demo", "-p", "x", "2"])
    captured = capfd.readouterr()
    err = captured.err
    assert "plan: shown as it runs 2" in captured.out  # the notebook's output reaches the terminal as it runs
    assert code == 1 and "stops here" in err and "without encryption" not in err
    folder = next((tmp_path / "runs").iterdir())
    assert (folder / "demo.failed.ipynb").is_file() and not list(folder.glob(".*.ipynb"))


def test_an_option_without_its_value_is_one_line(capsys):
    refused(capsys, ["train", "--n_test"], "argument --n_test: expected one argument")
    refused(capsys, ["train", "--bogus", "1"], "unrecognized arguments: --bogus 1")


def test_rerun_refuses_a_value_of_the_wrong_type_before_running(capsys):
    refused(capsys, ["rerun", "02_gaussian_matching", "-p", "sigma", "abc"],
            "parameter sigma='abc' is not allowed for 02_gaussian_matching", "of type float")


# --- fuzz: every value either works or is refused in one line ----------------------------------------------

VALUES = st.one_of(
    st.integers(-5, 70).map(str), st.integers(min_value=10**12).map(str), st.floats(allow_nan=True).map(repr),
    st.text(max_size=30), st.lists(st.integers(-3, 12), max_size=4).map(str),
    st.recursive(st.just("[]"), lambda inner: inner.map(lambda s: f"[{s}]"), max_leaves=50),
    st.sampled_from(["None", "True", "1e-300", "1e300", "nan", "inf", "-0.0", "()", "{}", "1+1", "'a'", "9" * 5000]),
)
FUZZED = ("d", "sigma", "eps", "seed", "n_train", "n_test", "batch_size", "lr", "pixel_noise", "prior", "head",
          "critic", "numerics", "held_out", "tau_lr", "continues")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FUZZED), value=VALUES)
def test_fuzzed_train_value_works_or_is_refused_in_one_line(stores, capsys, field, value):
    results, runs = stores
    before = digest(results)
    code, out, err = cli(capsys, "train", *TINY, f"--{field}={value}", "--store", str(runs))
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert digest(results) == before


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["sigma", "d", "seed", "epochs", "profile", "sweep_training", "critic", "bogus"]),
       value=VALUES)
def test_fuzzed_rerun_parameter_is_checked_or_refused_in_one_line(name, value):
    from nine.book.rerun import _check_parameters
    from nine.config import parse_value

    try:
        _check_parameters("02_gaussian_matching", {name: parse_value(value)})
    except ValueError as err:
        assert "\n" not in str(err) and len(str(err)) < 400
    else:
        assert name != "bogus"


def test_the_plan_is_said_before_anything_trains(stores, capsys):
    from nine.experiments.runner import require_trained
    from nine.store import announce

    assert announce([tiny(), tiny(seed=1), tiny(seed=1)], "the page's runs") == 1
    out = capsys.readouterr().out
    assert "plan: 1 of the page's runs (2) are not trained" in out and "min on two cores" in out
    with pytest.raises(ValueError, match="sweep_training=False is not allowed"):
        require_trained([tiny(seed=2)], "cpu", False, "the sweep", 0.7)
    assert require_trained([tiny(seed=2)], "cpu", True, "the sweep", 0.7, also=(tiny(seed=3),)) == 1
    assert "plan: this page trains 2 run(s) (1 of the sweep's 1, 1 of its own)" in capsys.readouterr().out
