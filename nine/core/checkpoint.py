"""Checkpoints of a training run: everything needed to continue it bit-identically after an epoch."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from nine.config import NineError, first_line
from nine.core import distributed


class CheckpointError(NineError, RuntimeError):
    """A checkpoint that cannot be read; the message names the file."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint whose bytes do not match the SHA-256 written with them (raised before any state is restored)."""


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint out of the way (kept for inspection, never resumed from); return its new path."""
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    return aside


class ForeignCheckpoint(CheckpointError):
    """A checkpoint written by another run (another seed or configuration): never resumed from."""


def save_checkpoint(path: Path, epoch: int, encoder, networks, optimiser, generators, history, owner: str = "") -> None:
    """Everything needed to continue bit-identically after ``epoch``, written atomically by rank 0. ``owner``:
    what the run computes (:func:`nine.config.computation_key`), which a resumed run must match.

    ``generators`` = (order, views): the batch-order generator is shared by all processes; the
    view generator and the global RNG (channel noise) are per process, so all of them are gathered.
    """
    order, views = generators
    per_rank = distributed.all_gather_object(
        {"torch_rng": torch.get_rng_state(), "views": views.get_state(),
         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    )
    if not distributed.is_main():
        return
    state = {
        "run": owner,
        "epoch": epoch,
        "encoder": encoder.state_dict(),
        "critic": networks.state_dict(),  # the objective's networks, under the key runs have always used
        "optimiser": optimiser.state_dict(),
        "order": order.get_state(),
        "ranks": per_rank,
        "history": history,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload + TRAILER + hashlib.sha256(payload).hexdigest().encode())
    os.replace(tmp, path)


TRAILER = b"\nnine-checkpoint-sha256:"  # then the 64 hex digits of the SHA-256 of everything before it
_SEAL = len(TRAILER) + 64


def load_tensors(source):
    """The tensors (in plain containers) of a file written by ``torch.save``, loaded on the CPU with
    ``weights_only=True``: a file that holds any other pickled object is refused, never unpickled. torch's
    warnings about an unusual file are silenced; :func:`load_problem` says why a file was refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(source, map_location="cpu", weights_only=True)


def load_problem(err: BaseException) -> str:
    """Why :func:`load_tensors` failed, as a clause to quote in a one-line error. A file the weights-only
    loader refused is said to be no plain tensor file (naming the object it holds where torch names it);
    torch's own advice, to load it without ``weights_only``, would run whatever it holds and is not quoted."""
    if isinstance(err, pickle.UnpicklingError) or "weights_only" in str(err):
        found = re.search(r"unsupported GLOBAL (\S+)", str(err))
        holds = f" (it holds {found.group(1)})" if found else ""
        return f"it is not a plain tensor file{holds}; it is refused, since loading it could run code"
    return first_line(err)


def verified_payload(path: Path) -> bytes:
    """The bytes of the checkpoint at ``path`` once its SHA-256 trailer matches them, else
    :class:`CheckpointError` (a damaged checkpoint must never be resumed from)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path} cannot be read ({first_line(err)})") from err
    payload, trailer, digest = data[:-_SEAL], data[-_SEAL:-64], data[-64:]
    if trailer != TRAILER or hashlib.sha256(payload).hexdigest().encode() != digest:
        raise DamagedCheckpoint(f"{path} is damaged (its SHA-256 does not match the one written with it)")
    return payload


def load_checkpoint(path: Path, encoder, networks, optimiser, generators, owner: str = "") -> tuple[int, list[dict]]:
    """Restore the state :func:`save_checkpoint` wrote into the given modules and generators; return (the epoch
    it was written after, the history so far). A checkpoint of another ``owner`` (another run's, or one written
    before checkpoints named their run) raises :class:`ForeignCheckpoint` before anything is restored."""
    payload = verified_payload(path)
    try:
        state = load_tensors(io.BytesIO(payload))
    except Exception as err:
        raise CheckpointError(f"{path} cannot be read ({load_problem(err)}); delete it to start the run afresh") from err
    if not isinstance(state, dict) or state.get("run") != owner:
        raise ForeignCheckpoint(f"{path} was written by another run (its configuration or seed differ)")
    try:
        encoder.load_state_dict(state["encoder"])
        networks.load_state_dict(state["critic"])
        optimiser.load_state_dict(state["optimiser"])
    except Exception as err:
        raise CheckpointError(f"{path} cannot be read ({first_line(err)}); delete it to start the run afresh") from err
    if len(state["ranks"]) != distributed.world_size():
        raise CheckpointError(
            f"{path} was written by {len(state['ranks'])} process(es); resume it with the same number, "
            f"not {distributed.world_size()}"
        )
    mine = state["ranks"][distributed.rank()]
    order, views = generators
    order.set_state(state["order"])
    views.set_state(mine["views"])
    torch.set_rng_state(mine["torch_rng"])
    if mine["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(mine["cuda_rng"])
    return int(state["epoch"]), list(state["history"])
