"""The training loop: seeded, one progress line per epoch on stdout, an optional JSONL log."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from nine.config import RunConfig
from nine.critics import make_critic
from nine.data import Split, centre_view, random_view
from nine.losses import infonce
from nine.models import Encoder, pick_device


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    encoder: Encoder
    critic: nn.Module
    history: list[dict] = field(default_factory=list)


def _format_eta(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"


def training_step(
    encoder: Encoder,
    critic: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    cfg: RunConfig,
    generator: torch.Generator,
) -> tuple[float, float]:
    """One InfoNCE step on a batch x (N×1×28×28): u = f(X') (noisy only if noise_on="both"),
    y = f(X) + Z. Returns (loss, InfoNCE estimate in nats)."""
    u = encoder(random_view(x, cfg.pixel_noise, generator), noisy=cfg.noise_on == "both")
    y = encoder(random_view(x, cfg.pixel_noise, generator), noisy=True)
    loss, estimate = infonce(critic(u, y), cfg.softmax)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach()), float(estimate)


def train(
    cfg: RunConfig,
    split: Split,
    log_path: Path | None = None,
    progress: Callable[[str], None] = lambda line: print(line, flush=True),
) -> TrainResult:
    """Train encoder and critic on ``split.x_train`` for ``cfg.epochs`` epochs.

    Deterministic on CPU for a given ``cfg.seed``. Each epoch appends a JSON line to ``log_path``
    and passes one progress line (loss, InfoNCE estimate, samples/s, ETA) to ``progress``.
    Raises :class:`TrainingDiverged` naming the epoch and step if the loss is not finite.
    """
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)  # initial weights and the channel noise
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # order and views
    encoder = Encoder.from_config(cfg).to(device)
    critic = make_critic(cfg).to(device)
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    x_train = split.x_train.to(device)
    n = len(x_train)
    if n < cfg.batch_size:
        raise ValueError(f"batch_size={cfg.batch_size} is not allowed: the train split has only {n} images")
    steps = n // cfg.batch_size  # the last partial batch is dropped: every step sees N = batch_size
    result = TrainResult(encoder, critic)
    started = time.perf_counter()
    encoder.train()
    critic.train()
    for epoch in range(1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=device)
        losses, estimates = [], []
        for step in range(steps):
            batch = x_train[order[step * cfg.batch_size : (step + 1) * cfg.batch_size]]
            loss, estimate = training_step(encoder, critic, optimiser, batch, cfg, generator)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss={loss} at epoch {epoch}, step {step + 1}: training diverged; lower lr={cfg.lr} "
                    "or check the data for NaN"
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
        eta = (now - started) / epoch * (cfg.epochs - epoch)
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
    """
    encoder.eval()
    critic.eval()
    device = next(encoder.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    n = min(cfg.batch_size, len(x))
    head = encoder.head
    values = []
    for _ in range(draws):
        batch = x[torch.randperm(len(x), generator=generator, device=device)[:n].cpu()].to(device)
        u = encoder(random_view(batch, cfg.pixel_noise, generator))
        y = encoder(random_view(batch, cfg.pixel_noise, generator))
        y = y + head.noise(y.shape, device, generator)
        if cfg.noise_on == "both":
            u = u + head.noise(u.shape, device, generator)
        values.append(float(infonce(critic(u, y), cfg.softmax)[1]))
    mean = sum(values) / draws
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(draws - 1, 1))
    return mean, std
