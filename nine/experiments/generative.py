"""Generating digits from the prior of a matched encoder.

Because a NINE embedding follows a known prior, one can sample that prior and generate. Two
generators are conditioned on the frozen encoder's clean embedding c = f(x) of the train digits:

- a conditional GAN (DCGAN-style generator and discriminator, the condition concatenated to the
  generator's noise and projected into the discriminator's last layer), and
- a deterministic decoder x̂ = g(c) trained with a Bernoulli reconstruction loss.

At generation time the condition is drawn from the prior (N(0, I) or U[0, 1]^d), not from data.
Plain-InfoNCE embeddings, which have no prior, are standardised per coordinate (train mean and std)
and sampled from N(0, I), the most favourable simple choice.

The evaluation classifier that scores them is :mod:`nine.experiments.classifier`. Trained generators are
stored like runs (:mod:`nine.store.artifacts`): ``<store>/<key>/`` with config, metrics, weights,
provenance and a SHA-256 manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nine.config import NineError, check_choice, check_int, check_positive
from nine.eval.metrics import sample_prior
from nine.eval.support import on_prior_support
from nine.store.artifacts import MODEL_FILES, get_or_make, model_places, model_target, model_weights
from nine.store.paths import shown
from nine.store.provenance import provenance
from nine.store.runs import RUN_FORMAT, read_json_object, verify, write_json

KINDS = ("cgan", "decoder")
NOISE_DIM = 32


class GeneratorMismatch(NineError, ValueError):
    """Conditions whose prior or dimension do not match what a generator was trained on."""


@dataclass(frozen=True)
class GenConfig:
    """A generator: its kind, the encoder run it is conditioned on, and its training budget."""

    kind: str  # cgan | decoder
    encoder_run: str  # hash of the encoder run whose clean embeddings condition it
    prior: str  # the encoder's prior ("gaussian" for plain InfoNCE, after standardisation)
    d: int
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-4
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_choice("prior", self.prior, ("gaussian", "uniform"))
        check_int("d", self.d, 1)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 2)
        check_positive("lr", self.lr, "the learning rate")
        check_int("seed", self.seed, 0)

    @property
    def key(self) -> str:
        text = json.dumps({**asdict(self), "nine_version": RUN_FORMAT}, sort_keys=True)
        return f"{self.kind}-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class Generator(nn.Module):
    """(noise, condition) → 28×28 image in [0, 1]: Linear → 64×7×7 → two stride-2 transposed convs.
    With ``noise_dim=0`` it is the deterministic decoder g(c)."""

    def __init__(self, d: int, noise_dim: int = NOISE_DIM) -> None:
        super().__init__()
        self.d, self.noise_dim = d, noise_dim
        self.expand = nn.Sequential(nn.Linear(noise_dim + d, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1),
        )

    def logits(self, c: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        inputs = c if self.noise_dim == 0 else torch.cat([noise, c], dim=1)
        return self.up(self.expand(inputs).view(-1, 64, 7, 7))

    def forward(self, c: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.logits(c, noise))


class Discriminator(nn.Module):
    """(image, condition) → logit: two stride-2 convs (28 → 14 → 7), then a linear score plus the
    projection of the condition onto the image features (a projection discriminator)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.LeakyReLU(0.2),
        )
        self.score = nn.Linear(128, 1)
        self.embed = nn.Linear(d, 128, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.score(h).squeeze(1) + (self.embed(c) * h).sum(1)


def conditions_of(run) -> tuple[np.ndarray, np.ndarray, str]:
    """(train conditions, test conditions, prior): the run's clean embeddings on its prior's scale."""
    prior = run.config.prior if run.config.head != "plain" else "gaussian"
    z = on_prior_support(run, prior, law="running")  # the conditions the committed generators were trained on
    return z["z_train"].astype(np.float32), z["z_test"].astype(np.float32), prior


def sample_conditions(prior: str, n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n conditions drawn from the prior (N(0, I) or U[0, 1]^d)."""
    return torch.as_tensor(sample_prior(prior, n, d, seed=seed), dtype=torch.float32)


def check_conditions(cfg: GenConfig, c: torch.Tensor, prior: str | None = None) -> None:
    """Raise :class:`GeneratorMismatch` unless c (N×d) fits the generator's d and, if given, prior."""
    if c.ndim != 2 or c.shape[1] != cfg.d:
        raise GeneratorMismatch(f"conditions of shape {tuple(c.shape)} are not allowed: the {cfg.kind} was "
                                f"trained on d = {cfg.d} embeddings of run {cfg.encoder_run}")
    if prior is not None and prior != cfg.prior:
        raise GeneratorMismatch(f"prior={prior!r} is not allowed: the {cfg.kind} was trained on embeddings "
                                f"with the {cfg.prior} prior (run {cfg.encoder_run})")


def train_generator(cfg: GenConfig, c_train: np.ndarray, x_train: torch.Tensor, progress=print) -> tuple[Generator, list[dict]]:
    """Train a cGAN (non-saturating loss) or a decoder (Bernoulli loss) on (condition, image) pairs."""
    check_conditions(cfg, torch.as_tensor(c_train))
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    g = Generator(cfg.d, NOISE_DIM if cfg.kind == "cgan" else 0)
    g_opt = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    if cfg.kind == "cgan":
        disc = Discriminator(cfg.d)
        d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    c_all = torch.as_tensor(c_train)
    steps = len(x_train) // cfg.batch_size
    history = []
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(x_train), generator=generator)
        totals = np.zeros(2)
        for step in range(steps):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x, c = x_train[idx], c_all[idx]
            if cfg.kind == "decoder":
                loss = F.binary_cross_entropy_with_logits(g.logits(c), x, reduction="sum") / len(x)
                g_opt.zero_grad()
                loss.backward()
                g_opt.step()
                totals += (loss.item(), 0.0)
                continue
            noise = torch.randn(len(x), NOISE_DIM, generator=generator)
            fake = g(c, noise)
            d_loss = F.softplus(-disc(x, c)).mean() + F.softplus(disc(fake.detach(), c)).mean()
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            g_loss = F.softplus(-disc(fake, c)).mean()
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            totals += (g_loss.item(), d_loss.item())
        if not np.isfinite(totals).all():
            raise RuntimeError(f"{cfg.kind} training diverged at epoch {epoch}: non-finite loss")
        record = {"epoch": epoch, "loss": totals[0] / steps, "d_loss": totals[1] / steps,
                  "elapsed_s": time.perf_counter() - started}
        history.append(record)
        progress(f"{cfg.kind} epoch {epoch:>3}/{cfg.epochs}  loss {record['loss']:.3f}"
                 + (f"  D loss {record['d_loss']:.3f}" if cfg.kind == "cgan" else ""))
    g.eval()
    return g, history


@torch.no_grad()
def generate(g: Generator, cfg: GenConfig, c: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Images (N×1×28×28 in [0, 1]) for conditions c, with fresh noise for a cGAN."""
    check_conditions(cfg, c)
    g.eval()
    noise = torch.randn(len(c), NOISE_DIM, generator=torch.Generator().manual_seed(seed)) if g.noise_dim else None
    return g(c, noise)


# ---------------------------------------------------------------------------------------------
# The store


def load_generator(folder: Path) -> tuple[GenConfig, Generator, dict]:
    """Read a stored generator after verifying its manifest."""
    verify(folder, MODEL_FILES)
    cfg = GenConfig(**read_json_object(folder / "config.json"))
    g = Generator(cfg.d, NOISE_DIM if cfg.kind == "cgan" else 0)
    g.load_state_dict(model_weights(folder))
    return cfg, g.eval(), read_json_object(folder / "metrics.json")


def get_or_train_generator(
    cfg: GenConfig, c_train: np.ndarray, x_train: torch.Tensor, store: Path | None = None, quiet: bool = False
) -> tuple[Generator, dict]:
    """Load the generator of ``cfg`` from ``results/generative``, ``runs/generative`` or ``store``,
    else train it into ``store`` (default ``runs/generative``, i.e. ``$NINE_RUNS_DIR/generative``) under
    the run store's lock (:func:`nine.store.artifacts.get_or_make`). ``quiet``: say nothing when it is only
    loaded (a page that loads many says so once); training is always reported."""

    def make(folder: Path) -> None:
        print(f"training {cfg.kind} {cfg.key} on the embeddings of run {cfg.encoder_run} ({cfg.epochs} epochs)")
        g, history = train_generator(cfg, c_train, x_train)
        write_json(folder / "config.json", asdict(cfg))
        write_json(folder / "metrics.json", {"wall_time_s": history[-1]["elapsed_s"], "history": history})
        torch.save(g.state_dict(), folder / "model.pt")
        write_json(folder / "provenance.json",
                   provenance(torch.device("cpu"), time.time() - history[-1]["elapsed_s"], time.time()))

    folder, made = get_or_make(cfg.key, model_places(store), model_target(store), MODEL_FILES, make, "generator")
    _, g, metrics = load_generator(folder)
    if not made and not quiet:
        print(f"loaded {cfg.kind} {cfg.key} from {shown(folder.parent)}")
    return g, metrics
