"""Generating digits from the prior of a matched encoder.

Because a NINE embedding follows a known prior, one can sample that prior and generate. Two
generators are conditioned on the frozen encoder's clean embedding c = f(x) of the train digits:

- a conditional GAN (DCGAN-style generator and discriminator, the condition concatenated to the
  generator's noise and projected into the discriminator's last layer), and
- a deterministic decoder x̂ = g(c) trained with a Bernoulli reconstruction loss.

At generation time the condition is drawn from the prior (N(0, I) or U[0, 1]^d), not from data.
Plain-InfoNCE embeddings, which have no prior, are standardised per coordinate (train mean and std)
and sampled from N(0, I), the most favourable simple choice.

An evaluation classifier (a small CNN trained on the train digits) scores generated images: the
Fréchet distance between its penultimate features of generated and real test digits ("classifier
FID"), the class distribution of generated digits, and conditional consistency (the share of
G(z, f(x)) classified as x's class). Trained generators are stored like runs: ``<store>/<key>/``
with config, metrics, weights, provenance and a SHA-256 manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg, stats
from torch import nn

from nine.config import NineError, check_choice, check_int, check_positive
from nine.eval.metrics import sample_prior
from nine.eval.support import on_prior_support
from nine.store.artifacts import get_or_make
from nine.store.paths import RESULTS_DIR, RUNS_DIR, shown
from nine.store.provenance import provenance
from nine.store.runs import RUN_FORMAT, RunError, read_json_object, verify, write_json

KINDS = ("cgan", "decoder")
NOISE_DIM = 32
FILES = ("config.json", "metrics.json", "model.pt", "provenance.json", "manifest.json")


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
# The evaluation classifier and its scores


class Classifier(nn.Module):
    """A small CNN on 28×28 digits: two conv blocks, a 128-unit feature layer, ten logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(),
        )
        self.out = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


@dataclass(frozen=True)
class ClassifierConfig:
    """The evaluation classifier behind every classifier FID: its data and training budget."""

    dataset: str  # the digits it is trained on (the encoders' dataset)
    n_train: int  # how many train digits
    epochs: int
    seed: int

    def __post_init__(self) -> None:
        check_int("n_train", self.n_train, 10)
        check_int("epochs", self.epochs, 1)
        check_int("seed", self.seed, 0)

    @property
    def key(self) -> str:
        text = json.dumps({**asdict(self), "nine_version": RUN_FORMAT}, sort_keys=True)
        return "classifier-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def get_or_train_classifier(cfg: ClassifierConfig, x: torch.Tensor, y: torch.Tensor,
                            store: Path | None = None) -> Classifier:
    """The evaluation classifier of ``cfg``, stored like a run (config, weights, provenance, a SHA-256
    manifest; :mod:`nine.store.artifacts`) in ``results/generative`` or ``runs/generative`` and loaded from
    there, so that every FID of the book comes from the same weights on every machine; trained into
    ``store`` (default ``runs/generative``) only when missing and training is allowed."""
    if len(x) != cfg.n_train:
        raise ValueError(f"n_train={cfg.n_train} is not allowed for {len(x)} train digits: they must agree")

    def make(folder: Path) -> None:
        print(f"training the evaluation classifier {cfg.key} ({cfg.epochs} epochs)")
        started = time.time()
        model = train_classifier(x, y, cfg.epochs, cfg.seed)
        write_json(folder / "config.json", asdict(cfg))
        write_json(folder / "metrics.json", {"train_accuracy": classifier_accuracy(model, x, y),
                                             "wall_time_s": time.time() - started})
        torch.save(model.state_dict(), folder / "model.pt")
        write_json(folder / "provenance.json", provenance(torch.device("cpu"), started, time.time()))

    folder, made = get_or_make(cfg.key, _places(store), _target(store), FILES, make, "evaluation classifier")
    model = Classifier()
    model.load_state_dict(_weights(folder))
    if not made:
        print(f"loaded the evaluation classifier {cfg.key} from {shown(folder.parent)}")
    return model.eval()


def _target(store: Path | None) -> Path:
    return Path(store) if store is not None else RUNS_DIR / "generative"


def _places(store: Path | None) -> tuple[Path, ...]:
    return tuple(dict.fromkeys((RESULTS_DIR / "generative", RUNS_DIR / "generative", _target(store))))


def _weights(folder: Path) -> dict:
    try:
        return torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (verified bytes that still do not load)
        raise RunError(f"{folder / 'model.pt'} cannot be read ({err}); delete {folder} to train it again") from err


def train_classifier(x: torch.Tensor, y: torch.Tensor, epochs: int = 10, seed: int = 0) -> Classifier:
    """The evaluation classifier, trained with Adam and light shifts (±2 pixels) as augmentation."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Classifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for step in range(0, len(x), 128):
            idx = order[step : step + 128]
            shift = [int(s) for s in torch.randint(-2, 3, (2,), generator=generator)]
            batch = torch.roll(x[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(batch), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def _features_and_classes(model: Classifier, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    feats = torch.cat([model.features(x[i : i + 512]) for i in range(0, len(x), 512)])
    return feats.numpy().astype(np.float64), model.out(feats).argmax(1).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) between Gaussians fitted to two feature samples.

    1e-6·I is added to both covariances (ReLU features have dead units, so they are often singular).
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def evaluate_images(model: Classifier, generated: torch.Tensor, real: torch.Tensor) -> dict[str, Any]:
    """Classifier FID against real digits, the class distribution of the generated digits, and its
    distance to uniform (total variation; 0 = every digit equally often)."""
    fake_features, fake_classes = _features_and_classes(model, generated)
    real_features, _ = _features_and_classes(model, real)
    shares = np.bincount(fake_classes, minlength=10) / len(fake_classes)
    return {
        "fid": frechet_distance(fake_features, real_features),
        "class_shares": shares.tolist(),
        "class_tv_to_uniform": float(0.5 * np.abs(shares - 0.1).sum()),
        "class_entropy_bits": float(stats.entropy(shares, base=2)),
    }


@torch.no_grad()
def consistency(model: Classifier, generated: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images generated from f(x) that the classifier assigns to x's class."""
    _, classes = _features_and_classes(model, generated)
    return float((classes == labels.numpy()).mean())


def classifier_accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    _, classes = _features_and_classes(model, x)
    return float((classes == y.numpy()).mean())


def fid_reference(model: Classifier, a: torch.Tensor, b: torch.Tensor) -> float:
    """Classifier FID between two real samples: the floor a perfect generator would reach."""
    return frechet_distance(_features_and_classes(model, a)[0], _features_and_classes(model, b)[0])


# ---------------------------------------------------------------------------------------------
# The store


def load_generator(folder: Path) -> tuple[GenConfig, Generator, dict]:
    """Read a stored generator after verifying its manifest."""
    verify(folder, FILES)
    cfg = GenConfig(**read_json_object(folder / "config.json"))
    g = Generator(cfg.d, NOISE_DIM if cfg.kind == "cgan" else 0)
    g.load_state_dict(_weights(folder))
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

    folder, made = get_or_make(cfg.key, _places(store), _target(store), FILES, make, "generator")
    _, g, metrics = load_generator(folder)
    if not made and not quiet:
        print(f"loaded {cfg.kind} {cfg.key} from {shown(folder.parent)}")
    return g, metrics
