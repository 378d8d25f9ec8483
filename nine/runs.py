"""The run store: every run is keyed by a hash of its config and the version of ``nine``.

A finished run directory ``<store>/<hash>/`` holds

- ``config.json``      the full :class:`~nine.config.RunConfig`
- ``metrics.json``     the figures of :func:`nine.metrics.matching_report` (clean test embeddings),
  KS on the augmented test views, and InfoNCE (no timings)
- ``log.jsonl``        one line per epoch
- ``embeddings.npz``   clean train and test embeddings, and test embeddings of one augmented view
  per digit (``z_test_view``: the law the objective acts on), float16, with their labels
- ``model.pt``         encoder and critic weights (load with ``weights_only=True``)
- ``provenance.json``  git commit and dirty flag, package versions, device, start/end, wall time,
  training throughput

A run is built in a hidden ``.partial-*`` directory and renamed into place only when complete,
so a partial run is never mistaken for a finished one. Committed runs live in ``results/``;
new runs go to ``runs/`` (git-ignored; ``NINE_RUNS_DIR`` overrides) unless told otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nine
from nine.config import RunConfig, make_config
from nine.critics import make_critic
from nine.data import load_split, random_view
from nine.metrics import ks_per_coordinate, matching_report
from nine.models import Encoder, pick_device
from nine.theory import capacity_gaussian, capacity_uniform, infonce_ceiling
from nine.train import embed, estimate_infonce, train

ROOT = Path(os.environ.get("NINE_ROOT", Path(__file__).resolve().parents[1]))
RESULTS_DIR = ROOT / "results"
RUNS_DIR = Path(os.environ.get("NINE_RUNS_DIR", ROOT / "runs"))
FILES = ("config.json", "metrics.json", "log.jsonl", "embeddings.npz", "model.pt", "provenance.json")
UNHASHED = ("profile", "device", "data_dir", "download")  # bookkeeping: they do not change what a run computes
VIEW_SEED = 0  # the augmented test views on which ks_view is measured
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "mlxtend")


class RunError(RuntimeError):
    """A run directory that is missing files or cannot be read."""


def run_hash(cfg: RunConfig) -> str:
    """12 hex digits of SHA-256 over the config (less bookkeeping fields) and ``nine.__version__``."""
    key = {k: v for k, v in cfg.to_dict().items() if k not in UNHASHED}
    key["nine_version"] = nine.__version__
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"{path} cannot be read ({err}); delete its run directory to retrain") from err


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: torch.device, started: float, ended: float) -> dict[str, Any]:
    """Where and with what a run was made."""
    status = _git("status", "--porcelain", "--", "nine")
    return {
        "nine_version": nine.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
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
    """Capacity of the run's noise channel in nats (C_G or C_U)."""
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
            raise RunError(f"{self.path / 'embeddings.npz'} cannot be read ({err}); delete the run to retrain") from err

    def load_model(self) -> tuple[Encoder, torch.nn.Module]:
        """The trained encoder and critic in eval mode, on the CPU."""
        try:
            state = torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)
        except Exception as err:
            raise RunError(f"{self.path / 'model.pt'} cannot be read ({err}); delete the run to retrain") from err
        encoder, critic = Encoder.from_config(self.config), make_critic(self.config)
        encoder.load_state_dict(state["encoder"])
        critic.load_state_dict(state["critic"])
        return encoder.eval(), critic.eval()


def load_run(path: Path) -> Run:
    """Read a finished run directory; raise :class:`RunError` naming what is missing or unreadable."""
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise RunError(f"run {path} is missing {', '.join(missing)}; delete it to retrain")
    config = _read_json(path / "config.json")
    return Run(path, make_config(**config), _read_json(path / "metrics.json"), _read_json(path / "provenance.json"))


def find_run(cfg: RunConfig, stores: tuple[Path, ...] | None = None) -> Path | None:
    """The finished run directory of ``cfg`` in the first store that has it, else None."""
    for store in stores or (RESULTS_DIR, RUNS_DIR):
        path = Path(store) / run_hash(cfg)
        if path.is_dir():
            return path
    return None


def execute(cfg: RunConfig, store: Path) -> Path:
    """Train, evaluate and save a run of ``cfg`` into ``store``; return its finished directory."""
    store.mkdir(parents=True, exist_ok=True)
    final = store / run_hash(cfg)
    partial = store / f".partial-{run_hash(cfg)}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        _write_json(partial / "config.json", cfg.to_dict())
        started = time.time()
        split = load_split(cfg)
        result = train(cfg, split, log_path=partial / "log.jsonl")
        z_train, z_test = embed(result.encoder, split.x_train), embed(result.encoder, split.x_test)
        views = torch.Generator(device=next(result.encoder.parameters()).device).manual_seed(VIEW_SEED)
        z_test_view = embed(result.encoder, split.x_test, lambda b: random_view(b, cfg.pixel_noise, views))
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
        if final.exists():  # another process finished the same run first: keep theirs
            shutil.rmtree(partial)
        else:
            os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _shown(path: Path) -> str:
    """A path relative to the project root when it lies inside it (as printed in the book)."""
    try:
        return str(path.resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


def get_or_train(cfg: RunConfig, store: Path | str | None = None) -> Run:
    """Load the finished run of ``cfg`` from ``results/`` or ``runs/``, else train it into ``store``."""
    found = find_run(cfg)
    if found is not None:
        print(f"loaded finished run {found.name} from {_shown(found.parent)}", flush=True)
        return load_run(found)
    target = Path(store) if store is not None else RUNS_DIR
    print(f"training run {run_hash(cfg)} ({cfg.profile} profile, {cfg.epochs} epochs) into {_shown(target)}", flush=True)
    return load_run(execute(cfg, target))
