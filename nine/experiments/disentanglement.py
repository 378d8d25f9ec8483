"""The disentanglement page's scores of one run: MIG, DCI and the linear R² of its embedding against
dSprites' generative factors, as it is and in a random rotation. Stored as an evaluation
(:mod:`nine.store.evaluations`): the forests of DCI take about ten seconds a run."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nine.data.datasets import load_dsprites
from nine.eval.disentanglement import dci, factor_r2, mig, random_rotation
from nine.store.evaluations import evaluation

SCORES = ("MIG", "DCI disentanglement", "DCI completeness", "DCI informativeness", "linear R²")


def scores(z_train: np.ndarray, f_train: np.ndarray, z_test: np.ndarray, f_test: np.ndarray, seed: int) -> dict[str, float]:
    """Every score of :data:`SCORES`: MIG on the test latents; DCI and R² fitted on the train latents."""
    d_c_i = dci(z_train, f_train, z_test, f_test, seed=seed)
    return {"MIG": mig(z_test, f_test), "DCI disentanglement": d_c_i["disentanglement"],
            "DCI completeness": d_c_i["completeness"], "DCI informativeness": d_c_i["informativeness"],
            "linear R²": factor_r2(z_train, f_train, z_test, f_test)}


@lru_cache(maxsize=4)
def factors(n_train: int | None, n_test: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The factor indices of the train and test sprites (drawn once per process)."""
    split = load_dsprites(n_train, n_test)
    return split.factors_train, split.factors_test


@evaluation("nine.experiments.disentanglement", "nine.eval.disentanglement", "nine.data.dsprites",
            "nine.data.datasets")
def disentanglement_scores(run, rotated: bool, seed: int, n_fit: int) -> dict[str, float]:
    """:func:`scores` of the run's embedding (``rotated``: turned by the Haar rotation of seed 100 + ``seed``
    about the train mean), the forests and regressions fitted on the first ``n_fit`` train sprites."""
    f_train, f_test = factors(run.config.n_train, run.config.n_test)
    z_train, z_test = run.embeddings["z_train"].astype(float)[:n_fit], run.embeddings["z_test"].astype(float)
    if rotated:
        rotation = random_rotation(z_train.shape[1], seed=100 + seed)
        centre = z_train.mean(0)
        z_train, z_test = (z_train - centre) @ rotation, (z_test - centre) @ rotation
    return scores(z_train, f_train[:n_fit], z_test, f_test, seed)
