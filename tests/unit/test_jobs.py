"""Sweeps as submitit jobs: real subprocesses of the local executor, a job killed mid-way and submitted again,
the SLURM script of a dry run, and the command line's refusals."""

import json
import time

import pytest

from nine.cli import main
from nine.experiments.jobs import job_folder, job_script, submit_sweep, train_job
from nine.store import load_run, run_hash

HOLD_AT = 3  # the epoch after which the first job stops making progress until it is killed


def _train_then_hold(config: dict, store: str) -> str:
    """A job like :func:`train_job` whose training stops after epoch HOLD_AT (its checkpoint written) and
    waits there to be killed: the cancel lands mid-run on a machine of any speed."""
    import nine.store.store as store_module

    train = store_module.train

    def holding(*args, on_epoch=None, **kwargs):
        def hook(epoch, result):
            if on_epoch is not None:
                on_epoch(epoch, result)
            while epoch >= HOLD_AT:
                time.sleep(0.5)

        return train(*args, on_epoch=hook, **kwargs)

    store_module.train = holding
    return train_job(config, store, ())


def test_a_killed_job_resumes_when_the_sweep_is_submitted_again(tmp_path, tiny_cfg):
    import sys

    import cloudpickle
    import submitit

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job process cannot import this test module
    cfg = tiny_cfg.replace(epochs=8, checkpoint_every=1)
    store = tmp_path / "store"
    partial = store / f".partial-{run_hash(cfg)}"
    executor = submitit.AutoExecutor(folder=job_folder(store), cluster="local")
    job = executor.submit(_train_then_hold, cfg.to_dict(), str(store))
    deadline = time.time() + 120

    def epochs_logged() -> int:
        return sum(1 for _ in (partial / "log.jsonl").open()) if (partial / "log.jsonl").is_file() else 0

    while epochs_logged() < HOLD_AT and time.time() < deadline:
        time.sleep(0.2)
    assert (partial / "checkpoint.pt").is_file(), "the job never checkpointed"
    job.cancel()  # the job's process is killed mid-run
    while job.state not in ("CANCELLED", "FAILED", "DONE", "INTERRUPTED", "FINISHED", "UNKNOWN") and time.time() < deadline:
        time.sleep(0.2)
    assert not (store / run_hash(cfg)).exists(), "the held job finished"
    assert partial.is_dir(), "the killed job's partial run was removed"
    assert epochs_logged() == HOLD_AT

    assert submit_sweep([cfg], store, "local", progress=lambda line: None) == [run_hash(cfg)]
    resumed = load_run(store / run_hash(cfg))
    assert [row["epoch"] for row in resumed.log] == list(range(1, cfg.epochs + 1))
    # a resumed run ends with the numbers of an uninterrupted one, trained by a job too (the same kind of
    # process, hence the same number of threads: CPU kernels round differently with another)
    submit_sweep([cfg], tmp_path / "alone", "local", progress=lambda line: None)
    assert resumed.metrics == load_run(tmp_path / "alone" / run_hash(cfg)).metrics
    assert submit_sweep([cfg], store, "local", progress=lambda line: None) == []  # nothing left to submit


def test_a_dry_run_prints_the_job_array_and_submits_nothing(tmp_path, tiny_cfg, capsys):
    cfgs = [tiny_cfg.replace(seed=s) for s in range(3)]
    assert submit_sweep(cfgs, tmp_path, "slurm", partition="gpu", dry_run=True) == []
    out = capsys.readouterr().out
    assert "#SBATCH --partition=gpu" in out and "#SBATCH --array=0-2" in out and "submitit.core._submit" in out
    assert not any(tmp_path.glob("*/config.json"))
    script = job_script(tmp_path, "cpu-queue", gpus_per_job=1, count=5)
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --array=0-4" in script


def test_the_command_line_refuses_job_options_it_cannot_use(capsys):
    assert main(["sweep", "gaussian", "--profile", "smoke", "--dry-run"]) == 2
    assert "not allowed with --executor pool" in capsys.readouterr().err
    assert main(["sweep", "gaussian", "--profile", "smoke", "--executor", "cloud"]) == 2
    assert "invalid choice: 'cloud'" in capsys.readouterr().err
    assert main(["budget", "--profile", "smoke", "--executor", "slurm", "--gpus-per-job", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gpus_per_job=-1 is not allowed" in err


def test_a_sweep_without_a_partition_is_refused_before_anything_is_submitted(tmp_path, tiny_cfg):
    from nine.config import ConfigError

    with pytest.raises(ConfigError, match="slurm_partition=None is not allowed"):
        submit_sweep([tiny_cfg], tmp_path, "slurm", progress=lambda line: None)
    assert not (tmp_path / ".jobs").exists() or not any((tmp_path / ".jobs").rglob("*.pkl"))
    assert json.loads(json.dumps(tiny_cfg.to_dict()))  # a job's argument is the config as plain data


@pytest.mark.parametrize(("options", "fragments"), [
    (["--executor", "slurm", "--slurm-partition", "gpu", "--gpus-per-job", "65"],
     ("gpus_per_job=65 is not allowed", "an integer from 0 to 64")),
    (["--executor", "slurm", "--slurm-partition", "gpu\n#SBATCH --mem=1T"],
     ("slurm_partition='gpu\\n#SBATCH --mem=1T' is not allowed", "a SLURM partition name")),
    (["--executor", "slurm", "--slurm-partition", "gpu;rm -rf ~", "--dry-run"], ("slurm_partition='gpu;rm -rf ~'",)),
    (["--executor", "slurm", "--slurm-partition", "", "--dry-run"], ("slurm_partition='' is not allowed",)),
    (["--executor", "local", "--slurm-partition", "gpu"],
     ("--slurm-partition and --dry-run are not allowed with --executor local",)),
    (["--executor", "local", "--dry-run"], ("are not allowed with --executor local", "options of --executor slurm")),
    (["--executor", "slurm", "--slurm-partition", "gpu"], ("executor='slurm' is not allowed on this machine",
                                                          "sbatch and srun are not on PATH")),
])
def test_job_options_that_cannot_work_are_refused_in_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys,
                                                                                         options, fragments):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here, whatever the machine has
    store = tmp_path / "store"
    for command in (["sweep", "gaussian"], ["budget"]):
        assert main([*command, "--profile", "smoke", "--store", str(store), *options]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("ConfigError: "), err
        assert all(f in err for f in fragments), err
    assert not store.exists()


def test_more_gpus_than_this_machine_has_are_refused_with_the_local_executor(tmp_path, capsys):
    import torch

    have = torch.cuda.device_count()
    assert main(["sweep", "gaussian", "--profile", "smoke", "--store", str(tmp_path / "store"), "--executor", "local",
                 "--gpus-per-job", str(have + 1)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"gpus_per_job={have + 1} is not allowed with --executor local" in err
    assert f"this machine has {have} GPU(s)" in err and not (tmp_path / "store").exists()


def test_a_partition_list_is_accepted(tmp_path, tiny_cfg, capsys):
    assert submit_sweep([tiny_cfg], tmp_path, "slurm", partition="gpu,debug.q-1", dry_run=True) == []
    assert "#SBATCH --partition=gpu,debug.q-1" in capsys.readouterr().out


def test_a_failed_submission_is_one_job_error(tmp_path, tiny_cfg, monkeypatch):
    """sbatch exists but refuses the array (an unknown partition): one JobError line, not submitit's traceback."""
    from nine.experiments.jobs import JobError

    sbatch, srun = tmp_path / "bin" / "sbatch", tmp_path / "bin" / "srun"
    sbatch.parent.mkdir()
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    srun.write_text("#!/bin/sh\nexit 0\n")
    sbatch.chmod(0o755)
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{sbatch.parent}:/usr/bin:/bin")
    with pytest.raises(JobError, match=r"submitting 1 slurm job\(s\) failed \(.*\); runs finished so far are kept"):
        submit_sweep([tiny_cfg], tmp_path / "store", "slurm", partition="nope", progress=lambda line: None)
