"""Run under torchrun by test_distributed.py: one InfoNCE step on a shard of a fixed global batch.

Views are the deterministic centre crops and the channel noise is a fixed global tensor, so the
global-batch computation is exactly defined; each rank writes its loss and gradients to OUT.<rank>.pt.
"""

import sys

import torch

from nine.config import make_config
from nine.core import distributed
from nine.core.objectives import make_objective
from nine.data import centre_view


def one_step(global_x, global_noise, cfg):
    """Loss and gradients of one InfoNCE step; in float64 so that only the algorithm can differ."""
    torch.manual_seed(0)
    objective = make_objective(cfg)
    encoder, critic = (module.double() for module in objective.build())
    objective.noise.sample = lambda shape, device, generator=None: distributed.shard(global_noise)
    model, scorer = distributed.wrap(encoder), distributed.wrap(critic)
    loss, _ = objective.loss(model, scorer, distributed.shard(global_x), lambda x, generator: centre_view(x), None)
    loss.backward()
    grads = {f"encoder.{k}": p.grad for k, p in encoder.named_parameters()}
    grads.update({f"critic.{k}": p.grad for k, p in critic.named_parameters()})
    return {"loss": loss.detach(), "grads": grads, "running_var": encoder.head.norm.running_var.clone()}


def fixed_batch(n=16, d=3):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g, dtype=torch.float64), 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)


# float32: the comparison with one process is to 1e-6, tighter than bfloat16 rounds
CFG = dict(dataset="digits", n_train=64, n_test=32, batch_size=16, epochs=1, d=3, sigma=0.3, numerics="fp32")

if __name__ == "__main__":
    distributed.setup()
    x, noise = fixed_batch()
    torch.save(one_step(x, noise, make_config("smoke", **CFG)), f"{sys.argv[1]}.{distributed.rank()}.pt")
