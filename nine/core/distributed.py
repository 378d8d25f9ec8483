"""Training across processes with torch.distributed: the InfoNCE batch is the global batch.

Under ``torchrun`` (or any launcher that sets ``WORLD_SIZE``, ``RANK`` and ``MASTER_ADDR``),
:func:`setup` joins the process group (``nccl`` on GPUs, ``gloo`` on CPUs). Each process then
embeds its shard of every global batch; :func:`gather` concatenates the embeddings of all
processes with gradients flowing back to their owners, so the N×N score matrix, and with it the
ceiling log N, is that of the global batch. BatchNorm statistics are those of the global batch
too (:class:`GlobalBatchNorm`): the power constraint of the NINE head is global.

On GPUs the BatchNorm layers become torch's own ``SyncBatchNorm``; it refuses CPU tensors, so on CPUs
:class:`GlobalBatchNorm` does the same with a differentiable all-reduce (the multi-process CPU tests
use it, and ``benchmarks/gpu.py`` compares the two on a GPU).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import nn


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Only the main process (rank 0) writes artifacts and progress lines."""
    return rank() == 0


def setup() -> None:
    """Join the process group described by the launcher's environment (no-op for one process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def barrier() -> None:
    if active():
        dist.barrier()


def _quiet(collective, *args):
    """Run a differentiable collective of torch.distributed.nn.functional, whose FutureWarning (it
    points to a private module) would otherwise go to stderr at every step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return collective(*args)


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate x (n_local×…) over processes in rank order, differentiably; identity for one process."""
    if not active():
        return x
    return torch.cat(_quiet(dist_fn.all_gather, x), dim=0)


def _sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of x over processes; x itself for one process."""
    return _quiet(dist_fn.all_reduce, x) if active() else x


def all_gather_object(obj):
    """A list with ``obj`` from every process (rank order); ``[obj]`` for one process."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This process's contiguous slice of a global batch (the batch size must divide evenly)."""
    n = len(batch) // world_size()
    return batch[rank() * n : (rank() + 1) * n]


class GlobalBatchNorm(nn.Module):
    """BatchNorm whose training statistics are those of the global batch over all processes.

    Replaces a ``BatchNorm1d``/``BatchNorm2d`` (same buffers, affine parameters and momentum); in
    eval mode it uses the running statistics like the original.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps, self.momentum = bn.eps, bn.momentum
        self.weight, self.bias = bn.weight, bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0, *range(2, x.ndim)]
        shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = _sum(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.reshape(shape)
        var = _sum(centred.pow(2).sum(dims)) / n  # two passes: as accurate as BatchNorm
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach() * n / (n - 1))
        y = centred / torch.sqrt(var + self.eps).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` (in place) by a :class:`GlobalBatchNorm` sharing its state."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, GlobalBatchNorm(child))
        else:
            convert_batchnorm(child)
    return module


def wrap(module: nn.Module) -> nn.Module:
    """For several processes: global BatchNorm statistics and DistributedDataParallel; else the module itself.

    The module's own parameters and buffers are shared with the wrapper, so optimisers, checkpoints
    and evaluation use the unwrapped module.
    """
    if not active():
        return module
    if any(p.is_cuda for p in module.parameters()):
        nn.SyncBatchNorm.convert_sync_batchnorm(module)  # torch's own on GPUs (children replaced in place)
    else:
        convert_batchnorm(module)
    if not any(p.requires_grad for p in module.parameters()):
        return module
    device_ids = [torch.cuda.current_device()] if next(module.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
