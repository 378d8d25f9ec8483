"""The convolutional body computed only where its max-pools read: ``numerics="fused"``.

Each block of :func:`nine.core.models.conv_body` is Conv(3×3) → MaxPool(2) → BatchNorm → LeakyReLU. Computed by
PyTorch's kernels, most of the first block's time goes to memory, not arithmetic: its convolution writes an
N×32×22×22 tensor, the pool reads it back and keeps int64 indices, and the pool's backward fills a zero tensor of
that size for the convolution's backward to read again. Without bf16 units that block is over a third of a step.

- **The first block** (one input channel, the images; no gradient for them) is one compiled C kernel,
  ``conv_pool.c``: each pooled value is the largest of its window's four convolution outputs, each of them
  bias + Σ w_k p_k summed in a fixed order; the first maximum in row-major order wins, as in PyTorch's max-pool,
  and one byte per pooled value records which place won. The backward pass sends each window's gradient to that
  place, straight into the weights' and the bias's gradients. It is built once per machine by the C compiler
  (``cc``, or ``$CC``) without contracting multiplies and adds, so its results do not depend on the instruction
  set: the same bits from an AVX-512, an AVX2 or a plain build (a test checks this).
- **The other blocks**: a 2×2 max-pool with stride 2 reads 2⌊o/2⌋ of a convolution's o rows and columns. Where o is
  odd (the second block: 9 → 4), the convolution is computed on its input cropped to what those rows need
  (11 → 10): a fifth less arithmetic for the same pooled values.

The same functions of the same weights (same parameters, same ``state_dict``) as the other numerics; the sums are
taken in another order than oneDNN's convolution, so the bits differ from ``channels_last``, and ``fused`` is a
numerics of its own in a run's config and hash. Tensors are channels-last throughout.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from nine.config import ConfigError, c_compiler

SOURCE = Path(__file__).with_name("conv_pool.c")
BLOCK = 16  # the kernel's backward sums this many channels at once: the block's channels must be a multiple of it
# compiler flags per instruction set torch's own kernels use (so that a CPU class stood in for with
# ATEN_CPU_CAPABILITY is stood in for here too); -ffp-contract=off keeps one rounding per operation, so the
# results are the same whatever the vector width
ISA_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mprefer-vector-width=512"],
    "AVX2": ["-mavx2", "-mfma"],
}
FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math"]


class KernelUnavailable(ConfigError):
    """The kernel of ``numerics="fused"`` cannot be built here (no C compiler, or it failed)."""


def cache_dir() -> Path:
    """Where built kernels are kept: ``$NINE_CACHE``, else ``$XDG_CACHE_HOME/nine``, else ``~/.cache/nine``."""
    if os.environ.get("NINE_CACHE"):
        return Path(os.environ["NINE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nine"


@lru_cache(maxsize=None)
def kernel(isa: str | None = None) -> ctypes.CDLL:
    """The compiled ``conv_pool.c`` for the instruction set ``isa`` (a key of :data:`ISA_FLAGS`, "DEFAULT" for
    none; by default that of torch's own kernels in this process): built once with the C compiler ``$CC``
    (default ``cc``) into :func:`cache_dir`, keyed by the source, the flags and the compiler, and loaded from
    there afterwards. :class:`KernelUnavailable` when it cannot be built."""
    compiler, found = os.environ.get("CC", "cc"), c_compiler()
    if found is None:
        raise KernelUnavailable(f"numerics='fused' needs a C compiler to build its kernel ({SOURCE.name}): "
                                f"{compiler!r} was not found (set CC, or install gcc or clang); or use numerics='channels_last'")
    flags = FLAGS + ISA_FLAGS.get(isa or torch.backends.cpu.get_cpu_capability(), [])
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([os.path.realpath(found), *flags]).encode()).hexdigest()[:16]
    library = cache_dir() / "kernels" / f"conv_pool-{key}.so"
    if not library.is_file():
        library.parent.mkdir(parents=True, exist_ok=True)
        partial = library.with_name(f".{library.name}.{os.getpid()}")
        built = subprocess.run([found, *flags, str(SOURCE), "-o", str(partial)], capture_output=True, text=True)
        if built.returncode != 0:
            partial.unlink(missing_ok=True)
            error = (built.stderr.strip().splitlines() or ["no message"])[0]
            raise KernelUnavailable(f"numerics='fused': building its kernel with {compiler} failed ({error}); "
                                    f"use numerics='channels_last'")
        os.replace(partial, library)  # whole or not at all, also when two workers build it at once
    lib = ctypes.CDLL(str(library))
    for name in ("conv_pool_forward", "conv_pool_backward"):  # five arrays, then n, H, W, C
        function = getattr(lib, name)
        function.argtypes, function.restype = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 4, ctypes.c_int
    return lib


class ConvPool(torch.autograd.Function):
    """max_pool2d(conv2d(x, weight, bias), 2) of a one-channel x and a 3×3 kernel, by the compiled kernel
    (``conv_pool.c``): one pass, keeping only which place of each window won. No gradient for x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            raise ConfigError(f"numerics='fused' is not allowed on {x.device.type}: its kernel runs on the CPU; "
                              f"use numerics='bf16' or 'channels_last'")
        n, _, height, width = x.shape
        c, h, w = weight.shape[0], (height - 2) // 2, (width - 2) // 2
        x = x.detach().float().contiguous()
        out = x.new_empty(n, h, w, c)
        winner = torch.empty(n, h, w, c, dtype=torch.uint8)
        weight32, bias32 = weight.detach().float().reshape(c, 9).contiguous(), bias.detach().float().contiguous()
        if kernel().conv_pool_forward(x.data_ptr(), weight32.data_ptr(), bias32.data_ptr(), out.data_ptr(),
                                      winner.data_ptr(), n, height, width, c):
            raise MemoryError("conv_pool_forward: out of memory")
        ctx.save_for_backward(x, winner)
        ctx.weight_dtype = weight.dtype
        return out.permute(0, 3, 1, 2)  # N×C×h×w, channels-last

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, winner = ctx.saved_tensors
        n, h, w, c = winner.shape
        grad = grad.float().permute(0, 2, 3, 1).contiguous()
        weight, bias = torch.empty(c, 9, dtype=torch.float64), torch.empty(c, dtype=torch.float64)
        if kernel().conv_pool_backward(x.data_ptr(), grad.data_ptr(), winner.data_ptr(), weight.data_ptr(), bias.data_ptr(),
                                       n, x.shape[2], x.shape[3], c):
            raise ValueError(f"conv_pool_backward: {c} channels is not a multiple of {BLOCK}")
        return None, weight.reshape(c, 1, 3, 3).to(ctx.weight_dtype), bias.to(ctx.weight_dtype)


class Crop(torch.autograd.Function):
    """x[..., :height, :width] as a dense channels-last tensor, whose gradient is channels-last too (slicing's own
    backward makes a default-layout one, which sends every layer below onto slower kernels)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        ctx.shape = x.shape
        return x[..., :height, :width].contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        full = grad.new_zeros(ctx.shape).contiguous(memory_format=torch.channels_last)
        full[..., : grad.shape[-2], : grad.shape[-1]] = grad
        return full, None, None


def _cropped(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """x cropped to the rows and columns a following 2×2 max-pool (stride 2) reads of ``conv``'s output."""
    (kh, kw), (height, width) = conv.kernel_size, x.shape[-2:]
    out_h, out_w = height - kh + 1, width - kw + 1
    if out_h % 2 == 0 and out_w % 2 == 0:
        return x  # the pool reads all of it
    return Crop.apply(x, out_h // 2 * 2 + kh - 1, out_w // 2 * 2 + kw - 1)


def fusable(body: nn.Module) -> bool:
    """Whether ``body`` is made of Conv(3×3, stride 1, no padding) → MaxPool(2) → … blocks (:func:`forward` can
    compute it); the ResNet body is not, and computes as ``channels_last`` under ``fused``."""
    layers = list(body) if isinstance(body, nn.Sequential) else []
    blocks = [layers[i : i + 2] for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    return bool(blocks) and all(
        len(block) == 2 and isinstance(block[1], nn.MaxPool2d) and block[1].kernel_size == 2
        and block[1].stride == 2 and block[1].padding == 0 and block[0].kernel_size == (3, 3)
        and block[0].stride == (1, 1) and block[0].padding == (0, 0) and block[0].dilation == (1, 1)
        and block[0].bias is not None and block[0].groups == 1
        for block in blocks
    )


def forward(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The body's output for x (N×C×H×W, channels-last), computing each convolution only where its pool reads."""
    layers = list(body)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.Conv2d):
            if layer.in_channels == 1 and layer.out_channels % BLOCK == 0 and not x.requires_grad:  # the images
                x = ConvPool.apply(x, layer.weight, layer.bias)
            else:
                x = layers[i + 1](layer(_cropped(layer, x)))
            i += 2  # the pool is done
            continue
        x = layer(x)
        i += 1
    return x
