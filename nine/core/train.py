"""The training loop: seeded, one progress line per epoch on stdout, an optional JSONL log.

The loop knows nothing of the method: the run's objective (:mod:`nine.core.objectives`) gives the
encoder's head, the networks trained beside it and the loss.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nine.config import ConfigError, NineError, RunConfig, computation_key
from nine.core import distributed
from nine.core.checkpoint import DamagedCheckpoint, ForeignCheckpoint, load_checkpoint, save_checkpoint, set_aside
from nine.core.models import Encoder, pick_device
from nine.core.objectives import Objective, make_objective
from nine.data import IMAGE_SHAPES, Split, centre_view, check_images, training_view


class TrainingDiverged(NineError, RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """A trained encoder, the objective and its networks (in eval mode), and the per-epoch log."""

    objective: Objective
    encoder: Encoder
    networks: nn.Module
    history: list[dict] = field(default_factory=list)


@dataclass
class Start:
    """Where a continued run starts: the weights and the log of a finished run after its last epoch."""

    epoch: int
    encoder: dict
    networks: dict
    history: list[dict]


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def training_step(
    objective: Objective,
    encoder: nn.Module,
    networks: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    view: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    generator: torch.Generator,
) -> tuple[float, float]:
    """One optimiser step on this process's shard x of the global batch. Returns (loss, estimate)."""
    loss, estimate = objective.loss(encoder, networks, x, view, generator)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach()), float(estimate)


def train(
    cfg: RunConfig,
    split: Split,
    log_path: Path | None = None,
    progress: Callable[[str], None] = lambda line: print(line, flush=True),
    checkpoint_path: Path | None = None,
    on_epoch: Callable[[int, TrainResult], None] | None = None,
    start: Start | None = None,
) -> TrainResult:
    """Train the encoder and the objective's networks on ``split.x_train`` for ``cfg.epochs`` epochs.

    Deterministic on CPU for a given ``cfg.seed``. Each epoch appends a JSON line to ``log_path``
    and passes one progress line (loss, InfoNCE estimate, samples/s, ETA) to ``progress``.
    With ``checkpoint_path``, the full training state is saved there every ``cfg.checkpoint_every``
    epochs, and an existing checkpoint is resumed from: the result is bit-identical (on CPU) to an
    uninterrupted run. ``on_epoch(epoch, result)`` is called after each epoch (after its checkpoint),
    with the modules in train mode; it must leave them, and every random state, as it found them
    (:func:`nine.store.store.execute` uses it to save snapshots of a long run).
    ``start``: continue a finished run from its weights after ``start.epoch`` epochs (a fresh optimiser,
    random states seeded from the seed and that epoch); a checkpoint of this run, if any, still wins.
    Raises :class:`TrainingDiverged` naming the epoch and step if the loss is not finite.
    """
    check_images(split.x_train, "x_train", IMAGE_SHAPES[cfg.dataset])
    if not distributed.is_main():
        progress = lambda line: None  # noqa: E731 (only rank 0 reports)
    world = distributed.world_size()
    objective = make_objective(cfg)
    if world > 1 and not objective.multi_process:
        raise ConfigError(f"head={cfg.head!r} is not allowed with {world} processes: it trains in one process")
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size={cfg.batch_size} is not allowed: must be divisible by the {world} processes")
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)  # initial weights and the channel noise
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # batch order (and views, one process)
    encoder, networks = objective.build()
    encoder, networks = encoder.to(device), networks.to(device)
    views = generator
    if world > 1:  # each process draws its own views and channel noise
        views = torch.Generator(device=device).manual_seed(cfg.seed + 1 + distributed.rank())
        torch.manual_seed(cfg.seed + 1 + distributed.rank())
    result = TrainResult(objective, encoder, networks)
    model, scorer = distributed.wrap(encoder), distributed.wrap(networks)
    optimiser = torch.optim.Adam(objective.parameter_groups(encoder, networks), lr=cfg.lr)
    view = training_view(cfg)
    x_train = split.x_train.to(device)
    n = len(x_train)
    if n < cfg.batch_size:
        raise ConfigError(f"batch_size={cfg.batch_size} is not allowed: the train split has only {n} images")
    steps = n // cfg.batch_size  # the last partial batch is dropped: every step sees N = batch_size
    first = 1
    if start is not None:
        encoder.load_state_dict(start.encoder)
        networks.load_state_dict(start.networks)
        first, result.history = start.epoch + 1, list(start.history)
        torch.manual_seed(cfg.seed + 1_000_003 * start.epoch)  # not the noise of the run's first epochs again
        generator.manual_seed(cfg.seed + 1_000_003 * start.epoch)
        if views is not generator:
            views.manual_seed(cfg.seed + 1 + distributed.rank() + 1_000_003 * start.epoch)
    if checkpoint_path is not None and checkpoint_path.is_file():
        try:
            done, result.history = load_checkpoint(checkpoint_path, encoder, networks, optimiser, (generator, views),
                                                   owner=computation_key(cfg))
        except (DamagedCheckpoint, ForeignCheckpoint) as err:  # nothing was restored from it
            progress(f"{err}: set aside as {set_aside(checkpoint_path).name}; the run starts again from epoch {first}")
        else:
            first = done + 1
            progress(f"resuming from the checkpoint after epoch {done}/{cfg.epochs}")
    if log_path is not None:  # a log left by a killed process may run ahead of where training restarts: cut it back
        log_path.write_text("".join(json.dumps(r) + "\n" for r in result.history))
    started = time.perf_counter()
    encoder.train()
    networks.train()
    for epoch in range(first, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=device)
        losses, estimates = [], []
        for step in range(steps):
            batch = distributed.shard(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            loss, estimate = training_step(objective, model, scorer, optimiser, x_train[batch], view, views)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss={loss} at epoch {epoch}, step {step + 1}: training diverged; lower lr={cfg.lr}"
                )
            losses.append(loss)
            estimates.append(estimate)
        now = time.perf_counter()
        record = {
            "epoch": epoch,
            "loss": sum(losses) / steps,
            "infonce": sum(estimates) / steps,
            "samples_per_s": steps * cfg.batch_size / (now - epoch_start),
            "elapsed_s": now - started,
        }
        record.update(objective.diagnostics(networks))
        result.history.append(record)
        if log_path is not None:
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        if checkpoint_path is not None and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            save_checkpoint(checkpoint_path, epoch, encoder, networks, optimiser, (generator, views), result.history,
                            owner=computation_key(cfg))
        if on_epoch is not None:
            on_epoch(epoch, result)
        eta = (now - started) / (epoch - first + 1) * (cfg.epochs - epoch)
        progress(
            f"epoch {epoch:>4}/{cfg.epochs}  loss {record['loss']:.4f}  InfoNCE {record['infonce']:.3f} nats"
            f"  {record['samples_per_s']:,.0f} samples/s  ETA {_format_eta(eta)}"
        )
    encoder.eval()
    networks.eval()
    return result


@torch.no_grad()
def embed(
    encoder: Encoder,
    x: torch.Tensor,
    view: Callable[[torch.Tensor], torch.Tensor] = centre_view,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Embeddings f(view(x)) in eval mode (running BatchNorm statistics; channel noise is never part of f).

    x: N×1×28×28 → N×d on the CPU. ``view`` defaults to the clean centre crop; pass e.g.
    ``lambda b: random_view(b, 0.2, generator)`` for the augmented views the encoder is trained on.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    parts = [encoder(view(x[i : i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts)
