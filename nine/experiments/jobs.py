"""Sweeps as jobs of submitit, the launcher of research code on SLURM: one job per missing run (a job
array) into one shared store, on this machine (``local``: real subprocesses) or a SLURM cluster. A job is an
ordinary :func:`nine.store.get_or_train` under the run's lock, so two jobs (or a job and a notebook) asking
for one run never train it twice, and a job that was killed resumes from its checkpoint when submitted again.

    python -m nine sweep gaussian --executor slurm --slurm-partition gpu --gpus-per-job 1 --store /shared/results
    python -m nine sweep gaussian --profile smoke --executor local --store runs --workers 2
    python -m nine sweep gaussian --executor slurm --slurm-partition gpu --dry-run   # the job script, nothing submitted

The multiprocessing pool of :func:`nine.experiments.runner.run_sweep` stays the default (``pool``). One
run over several GPUs is ``torchrun`` (the reproducing page), not a sweep.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Callable

from nine.config import ConfigError, NineError, RunConfig, config_from_dict
from nine.store import find_run, get_or_train

EXECUTORS = ("pool", "local", "slurm")
HOURS_PER_JOB = 4.0  # the wall-time limit a SLURM job asks for (a cpu-profile run needs minutes, a paper run hours)


class JobError(NineError, RuntimeError):
    """A submitted job that failed; its run resumes when the sweep is submitted again."""


def train_job(config: dict, store: str | None, snapshots: tuple[int, ...]) -> str:
    """One job: load or train the run of ``config`` into ``store`` (under its lock); its hash."""
    return get_or_train(config_from_dict(config), store, snapshots=snapshots).hash


def job_folder(store: Path | str | None) -> Path:
    """Where submitit keeps job scripts, pickles and logs: beside the store, in ``.jobs/``."""
    from nine.store.paths import RUNS_DIR

    return Path(store if store is not None else RUNS_DIR) / ".jobs"


def executor_for(kind: str, folder: Path, partition: str | None = None, gpus_per_job: int = 0,
                 hours: float = HOURS_PER_JOB):
    """A submitit executor of ``kind`` ("local" or "slurm") writing into ``folder``."""
    import submitit

    if kind == "slurm" and not partition:
        raise ConfigError("slurm_partition=None is not allowed with --executor slurm: name the partition "
                          "(--slurm-partition P)")
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    executor.update_parameters(timeout_min=int(hours * 60), gpus_per_node=gpus_per_job, name="nine")
    if kind == "slurm":
        executor.update_parameters(slurm_partition=partition, cpus_per_task=1 if not gpus_per_job else 4)
    return executor


def job_script(folder: Path, partition: str, gpus_per_job: int = 0, hours: float = HOURS_PER_JOB,
               count: int = 1) -> str:
    """The sbatch script of a job array of ``count`` runs, as submitit would submit it (nothing is submitted)."""
    from submitit.slurm import slurm

    command = f"{shlex.quote(sys.executable)} -u -m submitit.core._submit {shlex.quote(str(folder))}"
    return slurm._make_sbatch_string(command=command, folder=folder, job_name="nine", partition=partition,
                                     time=int(hours * 60), gpus_per_node=gpus_per_job or None,
                                     cpus_per_task=1 if not gpus_per_job else 4, map_count=count)


def submit_sweep(cfgs: list[RunConfig], store: Path | str | None, kind: str, workers: int = 1,
                 partition: str | None = None, gpus_per_job: int = 0, dry_run: bool = False,
                 snapshots: Callable[[RunConfig], tuple[int, ...]] = lambda cfg: (),
                 progress: Callable[[str], None] = print) -> list[str]:
    """Submit one job per config of ``cfgs`` with no finished run and wait for them; the hashes trained.
    ``local`` runs ``workers`` jobs at a time; ``slurm`` submits one array and lets the scheduler run it.
    A failed job raises after the others have finished (its run resumes when the sweep is submitted again)."""
    if kind not in EXECUTORS[1:]:
        raise ConfigError(f"executor={kind!r} is not allowed here: must be one of {', '.join(EXECUTORS[1:])}")
    from nine.experiments.runner import stores_of

    missing = [cfg for cfg in cfgs if find_run(cfg, stores_of(store)) is None]
    folder = job_folder(store)
    progress(f"sweep: {len(cfgs)} runs, {len(cfgs) - len(missing)} finished, {len(missing)} to submit as "
             f"{kind} jobs (submitit; logs in {folder})")
    if dry_run:
        progress(job_script(folder, partition or "PARTITION", gpus_per_job, count=max(len(missing), 1)))
        return []
    if not missing:
        return []
    store_text = None if store is None else str(store)
    executor = executor_for(kind, folder, partition, gpus_per_job)
    batches = [missing] if kind == "slurm" else [missing[i:i + workers] for i in range(0, len(missing), workers)]
    trained, failures = [], []
    for batch in batches:
        jobs = executor.map_array(train_job, [cfg.to_dict() for cfg in batch], [store_text] * len(batch),
                                  [tuple(snapshots(cfg)) for cfg in batch])
        for job in jobs:
            try:
                trained.append(job.result())
                progress(f"sweep: job {job.job_id} finished run {trained[-1]}")
            except Exception as err:  # noqa: BLE001 (submitit re-raises the job's error with its log)
                failures.append(f"job {job.job_id}: {str(err).strip().splitlines()[-1] if str(err).strip() else err!r}")
    if failures:
        raise JobError(f"{len(failures)} of {len(missing)} jobs failed ({'; '.join(failures)}); their logs are in "
                          f"{folder}; submitting the sweep again resumes them")
    return trained
