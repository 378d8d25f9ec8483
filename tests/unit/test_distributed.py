"""Several processes (gloo, CPU) against one: same loss, same gradients, same artifacts, resumable."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nine.config import make_config
from nine.store import load_run, run_hash

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_two_processes_equal_one_on_the_global_batch(tmp_path):
    sys.path.insert(0, str(HERE))
    import dist_worker

    out = tmp_path / "step"
    done = subprocess.run([*TORCHRUN, str(HERE / "dist_worker.py"), str(out)], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    x, noise = dist_worker.fixed_batch()
    single = dist_worker.one_step(x, noise, make_config("smoke", **dist_worker.CFG))
    for rank in (0, 1):
        multi = torch.load(f"{out}.{rank}.pt", weights_only=True)
        torch.testing.assert_close(multi["loss"], single["loss"], rtol=0, atol=1e-6)
        assert multi["grads"].keys() == single["grads"].keys()
        for name, grad in single["grads"].items():
            torch.testing.assert_close(multi["grads"][name], grad, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(multi["running_var"], single["running_var"], rtol=0, atol=1e-9)
    assert single["loss"].item() > 0 and any(g.abs().sum() > 0 for g in single["grads"].values())


def _train_cli(store, extra=()):
    args = ["-m", "nine", "train", "--profile", "smoke", "--store", str(store), *extra]
    return [*TORCHRUN, *args]


def test_two_process_run_has_the_single_process_layout(tmp_path):
    cmd = _train_cli(tmp_path / "multi")
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("epoch    1/2") == 1  # progress from rank 0 only
    single = subprocess.run([sys.executable, "-m", "nine", "train", "--profile", "smoke", "--store", str(tmp_path / "one")],
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    key = run_hash(make_config("smoke"))
    multi_run, one_run = load_run(tmp_path / "multi" / key), load_run(tmp_path / "one" / key)
    assert sorted(p.name for p in multi_run.path.iterdir()) == sorted(p.name for p in one_run.path.iterdir())
    assert multi_run.metrics.keys() == one_run.metrics.keys()
    assert multi_run.embeddings["z_test"].shape == one_run.embeddings["z_test"].shape


def test_distributed_run_resumes_from_its_checkpoint(tmp_path):
    store = tmp_path / "s"
    extra = ["--dataset", "digits", "--n_train", "256", "--n_test", "64", "--batch_size", "32", "--epochs", "8",
             "--checkpoint_every", "2"]
    proc = subprocess.Popen(_train_cli(store, extra), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    for line in proc.stdout:
        if "epoch    3/8" in line:
            break
    else:
        pytest.fail("the distributed run ended before epoch 3")
    # SIGKILL the launcher and both workers (each worker runs in a session of its own)
    subprocess.run(["pkill", "-KILL", "-f", str(store)], check=True)
    proc.wait()
    time.sleep(1)
    cfg = make_config("smoke", dataset="digits", n_train=256, n_test=64, batch_size=32, epochs=8, checkpoint_every=2)
    partial = store / f".partial-{run_hash(cfg)}"
    assert (partial / "checkpoint.pt").is_file()
    checkpoint = torch.load(partial / "checkpoint.pt", weights_only=True)
    assert len(checkpoint["ranks"]) == 2 and checkpoint["epoch"] >= 2
    done = subprocess.run(_train_cli(store, extra), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"resuming from the checkpoint after epoch {checkpoint['epoch']}/8" in done.stdout
    run = load_run(store / run_hash(cfg))
    assert [r["epoch"] for r in run.log] == list(range(1, 9))
    assert not partial.exists()
