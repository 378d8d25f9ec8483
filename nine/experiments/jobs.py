"""Sweeps as jobs of submitit, the launcher of research code on SLURM: one job per missing run (a job
array) into one shared store, on this machine (``local``: real subprocesses) or a SLURM cluster. A job is an
ordinary :func:`nine.store.get_or_train` under the run's lock, so two jobs (or a job and a notebook) asking
for one run never train it twice, and a job that was killed resumes from its checkpoint when submitted again. A
local job ends with the sweep that submitted it, however the sweep ends; a SLURM job is the scheduler's to end.

    python -m nine sweep gaussian --executor slurm --slurm-partition gpu --gpus-per-job 1 --store /shared/results
    python -m nine sweep gaussian --profile smoke --executor local --store runs --workers 2
    python -m nine sweep gaussian --executor slurm --slurm-partition gpu --dry-run   # the job script, nothing submitted

The multiprocessing pool of :func:`nine.experiments.runner.run_sweep` stays the default (``pool``). One
run over several GPUs is ``torchrun`` (the reproducing page), not a sweep.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Callable

from nine.config import ConfigError, NineError, RunConfig, config_from_dict, first_line
from nine.store import find_run, get_or_train

EXECUTORS = ("pool", "local", "slurm")
HOURS_PER_JOB = 4.0  # the wall-time limit a SLURM job asks for (a cpu-profile run needs minutes, a paper run hours)
MAX_GPUS_PER_JOB = 64  # more than any node has: a larger number is a typo
PARTITION = re.compile(r"[A-Za-z0-9_,.-]+")  # a SLURM partition name, or several separated by commas


class JobError(NineError, RuntimeError):
    """A submitted job that failed; its run resumes when the sweep is submitted again."""


def check_job_options(kind: str, partition: str | None = None, gpus_per_job: int = 0, dry_run: bool = False) -> None:
    """Refuse, in one line, options the jobs of ``kind`` ("local" or "slurm") cannot use, before anything is
    written or submitted: a GPU count that is not an integer in [0, :data:`MAX_GPUS_PER_JOB`] (with ``local``,
    more GPUs than this machine has), a partition that is not a SLURM name (:data:`PARTITION`: it is written
    into the job script), the options of ``slurm`` with ``local``, and ``slurm`` without a partition or on a
    machine without SLURM (no ``sbatch`` or ``srun``; ``dry_run`` needs neither)."""
    if kind not in EXECUTORS[1:]:
        raise ConfigError(f"executor={kind!r} is not allowed here: must be one of {', '.join(EXECUTORS[1:])}")
    if isinstance(gpus_per_job, bool) or not isinstance(gpus_per_job, int) or not 0 <= gpus_per_job <= MAX_GPUS_PER_JOB:
        raise ConfigError(f"gpus_per_job={gpus_per_job!r} is not allowed: must be an integer from 0 to "
                          f"{MAX_GPUS_PER_JOB}")
    if partition is not None and not (isinstance(partition, str) and PARTITION.fullmatch(partition)):
        raise ConfigError(f"slurm_partition={partition!r} is not allowed: must be a SLURM partition name (letters, "
                          "digits, '_', '.', '-'; several separated by ',')")
    if kind == "local":
        if partition is not None or dry_run:
            raise ConfigError("--slurm-partition and --dry-run are not allowed with --executor local: they are "
                              "options of --executor slurm (a local job runs here, with no job script)")
        import torch

        if gpus_per_job > torch.cuda.device_count():
            raise ConfigError(f"gpus_per_job={gpus_per_job} is not allowed with --executor local: this machine has "
                              f"{torch.cuda.device_count()} GPU(s)")
    if kind == "slurm" and not dry_run:
        if not partition:
            raise ConfigError("slurm_partition=None is not allowed with --executor slurm: name the partition "
                              "(--slurm-partition P)")
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise ConfigError(f"executor='slurm' is not allowed on this machine: it has no SLURM ({' and '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} not on PATH); use --executor local or pool here, "
                              "or --dry-run to print the job script")


def train_job(config: dict, store: str | None, snapshots: tuple[int, ...], sweep: int | None = None) -> str:
    """One job: load or train the run of ``config`` into ``store`` (under its lock); its hash. ``sweep``: the
    process id of the sweep that submitted a local job, which the job does not outlive
    (:func:`nine.experiments.runner.die_with`)."""
    if sweep is not None:
        from nine.experiments.runner import die_with

        die_with(sweep)
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
    check_job_options(kind, partition, gpus_per_job, dry_run)
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
    sweep = os.getpid() if kind == "local" else None  # a local job ends with the sweep; a SLURM job outlives it
    executor = executor_for(kind, folder, partition, gpus_per_job)
    batches = [missing] if kind == "slurm" else [missing[i:i + workers] for i in range(0, len(missing), workers)]
    trained, failures = [], []
    for batch in batches:
        try:
            jobs = executor.map_array(train_job, [cfg.to_dict() for cfg in batch], [store_text] * len(batch),
                                      [tuple(snapshots(cfg)) for cfg in batch], [sweep] * len(batch))
        except (OSError, RuntimeError) as err:  # sbatch refused the array (submitit: FailedJobError)
            raise JobError(f"submitting {len(batch)} {kind} job(s) failed ({first_line(err)}); runs finished "
                           f"so far are kept, and submitting the sweep again resumes the rest (logs in {folder})") from err
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
