"""Training runs into a store: every run is keyed by a hash of its config and the run format
(:mod:`nine.store.runs`, which also reads runs back).

A run is built in a hidden ``.partial-<hash>`` directory, under a lock that a second process
waits on, with a checkpoint every few epochs; it is renamed into place only when complete, so a
partial run is never mistaken for a finished one, and a run killed at any point resumes from its
last checkpoint. Committed runs live in ``results/``;
new runs go to ``runs/`` (git-ignored; ``NINE_RUNS_DIR`` overrides) unless told otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from nine.config import RETIRED_NUMERICS, ConfigError, RunConfig, first_line
from nine.core import distributed
from nine.core.models import pick_device
from nine.core.objectives import make_objective
from nine.core.train import Start, TrainResult, train
from nine.data import IMAGE_SHAPES, Split, check_images, load_split
from nine.eval.report import evaluate_run
from nine.store import paths
from nine.store.memory import keep_freed_memory
from nine.store.paths import shown
from nine.store.provenance import code_summary, provenance
from nine.store.runs import (
    FILES,
    UNHASHED,
    Run,
    RunError,
    find_run,
    find_run_by_hash,
    load_run,
    read_json_object,
    read_weights,
    resolve_numerics,
    run_hash,
    sha256,
    without_unused_norm,
    write_json,
)


@contextmanager
def exclusive(store: Path, key: str) -> Iterator[None]:
    """Hold an exclusive lock on run ``key`` in ``store``; wait while another process holds it.

    The operating system releases the lock when its holder dies, even by SIGKILL.
    """
    (store / ".locks").mkdir(exist_ok=True)
    with open(store / ".locks" / f"{key}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is training run {key} ...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_run(cfg: RunConfig, result: TrainResult, split: Split, directory: Path, started: float) -> None:
    """Evaluate a trained ``result`` of ``cfg`` and write every file of a finished run into ``directory``."""
    metrics, embeddings = evaluate_run(cfg, result, split)
    stored = {k: v.astype(np.float32) if k.startswith("z") else v for k, v in embeddings.items()}
    np.savez_compressed(directory / "embeddings.npz", **stored)
    try:
        torch.save({"encoder": result.encoder.state_dict(), "critic": result.networks.state_dict()}, directory / "model.pt")
    except RuntimeError as err:  # torch reports a failed write (a full disk) as RuntimeError, not OSError
        raise OSError(f"model.pt could not be written: {first_line(err)}") from err
    write_json(directory / "metrics.json", metrics)
    record = provenance(pick_device(cfg.device), started, time.time())
    record["train_samples_per_s"] = float(np.median([r["samples_per_s"] for r in result.history]))
    write_json(directory / "provenance.json", record)
    write_json(directory / "manifest.json", {name: sha256(directory / name) for name in FILES if name != "manifest.json"})


def _snapshotter(cfg: RunConfig, store: Path, split: Split, epochs: tuple[int, ...], started: float):
    """The ``on_epoch`` hook that saves, at each of ``epochs``, the finished run of ``cfg`` with that
    many epochs: the same run as one trained for that long from the start (the learning rate is
    constant, and the random states are restored after the evaluation), so it keeps its own hash.
    A snapshot already in a store is compared with the trained weights instead of being written."""

    def on_epoch(epoch: int, result: TrainResult) -> None:
        if epoch not in epochs or epoch == cfg.epochs:
            return
        short = cfg.replace(epochs=epoch)
        states = torch.get_rng_state(), np.random.get_state()
        found = find_run(short)
        if found is not None:
            stored = read_weights(found / "model.pt")["encoder"]
            now = result.encoder.state_dict()
            same = all(torch.equal(stored[k], now[k].cpu()) for k in stored if k in now)
            _say(f"snapshot after epoch {epoch}: run {found.name} exists; its encoder is "
                 f"{'bit-identical' if same else 'NOT bit-identical'} to this run's after {epoch} epochs")
        else:
            key = run_hash(short)
            with exclusive(store, key):
                if (store / key).is_dir():  # finished meanwhile by another process (a sweep training that very run)
                    _say(f"snapshot after epoch {epoch}: run {key} was finished meanwhile by another process; kept")
                else:
                    partial = store / f".partial-{key}"
                    shutil.rmtree(partial, ignore_errors=True)
                    partial.mkdir()
                    try:
                        write_json(partial / "config.json", short.to_dict())
                        (partial / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in result.history))
                        _write_run(short, TrainResult(result.objective, result.encoder, result.networks,
                                                      list(result.history)), split, partial, started)
                    except BaseException:
                        shutil.rmtree(partial, ignore_errors=True)  # nothing half-written is left beside the runs
                        raise
                    os.rename(partial, store / key)
                    _say(f"snapshot after epoch {epoch}: saved run {key}")
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        result.encoder.train()
        result.networks.train()

    return on_epoch


CONTINUABLE = (*UNHASHED, "epochs", "continues", "numerics")  # what a continued run may change


def continued_from(cfg: RunConfig, stores: tuple[Path, ...] | None = None) -> Start | None:
    """The start of a run that continues another (``cfg.continues``): that run's weights and log, found in the
    first of ``stores`` that has it (default ``results/``, then the runs folder). :class:`RunError` when it is
    missing or is not a shorter run of the same config."""
    if cfg.continues is None:
        return None
    stores = tuple(dict.fromkeys(Path(s) for s in stores or (paths.RESULTS_DIR, paths.RUNS_DIR)))
    found = find_run_by_hash(cfg.continues, stores)
    if found is None:
        raise RunError(f"continues={cfg.continues!r}: no finished run with that hash in "
                       f"{', '.join(shown(s) for s in stores)}")
    parent = load_run(found)
    mine = {k: v for k, v in cfg.to_dict().items() if k not in CONTINUABLE}
    theirs = {k: v for k, v in parent.config.to_dict().items() if k not in CONTINUABLE}
    if mine != theirs or parent.config.epochs >= cfg.epochs:
        differ = sorted(k for k in mine if mine[k] != theirs.get(k)) or ["epochs"]
        raise RunError(f"continues={cfg.continues!r}: that run is not a shorter run of this config "
                       f"(it differs in {', '.join(differ)})")
    state = read_weights(found / "model.pt")
    encoder, _ = make_objective(cfg).build()
    return Start(parent.config.epochs, without_unused_norm(state["encoder"], encoder), state["critic"], parent.log)


def _train_and_save(cfg: RunConfig, store: Path, partial: Path, started: float, split: Split, start: Start | None,
                    snapshots: tuple[int, ...] = ()) -> None:
    """Train (or resume) in ``partial`` on ``split`` from ``start`` (:func:`continued_from`) and write every file
    of a finished run there (and, on rank 0, the runs of ``cfg`` with each of ``snapshots`` epochs into ``store``
    on the way)."""
    main = distributed.is_main()
    log_path = partial / "log.jsonl" if main else None
    hook = _snapshotter(cfg, store, split, tuple(snapshots), started) if snapshots and main else None
    result = train(cfg, split, log_path=log_path, checkpoint_path=partial / "checkpoint.pt", on_epoch=hook,
                   start=start)
    if not main:
        return
    _write_run(cfg, result, split, partial, started)
    (partial / "checkpoint.pt").unlink()
    for aside in partial.glob("checkpoint.pt.damaged*"):  # kept for inspection beside the store, not in the run
        os.replace(aside, store / f".damaged-{partial.name.removeprefix('.partial-')}-{aside.name}")


def execute(
    cfg: RunConfig, store: Path, resume: bool = True, replace: bool = False, snapshots: tuple[int, ...] = (),
    training_line: str = "", parents: tuple[Path, ...] | None = None,
) -> Path:
    """Train, evaluate and save a run of ``cfg`` into ``store``; return its finished directory.

    The run is built in ``store/.partial-<hash>`` under a lock, checkpointed as it trains, and
    renamed into place only when complete. A partial run left by a crash is resumed
    (``resume=False`` starts afresh). A finished run is returned as it is, unless ``replace``:
    then it is swapped for the new one only once the new one is complete. ``snapshots``: epochs at
    which the run of the same config with that many epochs is saved too (see :func:`_snapshotter`).
    ``training_line``: a line said once this process is to train the run (not when it finds the run finished,
    nor when the process it waited for finished it). ``parents``: where the run a continuation continues
    (``cfg.continues``) is looked for, in order (default ``store``, ``results/``, the runs folder). A value the
    data refuses, and a run to continue that is in none of them, are refused before the store is created or
    locked. Raises :class:`RunError` when the store cannot be written; earlier runs are
    never touched. Under several processes every one trains; only rank 0 locks, writes and evaluates.
    """
    paths.check_store(store)
    store = Path(store)
    places = tuple(dict.fromkeys((store, paths.RESULTS_DIR, paths.RUNS_DIR)))
    cfg = resolve_numerics([cfg], places)[0][0]
    key = run_hash(cfg)
    final, partial = store / key, store / f".partial-{key}"
    if cfg.numerics in RETIRED_NUMERICS and (replace or not final.is_dir()):
        raise ConfigError(f"numerics={cfg.numerics!r} is not allowed for a new run: it is retired (its committed "
                          "runs load and compute as channels_last); use 'channels_last', 'bf16' or 'auto'")
    if final.is_dir() and not replace and distributed.world_size() == 1:
        return final  # finished: reading it needs no lock, nor write access to the store
    keep_freed_memory()
    split = load_split(cfg)
    check_images(split.x_test, "x_test", IMAGE_SHAPES[cfg.dataset])
    start = continued_from(cfg, parents or places)
    try:
        if distributed.is_main():
            store.mkdir(parents=True, exist_ok=True)
        with exclusive(store, key) if distributed.is_main() else nullcontext():
            done = distributed.all_gather_object(final.is_dir() and not replace)[0]
            if done:  # finished while we waited for the lock
                _say(f"run {key} was finished meanwhile by the process we waited for; loading it")
                return final
            if training_line:
                _say(training_line)
            if distributed.is_main():
                if partial.exists() and not resume:
                    shutil.rmtree(partial)
                partial.mkdir(exist_ok=True)
            distributed.barrier()
            try:
                if distributed.is_main():
                    write_json(partial / "config.json", cfg.to_dict())
                _train_and_save(cfg, store, partial, time.time(), split, start, snapshots)
            except BaseException:
                if distributed.is_main() and not (partial / "checkpoint.pt").is_file():  # nothing to resume
                    shutil.rmtree(partial, ignore_errors=True)
                raise
            if distributed.is_main():
                if final.is_dir():
                    old = store / f".replaced-{key}"
                    shutil.rmtree(old, ignore_errors=True)
                    os.rename(final, old)
                    os.rename(partial, final)
                    shutil.rmtree(old)
                else:
                    os.rename(partial, final)
            distributed.barrier()
    except OSError as err:
        raise RunError(
            f"cannot write run {key} to {store} ({err.strerror or err}); finished runs there are untouched"
        ) from err
    return final


def summarise_code(runs: list[Run]) -> str:
    """One sentence on which numerical code made ``runs``."""
    return code_summary([run.provenance for run in runs])


def get_or_train(
    cfg: RunConfig, store: Path | str | None = None, resume: bool = True, retrain: bool = False,
    snapshots: tuple[int, ...] = (),
) -> Run:
    """Load the finished run of ``cfg`` from ``store``, ``results/`` or ``runs/``, else train it into ``store``
    (default ``runs/``). Loading a finished run only reads: it works in a read-only store.

    ``resume``: continue a partial run of the same config left by an interrupted process.
    ``retrain``: train afresh even if a finished run exists (it is replaced only once the new one is done).
    ``snapshots``: also save the runs of ``cfg`` with these (fewer) epochs on the way (:func:`execute`).
    """
    paths.check_store(store)
    target = Path(store) if store is not None else paths.RUNS_DIR
    (cfg,), why = resolve_numerics([cfg], (target, paths.RESULTS_DIR, paths.RUNS_DIR))
    found = None if retrain else find_run(cfg, (target, paths.RESULTS_DIR, paths.RUNS_DIR))
    if found is not None:
        run = load_run(found)
        _say(f"loaded finished run {found.name} from {shown(found.parent)}; {run.code_status()}")
        return run
    if os.environ.get("NINE_NO_TRAINING"):
        raise RunError(f"run {run_hash(cfg)} ({cfg.profile} profile) is not in results/ or runs/ and "
                       f"NINE_NO_TRAINING is set (the book build shows committed runs only; "
                       f"train it with `make results` or get_or_train)")
    if why:
        _say(why)
    training = (f"training run {run_hash(cfg)} ({cfg.profile} profile, {cfg.epochs} epochs, {cfg.numerics}) "
                f"into {shown(target)}")
    return load_run(execute(cfg, target, resume=resume, replace=retrain, snapshots=tuple(snapshots),
                            training_line=training))


def estimated_minutes(cfg: RunConfig) -> float:
    """About how long training ``cfg`` takes: the median wall time per epoch of the committed runs of its
    dataset, head and numerics (all committed runs where none match) times its epochs. Committed runs were
    trained on two cores, some of them two at a time; bf16 runs assume a CPU with bf16 units."""
    per_epoch = _committed_seconds_per_epoch()
    key = (cfg.dataset, cfg.head, cfg.numerics)
    seconds = per_epoch.get(key) or per_epoch.get(None) or 10.0
    return seconds * cfg.epochs / 60


@lru_cache(maxsize=1)
def _committed_seconds_per_epoch() -> dict:
    samples: dict = {}
    for path in Path(paths.RESULTS_DIR).glob("*/provenance.json"):
        try:
            cfg, wall = read_json_object(path.parent / "config.json"), read_json_object(path)["wall_time_s"]
        except (RunError, KeyError):
            continue
        per = float(wall) / int(cfg.get("epochs", 1))
        samples.setdefault((cfg.get("dataset"), cfg.get("head", "nine"), cfg.get("numerics", "fp32")), []).append(per)
        samples.setdefault(None, []).append(per)
    return {key: float(np.median(values)) for key, values in samples.items()}


def announce(cfgs: list[RunConfig], what: str = "these runs") -> int:
    """Say, before anything trains, how many of ``cfgs`` have no finished run and about how long training
    them takes (:func:`estimated_minutes`); return that number."""
    cfgs = resolve_numerics(cfgs)[0]
    missing = [cfg for cfg in dict.fromkeys(cfgs) if find_run(cfg) is None]
    if missing and os.environ.get("NINE_NO_TRAINING") is None:
        minutes = sum(estimated_minutes(cfg) for cfg in missing)
        _say(f"plan: {len(missing)} of {what} ({len(set(cfgs))}) are not trained; training them takes about "
             f"{minutes:.0f} min on two cores (from the committed runs' wall times)")
    return len(missing)


def get_or_train_all(cfgs: list[RunConfig], store: Path | str | None = None, say_loaded: bool = True) -> list[Run]:
    """:func:`get_or_train` for each config, in order, saying first what it will train and how long that
    takes (:func:`announce`), then what was loaded in one line rather than one per run (runs that have to
    be trained still report their progress). ``say_loaded=False``: not that line (a helper that loads runs
    on the way to its answer, e.g. :func:`nine.experiments.tuning.best_setting`). Configs with
    ``numerics="auto"`` are resolved together (:func:`nine.store.runs.resolve_numerics`): one numerics for all."""
    places = tuple(dict.fromkeys((*(() if store is None else (Path(store),)), paths.RESULTS_DIR, paths.RUNS_DIR)))
    cfgs, why = resolve_numerics(cfgs, places)
    if why:
        _say(why)
    announce(cfgs)
    runs, loaded = [], []
    for cfg in cfgs:
        found = find_run(cfg, places)
        if found is None:
            runs.append(get_or_train(cfg, store))
        else:
            runs.append(load_run(found))
            loaded.append(runs[-1])
    if loaded and say_loaded:
        places = ", ".join(sorted({shown(run.path.parent) for run in loaded}))
        runs_word = "finished run" if len(loaded) == 1 else "finished runs"
        _say(f"loaded {len(loaded)} {runs_word} from {places}. {summarise_code(loaded)}")
    return runs


def _say(line: str) -> None:
    if distributed.is_main():
        print(line, flush=True)
