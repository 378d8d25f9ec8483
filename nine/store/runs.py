"""A finished run on disk: its format and key (:func:`run_hash`), its files and their manifest, and
reading it back (:func:`load_run`, :func:`find_run`). Training and writing runs is :mod:`nine.store.store`.

A finished run directory ``<store>/<hash>/`` holds

- ``config.json``      the full :class:`~nine.config.RunConfig`
- ``metrics.json``     the figures of :func:`nine.eval.report.evaluate_run` (matching statistics of the
  clean test embeddings, KS on the augmented test views, probes, InfoNCE; no timings)
- ``log.jsonl``        one line per epoch
- ``embeddings.npz``   clean train and test embeddings, and test embeddings of one augmented view
  per digit (``z_test_view``: the law the objective acts on), float32 (float16 in runs saved before
  30 Nov 2026), with their labels
- ``model.pt``         weights of the encoder and of the objective's networks (key ``critic``; load
  with ``weights_only=True``)
- ``provenance.json``  git commit, the identity of the numerical code (:mod:`nine.store.provenance`),
  package versions, device, start/end, wall time, training throughput
- ``manifest.json``    SHA-256 of every other file; loading verifies them
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nine.config import (
    AUTO_NUMERICS,
    BOOKKEEPING,
    NUMERICS,
    RECIPE_NUMERICS,
    NineError,
    RunConfig,
    config_from_dict,
    fastest_numerics,
    first_line,
)
from nine.core.checkpoint import load_problem, load_tensors
from nine.core.models import Encoder
from nine.core.objectives import make_objective
from nine.store import paths
from nine.store.provenance import code_status

FILES = ("config.json", "metrics.json", "log.jsonl", "embeddings.npz", "model.pt", "provenance.json", "manifest.json")
UNHASHED = BOOKKEEPING  # they do not change what a run computes


class RunError(NineError, RuntimeError):
    """A run directory that is missing files or cannot be read."""


# Fields added after runs were committed: left out of the hash while at their default, so that
# every earlier run keeps its hash (its behaviour is exactly that default's).
# A config.json written before a field existed lacks it and is read with the value given here.
ADDED_LATER = {
    "encoder": "mnist-cnn", "head": "nine", "held_out": (), "adv_weight": 1.0, "beta": 1.0, "numerics": "fp32", "tau_lr": 1e-3,
    "views": "two", "adv_head": "squash", "adv_gp": 0.0, "adv_lr_ratio": 1.0,
    "continues": None,
}


# The format of a stored run: bumped only when what a run directory holds changes, never with a release,
# so that a new version of the package finds every run it has already trained. Hashed under the key
# runs were first hashed with ("nine_version"), holding the version those runs were made by.
RUN_FORMAT = "0.1.0"


def run_hash(cfg: RunConfig) -> str:
    """12 hex digits of SHA-256 over the config (less bookkeeping fields) and :data:`RUN_FORMAT`; a config
    with ``numerics="auto"`` is hashed as :func:`resolve_numerics` resolves it."""
    if cfg.numerics == AUTO_NUMERICS:
        cfg = resolve_numerics([cfg])[0][0]
    key = {
        k: v for k, v in cfg.to_dict().items()
        if k not in UNHASHED and not (k in ADDED_LATER and v == ADDED_LATER[k])
    }
    key["nine_version"] = RUN_FORMAT
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (the format of every JSON file of a run)."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file of a run; :class:`RunError` names the file when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: also a file that is not UTF-8
        raise unreadable(path, err) from err


def read_json_object(path: Path) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object (a run's manifest, config, metrics)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise RunError(f"{path} is corrupt (it holds a JSON {type(value).__name__}, not an object); "
                       f"{_retrain_hint(path.parent)}")
    return value


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
        """One record per epoch; :class:`RunError` naming the file when it cannot be read."""
        try:
            with open(self.path / "log.jsonl", encoding="utf-8") as f:
                records = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as err:
            raise unreadable(self.path / "log.jsonl", err) from err
        if not all(isinstance(r, dict) for r in records):
            raise unreadable(self.path / "log.jsonl", ValueError("a line is not a JSON object"))
        return records

    @cached_property
    def embeddings(self) -> dict[str, np.ndarray]:
        """z_train, y_train, z_test, y_test (z as float32)."""
        try:
            with np.load(self.path / "embeddings.npz") as data:
                return {k: data[k].astype(np.float32) if k.startswith("z") else data[k] for k in data.files}
        except Exception as err:  # noqa: BLE001 (a damaged zip raises BadZipFile, zlib.error, EOFError, ...)
            raise unreadable(self.path / "embeddings.npz", err) from err

    def code_status(self) -> str:
        """Whether this run was made by the current numerical code of ``nine/``, as a sentence."""
        return code_status(self.provenance)

    def load_model(self) -> tuple[Encoder, torch.nn.Module]:
        """The trained encoder and the objective's networks (e.g. the critic), in eval mode, on the CPU."""
        state = read_weights(self.path / "model.pt")
        encoder, networks = make_objective(self.config).build()
        encoder.load_state_dict(without_unused_norm(state["encoder"], encoder))
        networks.load_state_dict(state["critic"])
        return encoder.eval(), networks.eval()


# Runs made while every method shared one head class stored that head's BatchNorm statistics even
# where the method does not normalise (plain InfoNCE, adversarial matching, VAE); they are unused.
SHARED_HEAD_KEYS = ("head.norm.running_mean", "head.norm.running_var", "head.norm.num_batches_tracked")


def without_unused_norm(state: dict[str, torch.Tensor], encoder: Encoder) -> dict[str, torch.Tensor]:
    """``state`` less the head statistics of :data:`SHARED_HEAD_KEYS` that ``encoder`` does not have."""
    expected = encoder.state_dict()
    return {k: v for k, v in state.items() if k in expected or k not in SHARED_HEAD_KEYS}


def read_weights(path: Path) -> dict[str, Any]:
    """The state dicts a run's ``model.pt`` holds (keys ``encoder`` and ``critic``), read as plain tensors only
    (:func:`nine.core.checkpoint.load_tensors`); :class:`RunError` naming the file when it cannot be read."""
    try:
        return load_tensors(path)
    except Exception as err:
        raise unreadable(path, err) from err


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _retrain_hint(path: Path) -> str:
    """The remedy for a damaged run at ``path``: retrain it into the store it is in (a retrained run
    elsewhere would leave the damaged one to be found first)."""
    if Path(path).resolve().parent == paths.RESULTS_DIR.resolve():  # committed evidence: restored, not recomputed
        return (f"it is a committed run: restore it with `git -C {paths.ROOT.resolve()} checkout -- results/{path.name}` "
                "(retraining would replace the book's evidence with a recomputation)")
    store = Path(path).resolve().parent
    return (f"retrain it into its own store: `python -m nine train --retrain --store {store} ...` with its config, "
            f"or get_or_train(cfg, store='{store}', retrain=True) (run {path.name})")


def unreadable(path: Path, err: Exception) -> RunError:
    """The error for a file of a run that cannot be read; the remedy is the same as for a corrupt one."""
    return RunError(f"{path} cannot be read ({load_problem(err)}); {_retrain_hint(path.parent)}")


def verify(path: Path, files: tuple[str, ...] = FILES) -> None:
    """Check that every file of a finished run (or other stored artifact with ``files``) exists and
    matches the SHA-256 in its manifest."""
    missing = [name for name in files if not (path / name).is_file()]
    if missing:
        raise RunError(f"{path} is missing {', '.join(missing)}; {_retrain_hint(path)}")
    manifest = read_json_object(path / "manifest.json")
    for name in files:
        if name != "manifest.json" and manifest.get(name) != sha256(path / name):
            raise RunError(f"{path / name} is corrupt (its SHA-256 does not match manifest.json); {_retrain_hint(path)}")


def read_config(path: Path) -> dict[str, Any]:
    """The config of the run at ``path`` as a dict, every field a config written before it existed
    lacks filled with its value of :data:`ADDED_LATER` (what that run computed with)."""
    return {**ADDED_LATER, **read_json_object(Path(path) / "config.json")}


def load_run(path: Path) -> Run:
    """Read a finished run directory after verifying its files; :class:`RunError` names any bad file."""
    path = Path(path)
    verify(path)
    try:
        cfg = config_from_dict(read_config(path))
    except NineError as err:
        raise RunError(f"{path / 'config.json'} is not a valid config ({first_line(err)}); {_retrain_hint(path)}") from err
    if run_hash(cfg) != path.name:
        raise RunError(f"{path}: the folder's name {path.name} does not match its config's hash {run_hash(cfg)} "
                       f"(the folder was renamed, or its config.json edited): rename it back to {run_hash(cfg)} if "
                       f"it was renamed, else {_retrain_hint(path)}")
    return Run(path, cfg, read_json_object(path / "metrics.json"), read_json_object(path / "provenance.json"))


# The numerics "auto" finds, in this order: the pages' recipe first, then the others a run can be trained with
FOUND_ORDER = (RECIPE_NUMERICS, *(n for n in NUMERICS if n != RECIPE_NUMERICS))


def resolve_numerics(cfgs: list[RunConfig], stores: tuple[Path, ...] | None = None) -> tuple[list[RunConfig], str]:
    """The configs with ``numerics="auto"`` resolved together, to one numerics, and why when they are to be
    trained (one line; "" when they are all found or none was "auto"): the first of :data:`FOUND_ORDER` in which every one of them has a finished run in
    ``stores`` (default ``results/``, then the runs folder), so that a committed run is found on any machine;
    else the fastest numerics here (:func:`nine.config.fastest_numerics`) for all of them, so that runs
    compared with each other never mix two numerics. Configs that name their numerics are kept as they are."""
    auto = [cfg for cfg in cfgs if cfg.numerics == AUTO_NUMERICS]
    if not auto:
        return list(cfgs), ""
    stores = stores or (paths.RESULTS_DIR, paths.RUNS_DIR)
    found = {n: sum(find_run_by_hash(run_hash(cfg.replace(numerics=n)), stores) is not None for cfg in auto)
             for n in FOUND_ORDER}
    chosen = next((n for n in FOUND_ORDER if found[n] == len(auto)), None)
    why = ""
    if chosen is None:
        chosen = fastest_numerics(auto[0].device)
        partly = {n: k for n, k in found.items() if k and n != chosen}
        why = (f"numerics auto → {chosen}: the fastest here"
               + ("" if chosen == "bf16" else " (this CPU has no bf16 units: bf16 would be emulated, slower than float32)")
               + "".join(f"; {k} of these {len(auto)} runs exist in {n}, trained again in {chosen} so that runs "
                         "compared with each other share one numerics" for n, k in partly.items()))
    return [cfg.replace(numerics=chosen) if cfg.numerics == AUTO_NUMERICS else cfg for cfg in cfgs], why


def find_run(cfg: RunConfig, stores: tuple[Path, ...] | None = None) -> Path | None:
    """The finished run directory of ``cfg`` in the first store that has it, else None."""
    return find_run_by_hash(run_hash(cfg), stores)


def find_run_by_hash(key: str, stores: tuple[Path, ...] | None = None) -> Path | None:
    """The finished run directory with hash ``key`` in the first store that has it, else None."""
    for store in stores or (paths.RESULTS_DIR, paths.RUNS_DIR):
        if (Path(store) / key).is_dir():
            return Path(store) / key
    return None
