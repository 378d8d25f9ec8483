"""Checkpoints of a training run: everything needed to continue it bit-identically after an epoch."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nine.config import NineError, first_line
from nine.core import distributed


class CheckpointError(NineError, RuntimeError):
    """A checkpoint that cannot be read; the message names the file."""


def save_checkpoint(path: Path, epoch: int, encoder, networks, optimiser, generators, history) -> None:
    """Everything needed to continue bit-identically after ``epoch``, written atomically by rank 0.

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
        "epoch": epoch,
        "encoder": encoder.state_dict(),
        "critic": networks.state_dict(),  # the objective's networks, under the key runs have always used
        "optimiser": optimiser.state_dict(),
        "order": order.get_state(),
        "ranks": per_rank,
        "history": history,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, encoder, networks, optimiser, generators) -> tuple[int, list[dict]]:
    """Restore the state :func:`save_checkpoint` wrote into the given modules and generators;
    return (the epoch it was written after, the history so far)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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
