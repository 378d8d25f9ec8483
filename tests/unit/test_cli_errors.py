"""Every error a user can cause reaches the terminal as one line and a non-zero exit, through
``python -m nine`` itself (a fresh process, as a user runs it), never as a traceback."""

import json
import subprocess
import sys
from pathlib import Path

from nine.config import make_config
from nine.store import execute

ROOT = Path(__file__).resolve().parents[2]


def nine(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nine", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def one_line_error(done: subprocess.CompletedProcess, start: str, *fragments: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(start) and all(f in lines[0] for f in fragments), lines[0]


def test_bad_config_value():
    one_line_error(nine("train", "--profile", "smoke", "--sigma", "-1"), "ConfigError: sigma=-1 is not allowed",
                   "must lie in [0.001, 1000]")
    one_line_error(nine("train", "--profile", "smoke", "--prior", "cauchy"), "ConfigError: prior='cauchy'",
                   "gaussian, uniform")


def test_missing_data_folder():
    one_line_error(nine("train", "--dataset", "mnist", "--data_dir", "/nonexistent"),
                   "DataError: data_dir='/nonexistent' does not exist")


def test_unknown_prior_of_a_sweep():
    one_line_error(nine("sweep", "cauchy", "--profile", "smoke"), "ConfigError: prior='cauchy' is not allowed")


def test_corrupt_run_on_reproduce(tmp_path):
    cfg = make_config("smoke", dataset="digits", n_train=64, n_test=32, batch_size=32, epochs=1, d=2)
    path = execute(cfg, tmp_path / "store")
    metrics = json.loads((path / "metrics.json").read_text())
    (path / "metrics.json").write_text(json.dumps({**metrics, "ks_mean": 0.0}))
    before = (path / "metrics.json").read_bytes()
    done = nine("reproduce", str(path), "--store", str(tmp_path / "again"))
    one_line_error(done, "RunError: ", "metrics.json is corrupt", "retrain it")
    assert (path / "metrics.json").read_bytes() == before  # nothing saved is touched


def test_damaged_checkpoint_is_set_aside_not_resumed(tmp_path):
    cfg = make_config("smoke", dataset="digits", n_train=64, n_test=32, batch_size=32, epochs=1, d=2)
    from nine.store import run_hash

    partial = tmp_path / f".partial-{run_hash(cfg)}"
    partial.mkdir(parents=True)
    (partial / "checkpoint.pt").write_bytes(b"not a checkpoint")
    done = nine("train", "--profile", "smoke", "--dataset", "digits", "--n_train", "64", "--n_test", "32",
                "--batch_size", "32", "--epochs", "1", "--d", "2", "--store", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "checkpoint.pt is damaged" in done.stdout and "the run starts again from epoch 1" in done.stdout
    assert (tmp_path / run_hash(cfg)).is_dir() and not partial.exists()


def test_a_generator_mismatch_reaches_the_terminal_as_one_line(monkeypatch, capsys):
    """The real error of conditions that do not fit a generator, raised inside a command, is printed by
    ``main`` as one line with exit status 2 (it is a user error, not a bug)."""
    import torch

    import nine.cli
    from nine.experiments.generative import GenConfig, check_conditions

    def command(argv):
        check_conditions(GenConfig("cgan", "abc", "gaussian", 4), torch.zeros(3, 2))

    monkeypatch.setattr(nine.cli, "_main", command)
    assert nine.cli.main([]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("GeneratorMismatch: conditions of shape (3, 2) are not allowed")