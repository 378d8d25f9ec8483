"""One object per method: the head it puts on the encoder, the networks it trains beside it, its loss.

``OBJECTIVES`` maps a config's ``head`` to its class, so the trainer never branches on a method:

- ``nine``: normalise, then add the channel noise Z to one view (both with ``noise_on="both"``);
  InfoNCE between the views (the method of the paper);
- ``normalise``: the same normalisation, no noise (a reference);
- ``plain``: plain InfoNCE, neither normalisation nor noise (a reference);
- ``adversarial``: InfoNCE plus Deep InfoMax's adversarial prior matching (:mod:`nine.core.baselines`);
- ``vae``: a VAE with the same encoder body (:mod:`nine.core.baselines`).

An objective is made from a :class:`~nine.config.RunConfig` (:func:`make_objective`); its
:meth:`Objective.build` makes the encoder and the networks in a fixed order, so that a seed gives
the same initial weights.
"""

from __future__ import annotations

import math
from typing import Callable, ClassVar

import torch
from torch import nn

from nine.config import HEADS, RunConfig
from nine.core import distributed
from nine.core.baselines import AdversarialCritic, Decoder, adversarial_terms, gaussian_kl, vae_loss
from nine.core.critics import MLPCritic, QuadraticCritic
from nine.core.losses import infonce
from nine.core.models import BODIES, ChannelNoise, Encoder, Normalise, PosteriorMean, Squash

View = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


class Objective:
    """A method: its head, its networks and its loss. Subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    multi_process: ClassVar[bool] = True  # whether it trains across several processes
    noise: ChannelNoise | None = None  # the channel noise, for methods that inject it

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def build(self) -> tuple[Encoder, nn.Module]:
        """A fresh encoder with this method's head, then the method's networks, created in that order
        (the order in which they draw their initial weights from the global RNG)."""
        encoder = Encoder(self.outputs, self.head(), self.cfg.encoder, self.cfg.numerics)
        return encoder, self.networks()

    def head(self) -> nn.Module:
        """The module the encoder ends with (embedding = head(MLP output))."""
        return nn.Identity()

    @property
    def outputs(self) -> int:
        """Width of the encoder's MLP output that the head reads."""
        return self.cfg.d

    def networks(self) -> nn.Module:
        """What is trained beside the encoder (the critic, a discriminator, a decoder)."""
        return make_critic(self.cfg)

    def loss(
        self, encoder: nn.Module, networks: nn.Module, x: torch.Tensor, view: View, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss on this process's shard x of the global batch, and the InfoNCE estimate
        (nats) it implies. The views come from ``generator``, the channel noise from the global RNG."""
        u, y = self.pair(encoder, x, view, generator)
        return infonce(networks(distributed.gather(u), distributed.gather(y)), self.cfg.softmax)

    def pair(
        self, encoder: nn.Module, x: torch.Tensor, view: View, generator: torch.Generator,
        noise: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """u = f(X') and y = f(X) + Z for two views of each image (u noisy too with ``noise_on="both"``);
        with ``views="same"`` one view feeds both branches, y = f(X') + Z, so only the noise differs.

        Z is drawn from ``noise``, else from the global torch RNG; noise is added whatever the
        encoder's mode, so the same function serves training and evaluation."""
        u = encoder(view(x, generator), channel=True)
        y = u if self.cfg.views == "same" else encoder(view(x, generator), channel=True)
        if self.noise is not None:
            y = y + self.noise.sample(y.shape, y.device, noise)
            if self.cfg.noise_on == "both":
                u = u + self.noise.sample(u.shape, u.device, noise)
        return u, y

    @torch.no_grad()
    def estimate(
        self, encoder: nn.Module, networks: nn.Module, x: torch.Tensor, view: View, draws: int = 10, seed: int = 0
    ) -> tuple[float, float]:
        """InfoNCE estimate (nats) of I(f(X'); f(X) + Z) on held-out images x, in eval mode.

        Each draw takes N = min(batch_size, len(x)) random images, two random views of each and fresh
        channel noise. Returns (mean, std) over the draws; each is ≤ log N."""
        encoder.eval()
        networks.eval()
        device = next(encoder.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        n = min(self.cfg.batch_size, len(x))
        values = []
        for _ in range(draws):
            batch = x[torch.randperm(len(x), generator=generator, device=device)[:n].cpu()].to(device)
            u, y = self.pair(encoder, batch, view, generator, noise=generator)
            values.append(float(infonce(networks(u, y), self.cfg.softmax)[1]))
        mean = sum(values) / draws
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(draws - 1, 1))
        return mean, std

    def capacity(self) -> float:
        """Capacity of the method's noise channel in nats; infinite without noise."""
        return math.inf

    def label(self) -> str:
        """How a run of this method is named in tables and legends."""
        raise NotImplementedError

    def parameter_groups(self, encoder: nn.Module, networks: nn.Module) -> list[dict]:
        """Adam's parameter groups: every parameter at ``cfg.lr``, and the quadratic critic's log τ in a
        group of its own at ``cfg.tau_lr``. Adam updates each parameter on its own, so with
        ``tau_lr == lr`` this is exactly one group (as every run before the field was trained)."""
        named = list(networks.named_parameters())
        temperature = [p for name, p in named if name.endswith("log_tau")]
        rest = [p for name, p in named if not name.endswith("log_tau")]
        groups = [{"params": [*encoder.parameters(), *rest]}]
        return groups + [{"params": temperature, "lr": self.cfg.tau_lr}] if temperature else groups

    def diagnostics(self, networks: nn.Module) -> dict[str, float]:
        """Figures of the networks worth logging every epoch (the critic's temperature)."""
        tau = getattr(unwrap(networks), "tau", None)
        return {} if tau is None else {"tau": tau}


def make_critic(cfg: RunConfig) -> nn.Module:
    """The critic named by ``cfg.critic``; the quadratic one starts at τ = std of y − u."""
    if cfg.critic == "mlp":
        return MLPCritic(cfg.d)
    return QuadraticCritic(tau=critic_start(cfg))


def critic_start(cfg: RunConfig) -> float:
    """The quadratic critic's initial temperature: the std of one coordinate of y − u."""
    branches = 2 if cfg.noise_on == "both" else 1
    return cfg.noise_std * math.sqrt(branches)


OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` the objective of configs with ``head=cls.name``."""
    OBJECTIVES[cls.name] = cls
    return cls


@register
class NINE(Objective):
    """Normalise, inject noise, InfoNCE: the method of the paper."""

    name = "nine"

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.noise = ChannelNoise(cfg.prior, cfg.noise_level)

    def head(self) -> nn.Module:
        return Normalise(self.cfg.d, self.cfg.prior)

    def capacity(self) -> float:
        return self.cfg.law.capacity(self.cfg.noise_level, self.cfg.d)

    def label(self) -> str:
        return f"NINE {self.cfg.law.label(self.cfg.noise_level)}"


@register
class NormaliseOnly(Objective):
    """The NINE normalisation without noise: what the noise adds, seen by its absence."""

    name = "normalise"

    def head(self) -> nn.Module:
        return Normalise(self.cfg.d, self.cfg.prior)

    def label(self) -> str:
        return "normalised, no noise"


@register
class Plain(Objective):
    """Plain InfoNCE: no normalisation, no noise."""

    name = "plain"

    def label(self) -> str:
        return "plain InfoNCE"


@register
class Adversarial(Objective):
    """InfoNCE plus ``adv_weight`` × the adversarial prior-matching term of Deep InfoMax."""

    name = "adversarial"
    multi_process = False

    def head(self) -> nn.Module:
        return Normalise(self.cfg.d, self.cfg.prior) if self.cfg.adv_head == "normalise" else Squash(self.cfg.prior)

    def parameter_groups(self, encoder: nn.Module, networks: nn.Module) -> list[dict]:
        """As every objective's, with the discriminator in a group of its own at ``adv_lr_ratio`` × lr
        when that ratio is not 1 (with 1, the groups every earlier run was trained with)."""
        groups = super().parameter_groups(encoder, networks)
        if self.cfg.adv_lr_ratio == 1:
            return groups
        discriminator = list(unwrap(networks).discriminator.parameters())
        ids = {id(p) for p in discriminator}
        groups[0]["params"] = [p for p in groups[0]["params"] if id(p) not in ids]
        return groups + [{"params": discriminator, "lr": self.cfg.lr * self.cfg.adv_lr_ratio}]

    def networks(self) -> nn.Module:
        return AdversarialCritic(self.cfg.d, critic_start(self.cfg))

    def loss(self, encoder, networks, x, view, generator):
        u, y = self.pair(encoder, x, view, generator)
        loss, estimate = infonce(networks(distributed.gather(u), distributed.gather(y)), self.cfg.softmax)
        encoder_term, discriminator_term = adversarial_terms(unwrap(networks), u, self.cfg.prior, self.cfg.adv_gp)
        return loss + self.cfg.adv_weight * encoder_term + discriminator_term, estimate

    def label(self) -> str:
        tuned = [f"{self.cfg.adv_head} head"] if self.cfg.adv_head != "squash" else []
        tuned += [f"R1 {self.cfg.adv_gp:g}"] if self.cfg.adv_gp else []
        tuned += [f"D rate ×{self.cfg.adv_lr_ratio:g}"] if self.cfg.adv_lr_ratio != 1 else []
        return f"adversarial matching (weight {self.cfg.adv_weight:g}{''.join(', ' + t for t in tuned)})"


@register
class VAE(Objective):
    """A (β-)VAE: Bernoulli reconstruction of the view + β × KL(q(z|x) ‖ N(0, I)); no InfoNCE."""

    name = "vae"
    multi_process = False

    def head(self) -> nn.Module:
        return PosteriorMean()

    @property
    def outputs(self) -> int:
        return 2 * self.cfg.d  # a mean and a log-variance

    def networks(self) -> nn.Module:
        return Decoder(self.cfg.d, BODIES[self.cfg.encoder][2])

    def loss(self, encoder, networks, x, view, generator):
        target = view(x, generator)
        mean, log_var = unwrap(encoder).features(target).chunk(2, dim=1)
        kl = gaussian_kl(mean, log_var)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return vae_loss(networks, z, kl, target, self.cfg.beta), torch.tensor(float("nan"))

    def estimate(self, encoder, networks, x, view, draws=10, seed=0):
        return math.nan, math.nan  # a VAE has no InfoNCE

    def label(self) -> str:
        return "VAE" if self.cfg.beta == 1 else f"β-VAE (β={self.cfg.beta:g})"


assert set(OBJECTIVES) == set(HEADS), "every head a config allows has an objective"


def make_objective(cfg: RunConfig) -> Objective:
    """The objective of ``cfg.head``."""
    return OBJECTIVES[cfg.head](cfg)
