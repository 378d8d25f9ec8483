"""The metrics and embeddings stored with every finished run (what ``metrics.json`` and
``embeddings.npz`` of :mod:`nine.store` hold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nine.config import RunConfig
from nine.core.capacity import infonce_ceiling
from nine.core.train import TrainResult, embed
from nine.data import Split, evaluation_view, training_view
from nine.eval.metrics import ks_per_coordinate, matching_report

VIEW_SEED = 0  # the augmented test views on which ks_view is measured


def evaluate_run(cfg: RunConfig, result: TrainResult, split: Split) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metrics, embeddings) of a trained run.

    Embeddings: clean train and test embeddings (``evaluation_view``), and the test embeddings of one
    augmented view per image (``z_test_view``: the law the objective acts on), with their labels.
    Metrics: :func:`~nine.eval.metrics.matching_report` of the clean embeddings, KS of the views,
    the final training InfoNCE, the test InfoNCE (mean and std over 10 batches), the channel capacity,
    log N, the split sizes, and the objective's diagnostics (the critic's τ).
    """
    encoder, networks, objective = result.encoder, result.networks, result.objective
    clean, view = evaluation_view(cfg), training_view(cfg)
    z_train, z_test = embed(encoder, split.x_train, clean), embed(encoder, split.x_test, clean)
    views = torch.Generator(device=next(encoder.parameters()).device).manual_seed(VIEW_SEED)
    z_test_view = embed(encoder, split.x_test, lambda b: view(b, views))
    infonce_test, infonce_test_std = objective.estimate(encoder, networks, split.x_test, view)
    metrics = matching_report(z_train.numpy(), split.y_train.numpy(), z_test.numpy(), split.y_test.numpy(), cfg.prior)
    ks_view, ks_view_pvalue = ks_per_coordinate(z_test_view.numpy(), cfg.prior)
    metrics.update(
        ks_view=ks_view.tolist(),
        ks_view_pvalue=ks_view_pvalue.tolist(),
        ks_view_mean=float(ks_view.mean()),
        infonce_train_final=result.history[-1]["infonce"],
        infonce_test=infonce_test,
        infonce_test_std=infonce_test_std,
        capacity=objective.capacity(),
        log_n=float(infonce_ceiling(min(cfg.batch_size, len(split.x_test)))),
        n_train=len(split.x_train),
        n_test=len(split.x_test),
        **objective.diagnostics(networks),
    )
    embeddings = {
        "z_train": z_train.numpy(), "y_train": split.y_train.numpy(),
        "z_test": z_test.numpy(), "z_test_view": z_test_view.numpy(), "y_test": split.y_test.numpy(),
    }
    return metrics, embeddings
