"""Critics T(u, y) that score every pair of a batch: u from one view, y from the other.

Both return the N×N score matrix S with S[i, j] = T(u_i, y_j); positives lie on the diagonal.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class QuadraticCritic(nn.Module):
    """T(u, y) = −‖y − u‖² / (2τ²), with a learnable temperature τ.

    For the Gaussian channel y = u + z, z ~ N(0, σ²I) this is the log-likelihood ratio up to terms
    that depend on y alone, so τ ≈ σ is optimal; τ starts at the noise scale. Cost O(N²d).
    """

    def __init__(self, tau: float) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"tau={tau!r} is not allowed: the critic temperature must be > 0")
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))

    @property
    def tau(self) -> float:
        return float(self.log_tau.detach().exp())

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """u, y: N×d → S: N×N."""
        sq_dist = (u.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None, :] - 2.0 * u @ y.T).clamp_min(0.0)
        return -sq_dist / (2.0 * torch.exp(2.0 * self.log_tau))


class MLPCritic(nn.Module):
    """T(u, y) = MLP([u; y]) with layers 2d → 256 → 256 → 1 and LeakyReLU(0.01). Cost O(N²·256²).

    The first layer on a concatenated pair equals W_u u + W_y y + b, so it is computed as two
    N×256 matmuls broadcast to N×N×256 rather than on N² concatenated vectors.
    """

    def __init__(self, d: int, hidden: int = 256) -> None:
        super().__init__()
        self.first_u = nn.Linear(d, hidden)
        self.first_y = nn.Linear(d, hidden, bias=False)
        self.rest = nn.Sequential(nn.LeakyReLU(0.01), nn.Linear(hidden, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """u, y: N×d → S: N×N."""
        pre = self.first_u(u)[:, None, :] + self.first_y(y)[None, :, :]  # N×N×hidden
        return self.rest(pre).squeeze(-1)
