"""The run store: every run is keyed by a hash of its config and the version of ``nine``.

A finished run directory ``<store>/<hash>/`` holds

- ``config.json``      the full :class:`~nine.config.RunConfig`
- ``metrics.json``     the figures of :func:`nine.metrics.matching_report` (clean test embeddings),
  KS on the augmented test views, and InfoNCE (no timings)
- ``log.jsonl``        one line per epoch
- ``embeddings.npz``   clean train and test embeddings, and test embeddings of one augmented view
  per digit (``z_test_view``: the law the objective acts on), float16, with their labels
- ``model.pt``         encoder and critic weights (load with ``weights_only=True``)
- ``provenance.json``  git commit and dirty flag, tree hash of ``nine/``, package versions, device,
  start/end, wall time, training throughput
- ``manifest.json``    SHA-256 of every other file; loading verifies them

A run is built in a hidden ``.partial-<hash>`` directory, under a lock that a second process
waits on, with a checkpoint every few epochs; it is renamed into place only when complete, so a
partial run is never mistaken for a finished one, and a run killed at any point resumes from its
last checkpoint. Committed runs live in ``results/``;
new runs go to ``runs/`` (git-ignored; ``NINE_RUNS_DIR`` overrides) unless told otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

import nine
from nine import distributed
from nine.config import RunConfig, make_config
from nine.critics import make_critic
from nine.data import IMAGE_SHAPES, check_images, evaluation_view, load_split, training_view
from nine.metrics import ks_per_coordinate, matching_report
from nine.models import Encoder, pick_device
from nine.theory import capacity_gaussian, capacity_uniform, infonce_ceiling
from nine.train import embed, estimate_infonce, train

ROOT = Path(os.environ.get("NINE_ROOT", Path(__file__).resolve().parents[1]))
RESULTS_DIR = ROOT / "results"
RUNS_DIR = Path(os.environ.get("NINE_RUNS_DIR", ROOT / "runs"))
FILES = ("config.json", "metrics.json", "log.jsonl", "embeddings.npz", "model.pt", "provenance.json", "manifest.json")
UNHASHED = ("profile", "device", "data_dir", "download", "checkpoint_every")  # bookkeeping: they do not change what a run computes
VIEW_SEED = 0  # the augmented test views on which ks_view is measured
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "mlxtend")


class RunError(RuntimeError):
    """A run directory that is missing files or cannot be read."""


# Fields added after runs were committed: left out of the hash while at their default, so that
# every earlier run keeps its hash (its behaviour is exactly that default's).
ADDED_LATER = {"encoder": "mnist-cnn", "head": "nine", "held_out": (), "adv_weight": 1.0, "beta": 1.0}


def run_hash(cfg: RunConfig) -> str:
    """12 hex digits of SHA-256 over the config (less bookkeeping fields) and ``nine.__version__``."""
    key = {
        k: v for k, v in cfg.to_dict().items()
        if k not in UNHASHED and not (k in ADDED_LATER and v == ADDED_LATER[k])
    }
    key["nine_version"] = nine.__version__
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise _unreadable(path, err) from err


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _code_identity() -> dict[str, Any]:
    """The git tree of ``nine/`` and commit as this process imported them (the code that runs)."""
    status = _git("status", "--porcelain", "--", "nine")
    return {"nine_tree": _git("rev-parse", "HEAD:nine"), "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": None if status is None else bool(status)}


CODE = _code_identity()  # read once at import: a long run must not record a later checkout's tree


def provenance(device: torch.device, started: float, ended: float) -> dict[str, Any]:
    """Where and with what a run was made."""
    return {
        "nine_version": nine.__version__,
        **CODE,
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} CPU cores",
        "torch_threads": torch.get_num_threads(),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "ended": datetime.fromtimestamp(ended, timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(ended - started, 2),
    }


def capacity(cfg: RunConfig) -> float:
    """Capacity of the run's noise channel in nats (C_G or C_U); infinite for heads without noise."""
    if cfg.head != "nine":
        return math.inf
    if cfg.prior == "gaussian":
        return float(capacity_gaussian(cfg.sigma, cfg.d))
    return float(capacity_uniform(cfg.eps, cfg.d))


@dataclass
class Run:
    """A finished run read from disk; embeddings and model load on first use."""

    path: Path
    config: RunConfig
    metrics: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def hash(self) -> str:
        return self.path.name

    @cached_property
    def log(self) -> list[dict[str, Any]]:
        with open(self.path / "log.jsonl") as f:
            return [json.loads(line) for line in f if line.strip()]

    @cached_property
    def embeddings(self) -> dict[str, np.ndarray]:
        """z_train, y_train, z_test, y_test (z as float32)."""
        try:
            with np.load(self.path / "embeddings.npz") as data:
                return {k: data[k].astype(np.float32) if k.startswith("z") else data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise _unreadable(self.path / "embeddings.npz", err) from err

    @property
    def code_state(self) -> str:
        """"current", "older" or "unknown": was this run made by the current code of ``nine/``
        (compared by git tree hash; unknown when either side had uncommitted changes)."""
        made, dirty = self.provenance.get("nine_tree"), self.provenance.get("git_dirty")
        now, now_dirty = _git("rev-parse", "HEAD:nine"), _git("status", "--porcelain", "--", "nine")
        if made is None or now is None or dirty or now_dirty:
            return "unknown"
        return "current" if made == now else "older"

    def code_status(self) -> str:
        """:attr:`code_state` as a sentence, with the remedy for an older run."""
        state = self.code_state
        if state == "unknown":
            return "whether it was made by the current code of nine/ is unknown (no clean git tree to compare)"
        if state == "current":
            return "made by the current code of nine/"
        commit = (self.provenance.get("git_commit") or "?")[:10]
        return (f"made by an older nine/ (commit {commit}); nine/ has changed since: `make reproduce` retrains "
                "the cheapest committed run and checks its numbers, retrain=True refreshes this one")

    def load_model(self) -> tuple[Encoder, torch.nn.Module]:
        """The trained encoder and critic in eval mode, on the CPU."""
        try:
            state = torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)
        except Exception as err:
            raise _unreadable(self.path / "model.pt", err) from err
        encoder, critic = Encoder.from_config(self.config), make_critic(self.config)
        encoder.load_state_dict(state["encoder"])
        critic.load_state_dict(state["critic"])
        return encoder.eval(), critic.eval()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _retrain_hint(path: Path) -> str:
    return f"retrain it: `python -m nine train --retrain ...` or get_or_train(cfg, retrain=True) (run {path.name})"


def _unreadable(path: Path, err: Exception) -> RunError:
    """The error for a file of a run that cannot be read; the remedy is the same as for a corrupt one."""
    return RunError(f"{path} cannot be read ({err}); {_retrain_hint(path.parent)}")


def verify(path: Path, files: tuple[str, ...] = FILES) -> None:
    """Check that every file of a finished run (or other stored artifact with ``files``) exists and
    matches the SHA-256 in its manifest."""
    missing = [name for name in files if not (path / name).is_file()]
    if missing:
        raise RunError(f"{path} is missing {', '.join(missing)}; {_retrain_hint(path)}")
    manifest = _read_json(path / "manifest.json")
    for name in files:
        if name != "manifest.json" and manifest.get(name) != sha256(path / name):
            raise RunError(f"{path / name} is corrupt (its SHA-256 does not match manifest.json); {_retrain_hint(path)}")


def load_run(path: Path) -> Run:
    """Read a finished run directory after verifying its files; :class:`RunError` names any bad file."""
    path = Path(path)
    verify(path)
    config = _read_json(path / "config.json")
    return Run(path, make_config(**config), _read_json(path / "metrics.json"), _read_json(path / "provenance.json"))


def find_run(cfg: RunConfig, stores: tuple[Path, ...] | None = None) -> Path | None:
    """The finished run directory of ``cfg`` in the first store that has it, else None."""
    for store in stores or (RESULTS_DIR, RUNS_DIR):
        path = Path(store) / run_hash(cfg)
        if path.is_dir():
            return path
    return None


@contextmanager
def _exclusive(store: Path, key: str) -> Iterator[None]:
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


def _evaluate_and_save(cfg: RunConfig, partial: Path, started: float) -> None:
    """Train (or resume) in ``partial`` and write every file of a finished run there."""
    split = load_split(cfg)
    check_images(split.x_test, "x_test", IMAGE_SHAPES[cfg.dataset])
    log_path = partial / "log.jsonl" if distributed.is_main() else None
    result = train(cfg, split, log_path=log_path, checkpoint_path=partial / "checkpoint.pt")
    if not distributed.is_main():
        return
    clean, view = evaluation_view(cfg), training_view(cfg)
    z_train, z_test = embed(result.encoder, split.x_train, clean), embed(result.encoder, split.x_test, clean)
    views = torch.Generator(device=next(result.encoder.parameters()).device).manual_seed(VIEW_SEED)
    z_test_view = embed(result.encoder, split.x_test, lambda b: view(b, views))
    infonce_test, infonce_test_std = estimate_infonce(result.encoder, result.critic, split.x_test, cfg)
    metrics = matching_report(z_train.numpy(), split.y_train.numpy(), z_test.numpy(), split.y_test.numpy(), cfg.prior)
    ks_view, ks_view_pvalue = ks_per_coordinate(z_test_view.numpy(), cfg.prior)
    metrics.update(
        ks_view=ks_view.tolist(),
        ks_view_pvalue=ks_view_pvalue.tolist(),
        ks_view_mean=float(ks_view.mean()),
        infonce_train_final=result.history[-1]["infonce"],
        infonce_test=infonce_test,
        infonce_test_std=infonce_test_std,
        capacity=capacity(cfg),
        log_n=float(infonce_ceiling(min(cfg.batch_size, len(split.x_test)))),
        n_train=len(split.x_train),
        n_test=len(split.x_test),
    )
    if hasattr(result.critic, "tau"):
        metrics["tau"] = result.critic.tau
    np.savez_compressed(
        partial / "embeddings.npz",
        z_train=z_train.numpy().astype(np.float16),
        y_train=split.y_train.numpy(),
        z_test=z_test.numpy().astype(np.float16),
        z_test_view=z_test_view.numpy().astype(np.float16),
        y_test=split.y_test.numpy(),
    )
    torch.save({"encoder": result.encoder.state_dict(), "critic": result.critic.state_dict()}, partial / "model.pt")
    _write_json(partial / "metrics.json", metrics)
    record = provenance(pick_device(cfg.device), started, time.time())
    record["train_samples_per_s"] = float(np.median([r["samples_per_s"] for r in result.history]))
    _write_json(partial / "provenance.json", record)
    (partial / "checkpoint.pt").unlink()
    _write_json(partial / "manifest.json", {name: sha256(partial / name) for name in FILES if name != "manifest.json"})


def execute(cfg: RunConfig, store: Path, resume: bool = True, replace: bool = False) -> Path:
    """Train, evaluate and save a run of ``cfg`` into ``store``; return its finished directory.

    The run is built in ``store/.partial-<hash>`` under a lock, checkpointed as it trains, and
    renamed into place only when complete. A partial run left by a crash is resumed
    (``resume=False`` starts afresh). A finished run is returned as it is, unless ``replace``:
    then it is swapped for the new one only once the new one is complete.
    Raises :class:`RunError` when the store cannot be written; earlier runs are never touched.
    Under several processes every one trains; only rank 0 locks, writes and evaluates.
    """
    key = run_hash(cfg)
    store = Path(store)
    final, partial = store / key, store / f".partial-{key}"
    try:
        if distributed.is_main():
            store.mkdir(parents=True, exist_ok=True)
        with _exclusive(store, key) if distributed.is_main() else nullcontext():
            done = distributed.all_gather_object(final.is_dir() and not replace)[0]
            if done:  # finished while we waited for the lock
                return final
            if distributed.is_main():
                if partial.exists() and not resume:
                    shutil.rmtree(partial)
                partial.mkdir(exist_ok=True)
            distributed.barrier()
            try:
                if distributed.is_main():
                    _write_json(partial / "config.json", cfg.to_dict())
                _evaluate_and_save(cfg, partial, time.time())
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


def code_summary(runs: list[Run]) -> str:
    """One sentence on which code made a set of runs."""
    states = [run.code_state for run in runs]
    parts = [f"{states.count('current')} by the current code of nine/"]
    if states.count("older"):
        parts.append(f"{states.count('older')} by earlier commits of nine/ (`make reproduce` retrains the cheapest "
                     "committed run and compares every metric)")
    if states.count("unknown"):
        parts.append(f"{states.count('unknown')} while nine/ had uncommitted changes, or outside a git checkout")
    return f"Of these {len(runs)} runs, " + ", ".join(parts) + "."


def _shown(path: Path) -> str:
    """A path relative to the project root when it lies inside it (as printed in the book)."""
    try:
        return str(path.resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


def get_or_train(
    cfg: RunConfig, store: Path | str | None = None, resume: bool = True, retrain: bool = False
) -> Run:
    """Load the finished run of ``cfg`` from ``results/`` or ``runs/``, else train it into ``store``.

    ``resume``: continue a partial run of the same config left by an interrupted process.
    ``retrain``: train afresh even if a finished run exists (it is replaced only once the new one is done).
    """
    found = None if retrain else find_run(cfg)
    if found is not None:
        run = load_run(found)
        _say(f"loaded finished run {found.name} from {_shown(found.parent)}; {run.code_status()}")
        return run
    target = Path(store) if store is not None else RUNS_DIR
    if os.environ.get("NINE_NO_TRAINING"):
        raise RunError(f"run {run_hash(cfg)} ({cfg.profile} profile) is not in results/ or runs/ and "
                       f"NINE_NO_TRAINING is set (the book build shows committed runs only; "
                       f"train it with `make results` or get_or_train)")
    _say(f"training run {run_hash(cfg)} ({cfg.profile} profile, {cfg.epochs} epochs) into {_shown(target)}")
    return load_run(execute(cfg, target, resume=resume, replace=retrain))


def get_or_train_all(cfgs: list[RunConfig], store: Path | str | None = None) -> list[Run]:
    """:func:`get_or_train` for each config, in order, saying what was loaded in one line rather than
    one per run (runs that have to be trained still report their progress)."""
    runs, loaded = [], []
    for cfg in cfgs:
        found = find_run(cfg)
        if found is None:
            runs.append(get_or_train(cfg, store))
        else:
            runs.append(load_run(found))
            loaded.append(runs[-1])
    if loaded:
        places = ", ".join(sorted({_shown(run.path.parent) for run in loaded}))
        _say(f"loaded {len(loaded)} finished run(s) from {places}. {code_summary(loaded)}")
    return runs


def _say(line: str) -> None:
    if distributed.is_main():
        print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# Recomputing a committed run

# Allowed |committed − recomputed| per metric family (first matching substring wins); metrics not
# listed must match exactly. On the same kind of machine a rerun is bit-identical; these bounds
# allow for another CPU's floating-point rounding while catching any change of method.
TOLERANCES = (("pvalue", 0.5), ("ks", 0.02), ("_acc", 0.03), ("infonce", 0.05), ("tau", 0.02), ("embedding", 0.05))


@dataclass(frozen=True)
class Comparison:
    metric: str
    committed: float
    recomputed: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.committed == self.recomputed or abs(self.committed - self.recomputed) <= self.tolerance


def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for key, value in metrics.items():
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            flat[f"{key}[{i}]" if isinstance(value, list) else key] = float(v)
    return flat


def compare_metrics(committed: dict[str, Any], recomputed: dict[str, Any]) -> list[Comparison]:
    """Every metric of two runs side by side with its tolerance; a missing metric compares as NaN."""
    a, b = _flatten(committed), _flatten(recomputed)
    rows = []
    for key in sorted(set(a) | set(b)):
        tol = next((t for part, t in TOLERANCES if part in key), 0.0)
        rows.append(Comparison(key, a.get(key, math.nan), b.get(key, math.nan), tol))
    return rows


def cheapest_committed_run() -> Path:
    """The finished run in ``results/`` trained with this process's number of torch threads (CPU
    kernels may round differently with another number, so only then can the check be bit-identical
    and its tolerances tight), then the cheapest to train (epochs × train images), then the shortest
    wall time."""
    candidates = [p for p in RESULTS_DIR.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")]
    if not candidates:
        raise RunError(f"{RESULTS_DIR} holds no finished runs")

    def cost(path: Path) -> tuple[bool, float, float]:
        config, prov = _read_json(path / "config.json"), _read_json(path / "provenance.json")
        n_train = _read_json(path / "metrics.json")["n_train"]
        return prov.get("torch_threads") != torch.get_num_threads(), config["epochs"] * n_train, prov["wall_time_s"]

    return min(candidates, key=cost)


def reproduce(path: Path, store: Path) -> list[Comparison]:
    """Retrain the run at ``path`` from scratch into ``store`` and compare every metric."""
    committed = load_run(Path(path))
    recomputed = load_run(execute(committed.config, Path(store), resume=False, replace=True))
    return compare_metrics(committed.metrics, recomputed.metrics)
