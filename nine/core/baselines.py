"""The ways to match a representation to a prior that NINE is compared with, on the same encoder.

- **Adversarial prior matching** (Deep InfoMax, Hjelm et al., 2019): the encoder output, squashed
  onto the prior's support (head ``"adversarial"``), is trained on InfoNCE between two views plus
  ``adv_weight`` × the non-saturating adversarial term −log D(u); a discriminator D (an MLP
  d → 1000 → 200 → 1 with ReLUs, as in DIM) learns to tell u from prior samples.
- **VAE** (head ``"vae"``): the same encoder body outputs a mean and a log-variance; a decoder
  maps z back to the view; the loss is the Bernoulli reconstruction term + ``beta`` × KL(q ‖ N(0, I)).

Both are objectives of :mod:`nine.core.objectives` (``Adversarial``, ``VAE``), trained by
:func:`nine.core.train.train` like any run: their extra networks are the objective's networks, so
checkpoints, resuming, determinism and the run store work unchanged. One optimiser (Adam) updates everything: the discriminator's parameters are
frozen while the encoder's adversarial term is computed, so each network follows its own loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nine.core.critics import QuadraticCritic
from nine.priors import get as get_prior


class Discriminator(nn.Module):
    """D: u (N×d) → logits (N) of "u is a prior sample"."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 1000), nn.ReLU(), nn.Linear(1000, 200), nn.ReLU(), nn.Linear(200, 1))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u).squeeze(-1)


class AdversarialCritic(nn.Module):
    """The InfoNCE critic (quadratic) and the discriminator of adversarial prior matching."""

    def __init__(self, d: int, tau: float) -> None:
        super().__init__()
        self.score = QuadraticCritic(tau)
        self.discriminator = Discriminator(d)

    @property
    def tau(self) -> float:
        return self.score.tau

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.score(u, y)


class Decoder(nn.Module):
    """z (N×d) → logits of the view (N×C×H×W): Linear → 128×3×3 → three stride-2 transposed
    convolutions (3 → 6 → 12 → 24), resized bilinearly when the view is not 24×24."""

    def __init__(self, d: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape
        self.expand = nn.Sequential(nn.Linear(d, 128 * 3 * 3), nn.LeakyReLU(0.01))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(32, shape[0], 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.up(self.expand(z).view(-1, 128, 3, 3))
        if tuple(logits.shape[2:]) != self.shape[1:]:
            logits = F.interpolate(logits, size=self.shape[1:], mode="bilinear", align_corners=False)
        return logits


def sample_prior_like(u: torch.Tensor, prior: str) -> torch.Tensor:
    """As many prior samples as rows of u, on u's device (the adversary's "real" data)."""
    return get_prior(prior).sample_like(u)


def adversarial_terms(
    critic: AdversarialCritic, u: torch.Tensor, prior: str, gradient_penalty: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(encoder's non-saturating term −log D(u), discriminator's BCE on prior samples vs u.detach(),
    plus ``gradient_penalty``/2 × E‖∇D‖² on the prior samples: the R1 penalty of Mescheder et al. 2018).

    The discriminator's parameters are frozen while the encoder's term is computed, so the sum of the
    two can be minimised by one optimiser: the encoder gets gradients only from the first term, the
    discriminator only from the second.
    """
    discriminator = critic.discriminator
    for p in discriminator.parameters():
        p.requires_grad_(False)
    encoder_term = F.softplus(-discriminator(u)).mean()  # −log sigmoid(D(u))
    for p in discriminator.parameters():
        p.requires_grad_(True)
    samples = sample_prior_like(u, prior).requires_grad_(gradient_penalty > 0)
    real, fake = discriminator(samples), discriminator(u.detach())
    discriminator_term = F.softplus(-real).mean() + F.softplus(fake).mean()
    if gradient_penalty > 0:
        (grad,) = torch.autograd.grad(real.sum(), samples, create_graph=True)
        discriminator_term = discriminator_term + 0.5 * gradient_penalty * grad.pow(2).sum(1).mean()
    return encoder_term, discriminator_term


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag exp(log_var)) ‖ N(0, I)) in nats, summed over coordinates, averaged over rows (N×d in)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1).mean()


def vae_loss(decoder: Decoder, z: torch.Tensor, kl: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Bernoulli reconstruction (summed over pixels; targets clipped to [0, 1]) + beta × KL, per image."""
    logits = decoder(z)
    reconstruction = F.binary_cross_entropy_with_logits(logits, target.clamp(0.0, 1.0), reduction="sum") / len(z)
    return reconstruction + beta * kl
