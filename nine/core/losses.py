"""InfoNCE as a pure function of the score matrix."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nine.config import SOFTMAX_AXES


def infonce(scores: torch.Tensor, softmax: str = "both") -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE loss and the mutual-information estimate it implies, in nats.

    scores: N×N with scores[i, j] = T(u_i, y_j), u the clean branch, y the noisy one; positives on
    the diagonal. softmax="clean": for each y_j, a cross-entropy over the candidates u_1..u_N
    (columns); softmax="both": the mean of that and the row-wise one over y_1..y_N (symmetric).
    Returns (loss, estimate) with estimate = log N − loss, which never exceeds log N.

    Terms of the critic that depend on y alone cancel in the "clean" direction. So when u is the
    channel's own input (y = u + z), the quadratic critic −‖y − u‖²/(2σ²) is the optimal critic of the
    Gaussian channel whatever the law of u; in the row direction the optimal critic also needs log p(y).
    With two views (u = f(X'), y = f(X'') + z) u is not the channel's input, the optimal critic is
    log p(y | u) / p(y), which is not quadratic in general, and the quadratic critic is only a choice.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"scores of shape {tuple(scores.shape)} are not allowed: need a square N×N matrix, N >= 2")
    if softmax not in SOFTMAX_AXES:
        raise ValueError(f"softmax={softmax!r} is not allowed: must be one of {', '.join(SOFTMAX_AXES)}")
    n = scores.shape[0]
    target = torch.arange(n, device=scores.device)
    loss = F.cross_entropy(scores.T, target)
    if softmax == "both":
        loss = 0.5 * (loss + F.cross_entropy(scores, target))
    return loss, math.log(n) - loss.detach()
