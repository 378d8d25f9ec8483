"""The training loop: seeded, one progress line per epoch on stdout, an optional JSONL log."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nine import distributed
from nine.config import RunConfig
from nine.critics import make_critic
from nine.data import IMAGE_SHAPES, Split, centre_view, check_images, training_view
from nine.losses import infonce
from nine.models import Encoder, pick_device


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file."""


@dataclass
class TrainResult:
    encoder: Encoder
    critic: nn.Module
    history: list[dict] = field(default_factory=list)


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def infonce_loss(
    encoder: nn.Module, critic: nn.Module, x: torch.Tensor, cfg: RunConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training objective on the global batch: x (n_local×1×28×28) is this process's shard of it.

    InfoNCE: u = f(X') (noisy only if noise_on="both") and y = f(X) + Z are gathered from all
    processes, so the score matrix is N×N with N the global batch. Returns (loss, estimate in nats).
    The baseline heads add their terms (:mod:`nine.baselines`): the adversarial head adds
    adv_weight × the encoder's adversarial term and the discriminator's loss; the VAE head replaces
    InfoNCE by its ELBO loss (its estimate is NaN: a VAE has no InfoNCE).
    """
    view = training_view(cfg)
    if cfg.head == "vae":
        from nine.baselines import vae_loss

        target = view(x, generator)
        z = encoder(target, noisy=True)
        loss = vae_loss(critic, z, _unwrap(encoder).head.kl, target, cfg.beta)
        return loss, torch.tensor(float("nan"))
    u = encoder(view(x, generator), noisy=cfg.noise_on == "both")
    y = encoder(view(x, generator), noisy=True)
    loss, estimate = infonce(critic(distributed.gather(u), distributed.gather(y)), cfg.softmax)
    if cfg.head == "adversarial":
        from nine.baselines import adversarial_terms

        encoder_term, discriminator_term = adversarial_terms(_unwrap(critic), u, cfg.prior)
        loss = loss + cfg.adv_weight * encoder_term + discriminator_term
    return loss, estimate


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def training_step(
    encoder: nn.Module,
    critic: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    cfg: RunConfig,
    generator: torch.Generator,
) -> tuple[float, float]:
    """One optimiser step on this process's shard x of the global batch. Returns (loss, estimate)."""
    loss, estimate = infonce_loss(encoder, critic, x, cfg, generator)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach()), float(estimate)


def _save_checkpoint(path: Path, epoch: int, encoder, critic, optimiser, generators, history) -> None:
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
        "critic": critic.state_dict(),
        "optimiser": optimiser.state_dict(),
        "order": order.get_state(),
        "ranks": per_rank,
        "history": history,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, encoder, critic, optimiser, generators) -> tuple[int, list[dict]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        encoder.load_state_dict(state["encoder"])
        critic.load_state_dict(state["critic"])
        optimiser.load_state_dict(state["optimiser"])
    except Exception as err:
        raise CheckpointError(f"{path} cannot be read ({err}); delete it to start the run afresh") from err
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


def train(
    cfg: RunConfig,
    split: Split,
    log_path: Path | None = None,
    progress: Callable[[str], None] = lambda line: print(line, flush=True),
    checkpoint_path: Path | None = None,
) -> TrainResult:
    """Train encoder and critic on ``split.x_train`` for ``cfg.epochs`` epochs.

    Deterministic on CPU for a given ``cfg.seed``. Each epoch appends a JSON line to ``log_path``
    and passes one progress line (loss, InfoNCE estimate, samples/s, ETA) to ``progress``.
    With ``checkpoint_path``, the full training state is saved there every ``cfg.checkpoint_every``
    epochs, and an existing checkpoint is resumed from: the result is bit-identical (on CPU) to an
    uninterrupted run. Raises :class:`TrainingDiverged` naming the epoch and step if the loss is not finite.
    """
    check_images(split.x_train, "x_train", IMAGE_SHAPES[cfg.dataset])
    if not distributed.is_main():
        progress = lambda line: None  # noqa: E731 (only rank 0 reports)
    world = distributed.world_size()
    if world > 1 and cfg.head in ("adversarial", "vae"):
        raise ValueError(f"head={cfg.head!r} is not allowed with {world} processes: the baselines train in one process")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} is not allowed: must be divisible by the {world} processes")
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)  # initial weights and the channel noise
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # batch order (and views, one process)
    encoder = Encoder.from_config(cfg).to(device)
    critic = make_critic(cfg).to(device)
    views = generator
    if world > 1:  # each process draws its own views and channel noise
        views = torch.Generator(device=device).manual_seed(cfg.seed + 1 + distributed.rank())
        torch.manual_seed(cfg.seed + 1 + distributed.rank())
    result = TrainResult(encoder, critic)
    model, scorer = distributed.wrap(encoder), distributed.wrap(critic)
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    x_train = split.x_train.to(device)
    n = len(x_train)
    if n < cfg.batch_size:
        raise ValueError(f"batch_size={cfg.batch_size} is not allowed: the train split has only {n} images")
    steps = n // cfg.batch_size  # the last partial batch is dropped: every step sees N = batch_size
    first = 1
    if checkpoint_path is not None and checkpoint_path.is_file():
        done, result.history = _load_checkpoint(checkpoint_path, encoder, critic, optimiser, (generator, views))
        first = done + 1
        progress(f"resuming from the checkpoint after epoch {done}/{cfg.epochs}")
        if log_path is not None:  # the log may run ahead of the checkpoint: cut it back
            log_path.write_text("".join(json.dumps(r) + "\n" for r in result.history))
    started = time.perf_counter()
    encoder.train()
    critic.train()
    for epoch in range(first, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=device)
        losses, estimates = [], []
        for step in range(steps):
            batch = distributed.shard(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            loss, estimate = training_step(model, scorer, optimiser, x_train[batch], cfg, views)
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
        if hasattr(critic, "tau"):
            record["tau"] = critic.tau
        result.history.append(record)
        if log_path is not None:
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        if checkpoint_path is not None and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            _save_checkpoint(checkpoint_path, epoch, encoder, critic, optimiser, (generator, views), result.history)
        eta = (now - started) / (epoch - first + 1) * (cfg.epochs - epoch)
        progress(
            f"epoch {epoch:>4}/{cfg.epochs}  loss {record['loss']:.4f}  InfoNCE {record['infonce']:.3f} nats"
            f"  {record['samples_per_s']:,.0f} samples/s  ETA {_format_eta(eta)}"
        )
    encoder.eval()
    critic.eval()
    return result


@torch.no_grad()
def embed(
    encoder: Encoder,
    x: torch.Tensor,
    view: Callable[[torch.Tensor], torch.Tensor] = centre_view,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Embeddings f(view(x)) in eval mode (running BatchNorm statistics, no channel noise).

    x: N×1×28×28 → N×d on the CPU. ``view`` defaults to the clean centre crop; pass e.g.
    ``lambda b: random_view(b, 0.2, generator)`` for the augmented views the encoder is trained on.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    parts = [encoder(view(x[i : i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts)


@torch.no_grad()
def estimate_infonce(
    encoder: Encoder, critic: nn.Module, x: torch.Tensor, cfg: RunConfig, draws: int = 10, seed: int = 0
) -> tuple[float, float]:
    """InfoNCE estimate (nats) of I(f(X'); f(X) + Z) on held-out images, in eval mode.

    Each draw takes N = min(batch_size, len(x)) random images, two random views of each, and fresh
    channel noise on the noisy branch(es). Returns (mean, std) over the draws; each is ≤ log N.
    A VAE has no InfoNCE: (NaN, NaN).
    """
    if cfg.head == "vae":
        return math.nan, math.nan
    encoder.eval()
    critic.eval()
    device = next(encoder.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    n = min(cfg.batch_size, len(x))
    head, view = encoder.head, training_view(cfg)
    values = []
    for _ in range(draws):
        batch = x[torch.randperm(len(x), generator=generator, device=device)[:n].cpu()].to(device)
        u = encoder(view(batch, generator))
        y = encoder(view(batch, generator))
        if head.noisy:
            y = y + head.noise(y.shape, device, generator)
            if cfg.noise_on == "both":
                u = u + head.noise(u.shape, device, generator)
        values.append(float(infonce(critic(u, y), cfg.softmax)[1]))
    mean = sum(values) / draws
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(draws - 1, 1))
    return mean, std
