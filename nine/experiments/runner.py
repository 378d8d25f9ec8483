"""Training many runs: every config that has no finished run, ``workers`` processes of one thread each.

On two CPU cores two one-thread runs train ≈1.4× as many samples per second as one two-thread run
(``benchmarks/processes.py``). Every run is an ordinary run of :mod:`nine.store`, so a sweep trains only
what is missing and resumes what was cut off; a run that fails stops the sweep and its pool, and a sweep that
is killed, even by SIGKILL, takes its workers with it (:func:`die_with`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from nine.config import ConfigError, RunConfig
from nine.store import RESULTS_DIR, RUNS_DIR, find_run, get_or_train, load_run, resolve_numerics, run_hash
from nine.store.paths import check_store


def _train_one(args: tuple[RunConfig, str | None, int, tuple[int, ...]]) -> tuple[str, float]:
    import torch

    cfg, store, threads, snapshots = args
    torch.set_num_threads(threads)
    started = time.perf_counter()
    run = get_or_train(cfg, store, snapshots=snapshots)
    return run.hash, time.perf_counter() - started


def run_sweep(
    cfgs: list[RunConfig], store: Path | str | None = None, workers: int = 1,
    snapshots: tuple[int, ...] | Callable[[RunConfig], tuple[int, ...]] = (), executor: str = "pool", **jobs,
) -> list[Path]:
    """Train every config that has no finished run, ``workers`` at a time; return the run directories.

    ``snapshots``: epochs (or a function of the config giving them) at which a run also saves the run
    of its config with that many epochs (:func:`nine.store.store.execute`); those are not returned.
    ``executor``: "pool" (a process pool here), or "local" / "slurm" (one submitit job per run,
    :func:`nine.experiments.jobs.submit_sweep`, with ``jobs``: partition, gpus_per_job, dry_run)."""
    epochs_of = snapshots if callable(snapshots) else (lambda cfg: tuple(snapshots))
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers={workers!r} is not allowed: must be an integer >= 1")
    check_store(store)
    places = stores_of(store)
    cfgs, why = resolve_numerics(cfgs, places)  # "auto": one numerics for the whole sweep
    if why:
        print(why, flush=True)
    if executor != "pool":
        from nine.experiments.jobs import submit_sweep

        submit_sweep(cfgs, store, executor, workers, snapshots=epochs_of, **jobs)
        if jobs.get("dry_run"):
            return []
    missing = [cfg for cfg in cfgs if find_run(cfg, places) is None]
    usable = max(1, min(workers, len(missing), os.cpu_count() or 1))
    if missing and usable < workers:
        print(f"sweep: workers={workers} capped at {usable} (the runs to train and this machine's "
              f"{os.cpu_count()} cores)", flush=True)
        workers = usable
    plan = f"{len(missing)} to train with {workers} worker{'' if workers == 1 else 's'}" if missing else "none to train"
    print(f"sweep: {len(cfgs)} runs, {len(cfgs) - len(missing)} finished, {plan}", flush=True)
    if missing:
        started = time.perf_counter()
        threads = 1 if workers > 1 else 0
        jobs = [(cfg, None if store is None else str(store), threads or _default_threads(), tuple(epochs_of(cfg)))
                for cfg in missing]
        pool = (multiprocessing.get_context("spawn").Pool(workers, initializer=die_with, initargs=(os.getpid(),))
                if workers > 1 else None)
        previous = signal.signal(signal.SIGTERM, _terminated) if pool is not None and _main_thread() else None
        try:
            results = map(_train_one, jobs) if pool is None else pool.imap_unordered(_train_one, jobs)
            for done, (key, seconds) in enumerate(results, 1):
                elapsed = time.perf_counter() - started
                eta = elapsed / done * (len(missing) - done)
                print(f"sweep: [{done}/{len(missing)}] run {key} finished in {seconds / 60:.1f} min; "
                      f"sweep ETA {eta / 60:.0f} min", flush=True)
        except BaseException:
            if pool is not None:  # a failed run, or `kill`, stops the sweep: no worker is left behind
                pool.terminate()
                pool.join()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if pool is not None:
            pool.close()
            pool.join()
    paths = []
    for cfg in cfgs:
        found = find_run(cfg, places)
        if found is None:  # pragma: no cover - get_or_train raised above
            raise RuntimeError(f"run {run_hash(cfg)} is missing after the sweep")
        load_run(found)  # verifies its manifest
        paths.append(found)
    return paths


def stores_of(store: Path | str | None) -> tuple[Path, ...]:
    """Where a sweep's runs may be: the committed runs, the runs folder, and its own ``store``."""
    return tuple(dict.fromkeys((RESULTS_DIR, RUNS_DIR, *(() if store is None else (Path(store),)))))


def _terminated(signum: int, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds run_sweep, which terminates its pool (workers would outlive a bare kill)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): the signal a process gets when its parent ends


def die_with(sweep: int) -> None:
    """End this process (SIGKILL) when the process ``sweep`` that started it ends, however it ends (a SIGKILL
    leaves it no time to stop its workers), so that no run goes on training unwatched; the run resumes from its
    checkpoint when the sweep is started again. On Linux the kernel signals the process when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``, for a pool's worker); where ``sweep`` is further up (a local submitit job,
    started by submitit's controller) a daemon thread also checks every second that ``sweep`` is still among
    its ancestors. Elsewhere only the last check applies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if not _descends_from(sweep):  # the sweep ended before the kernel was asked to tell us
        os.kill(os.getpid(), signal.SIGKILL)
    if os.getppid() != sweep:
        threading.Thread(target=_watch, args=(sweep,), daemon=True, name="die-with-sweep").start()


def _watch(sweep: int) -> None:
    while _descends_from(sweep):
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)


def _descends_from(ancestor: int) -> bool:
    """Whether process ``ancestor`` is this process's parent, grandparent, ... (read from /proc; where there is
    no /proc, whether a process ``ancestor`` exists). An ended process's children pass to another parent at
    once, so this is False as soon as it has ended, even before it is reaped."""
    pid = os.getppid()
    if not os.path.isdir("/proc"):
        try:
            os.kill(ancestor, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    seen = set()
    while pid > 1 and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rpartition(")")[2].split()[1])  # the field after the state: its parent
        except (OSError, ValueError, IndexError):
            return False
    return pid == ancestor


def require_trained(cfgs: list[RunConfig], profile: str, training_allowed: bool, what: str,
                    minutes_each: float, also: tuple[RunConfig, ...] = ()) -> int:
    """How many of ``cfgs`` have no finished run, said before anything is trained. When some are
    missing, the profile is not ``smoke`` and training was not asked for (a notebook's
    ``sweep_training``), raise one :class:`ConfigError` line saying how many and about how long training
    them takes, instead of starting to train. ``also``: the page's other runs, trained whenever missing
    (counted in the plan it prints). Configs with ``numerics="auto"`` count as they will be resolved."""
    cfgs, also = resolve_numerics(list(cfgs))[0], tuple(resolve_numerics(list(also))[0])
    missing = sum(find_run(cfg) is None for cfg in cfgs)
    if missing and profile != "smoke" and not training_allowed:
        raise ConfigError(f"sweep_training=False is not allowed with these parameters: {missing} of {what}'s "
                          f"{len(cfgs)} runs are not trained (about {missing * minutes_each:.0f} min on two cores); "
                          "rerun with -p sweep_training True to train them")
    others = sum(find_run(cfg) is None for cfg in also)
    if missing or others:
        print(f"plan: this page trains {missing + others} run(s) ({missing} of {what}'s {len(cfgs)}, "
              f"{others} of its own), about {(missing + others) * minutes_each:.0f} min on two cores", flush=True)
    return missing


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()
