"""The evaluation classifier of generated digits and its scores.

A small CNN trained on the train digits scores generated images: the Fréchet distance between its
penultimate features of generated and real test digits ("classifier FID"), the class distribution of
generated digits, and conditional consistency (the share of G(z, f(x)) classified as x's class). It is
stored like a run (:mod:`nine.store.artifacts`), so that every FID of the book comes from the same weights.
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

from nine.config import check_int
from nine.store.artifacts import MODEL_FILES, get_or_make, model_places, model_target, model_weights
from nine.store.paths import shown
from nine.store.provenance import provenance
from nine.store.runs import RUN_FORMAT, write_json


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

    folder, made = get_or_make(cfg.key, model_places(store), model_target(store), MODEL_FILES, make, "evaluation classifier")
    model = Classifier()
    model.load_state_dict(model_weights(folder))
    if not made:
        print(f"loaded the evaluation classifier {cfg.key} from {shown(folder.parent)}")
    return model.eval()


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
