"""The evaluation path: how a run's embeddings are put on its prior's support before any statistic."""

from __future__ import annotations

import numpy as np

from nine.config import PRIORS, check_choice
from nine.eval.metrics import standardise_like_train

LAWS = ("train", "running")


def on_prior_support(run, prior: str, law: str = "train") -> dict[str, np.ndarray]:
    """The run's train, test and test-view embeddings, as they are compared with ``prior``.

    ``law="train"`` (every statistic of the matching pages, every method alike): each coordinate is
    standardised with the clean train embeddings' mean and std, before Φ for the uniform prior
    (:func:`nine.eval.metrics.standardise_like_train`). For NINE this is its head with BatchNorm
    statistics of clean views; for plain InfoNCE, which has no prior, the most favourable affine map.
    ``law="running"``: the embeddings as the encoder gives them in eval mode, its BatchNorm using running
    statistics gathered on noisy random crops (plain InfoNCE is standardised as above, having nothing
    else); the conditions of the committed generators of :mod:`nine.experiments.generative`.
    Raises ValueError for a run trained towards a different prior than ``prior``.
    """
    check_choice("prior", prior, PRIORS)
    check_choice("law", law, LAWS)
    cfg = run.config
    if cfg.head != "plain" and cfg.prior != prior:
        raise ValueError(f"prior={prior!r} is not allowed for run {run.hash}: it was trained towards "
                         f"prior={cfg.prior!r}; evaluate it against {cfg.prior!r}")
    e = run.embeddings
    z = {name: e[name].astype(np.float64) for name in ("z_train", "z_test", "z_test_view")}
    if law == "running" and cfg.head != "plain":
        return z
    normalised = cfg.head in ("nine", "normalise") or (cfg.head == "adversarial" and cfg.adv_head == "normalise")
    if normalised:
        squash = "head"  # NINE's head: undo the prior's map (Φ for the uniform prior, none for the Gaussian)
    elif cfg.head == "adversarial":
        squash = cfg.law.adversary_squash  # the sigmoid ("logistic") for the uniform prior, else the identity
        squash = None if squash == "identity" else squash
    else:
        squash = None
    return standardise_like_train(z["z_train"], z, squash, prior)
