"""numerics="fused": the first block's compiled kernel and the cropped convolutions compute what PyTorch's
convolution and max-pool compute, and the kernel's bits do not depend on the instruction set it was built for."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from nine.config import ConfigError, make_config
from nine.core import fused
from nine.core.models import Encoder, Normalise


def _reference(x, weight, bias):
    return F.max_pool2d(F.conv2d(x, weight, bias), 2)


def _both(x, weight, bias, grad):
    """(output, weight gradient, bias gradient) of PyTorch's conv + pool and of the kernel."""
    out = []
    for f in (_reference, fused.ConvPool.apply):
        w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
        y = f(x, w, b)
        y.backward(grad)
        out.append((y.detach(), w.grad, b.grad))
    return out


def test_the_kernel_is_pytorchs_conv_and_pool_exactly_where_the_sums_are_exact():
    """Small integers make every sum exact in float32, so any difference would be the kernel's: a wrong tap,
    a wrong window, or a tie sent to another place than PyTorch's first maximum (zeros make many ties)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (16, 1, 24, 24), generator=g).float()
    x[:, :, :8] = 0  # whole windows of equal values
    weight = torch.randint(-2, 3, (32, 1, 3, 3), generator=g).float()
    bias = torch.randint(-2, 3, (32,), generator=g).float()
    grad = torch.randint(-3, 4, (16, 32, 11, 11), generator=g).float()
    (y, gw, gb), (fy, fgw, fgb) = _both(x, weight, bias, grad)
    assert torch.equal(y, fy) and torch.equal(gw, fgw) and torch.equal(gb, fgb)
    assert fy.is_contiguous(memory_format=torch.channels_last)


def test_the_kernel_agrees_with_pytorch_on_real_values_and_odd_sizes():
    g = torch.Generator().manual_seed(1)
    for size in (24, 28, 13):  # MNIST views, dSprites, and an odd size whose pool drops a row and a column
        x = torch.rand(8, 1, size, size, generator=g)
        weight, bias = torch.randn(16, 1, 3, 3, generator=g), torch.randn(16, generator=g)
        grad = torch.randn(8, 16, (size - 2) // 2, (size - 2) // 2, generator=g)
        for a, b in zip(*_both(x, weight, bias, grad)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_the_kernels_bits_are_the_same_for_every_instruction_set():
    """Built without contracting multiplies and adds, the AVX-512, AVX2 and plain builds give equal bits (each
    build is only run where this CPU has its instructions)."""
    flags = open("/proc/cpuinfo").read() if sys.platform == "linux" else ""
    isas = ["DEFAULT"] + [isa for isa, flag in (("AVX2", "avx2"), ("AVX512", "avx512bw")) if f" {flag}" in flags]
    g = torch.Generator().manual_seed(2)
    x, weight, bias = torch.rand(32, 1, 24, 24, generator=g), torch.randn(32, 9, generator=g), torch.randn(32, generator=g)
    grad = torch.randn(32, 11, 11, 32, generator=g)
    results = []
    for isa in isas:
        lib = fused.kernel(isa)
        out, won = torch.empty(32, 11, 11, 32), torch.empty(32, 11, 11, 32, dtype=torch.uint8)
        gw, gb = torch.empty(32, 9, dtype=torch.float64), torch.empty(32, dtype=torch.float64)
        assert lib.conv_pool_forward(x.data_ptr(), weight.data_ptr(), bias.data_ptr(), out.data_ptr(), won.data_ptr(), 32, 24, 24, 32) == 0
        assert lib.conv_pool_backward(x.data_ptr(), grad.data_ptr(), won.data_ptr(), gw.data_ptr(), gb.data_ptr(), 32, 24, 24, 32) == 0
        results.append((out, won, gw, gb))
    assert len({id(fused.kernel(isa)) for isa in isas}) == len(isas)  # separate builds
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


@pytest.mark.parametrize("body, size", [("mnist-cnn", 24), ("sprites-cnn", 28)])
def test_the_fused_encoder_is_the_same_function_of_the_same_weights(body, size):
    """Both conv bodies: MNIST views (24: only the second block is cropped) and dSprites (28: the second and the
    third are)."""
    x = torch.rand(64, 1, size, size, generator=torch.Generator().manual_seed(3))
    encoders = {}
    for numerics in ("channels_last", "fused"):
        torch.manual_seed(0)
        encoders[numerics] = Encoder(8, Normalise(8), body=body, numerics=numerics).train()
    assert encoders["fused"].fuse and not encoders["channels_last"].fuse
    assert encoders["fused"].state_dict().keys() == encoders["channels_last"].state_dict().keys()
    outputs, grads = {}, {}
    for numerics, encoder in encoders.items():
        h = encoder.features(x)
        h.square().sum().backward()
        outputs[numerics] = h.detach()
        grads[numerics] = {name: p.grad for name, p in encoder.named_parameters()}
    torch.testing.assert_close(outputs["fused"], outputs["channels_last"], rtol=1e-4, atol=1e-5)
    for name, grad in grads["channels_last"].items():
        torch.testing.assert_close(grads["fused"][name], grad, rtol=1e-3, atol=1e-4)
    assert not torch.equal(outputs["fused"], outputs["channels_last"])  # another order of sums: a numerics of its own


def test_the_resnet_body_is_not_fused_and_computes_as_channels_last():
    from nine.core.models import PosteriorMean

    torch.manual_seed(0)
    encoder = Encoder(8, PosteriorMean(), body="resnet18", numerics="fused")
    assert not encoder.fuse and not fused.fusable(encoder.body)


def test_the_crop_gives_the_pool_the_same_values_and_a_channels_last_gradient():
    g = torch.Generator().manual_seed(4)
    conv = torch.nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, 11, 11, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
    full = F.max_pool2d(conv(x), 2)
    cropped_input = fused._cropped(conv, x)
    assert cropped_input.shape[-2:] == (10, 10)
    torch.testing.assert_close(F.max_pool2d(conv(cropped_input), 2), full)
    (grad,) = torch.autograd.grad(F.max_pool2d(conv(cropped_input), 2).sum(), x)
    assert grad.is_contiguous(memory_format=torch.channels_last) and grad.shape == x.shape
    torch.testing.assert_close(grad, torch.autograd.grad(full.sum(), x)[0])
    assert torch.count_nonzero(grad[..., 10, :]) == 0  # the row the pool never reads


def test_without_a_compiler_fused_is_refused_in_one_line_and_auto_falls_back(tmp_path):
    """In a fresh process with CC naming no compiler and an empty kernel cache."""
    code = (
        "from nine.config import make_config, NineError\n"
        "print(make_config('cpu', device='cpu').numerics)\n"
        "try:\n"
        "    make_config('cpu', numerics='fused').replace(d=4)\n"
        "    from nine.core.models import Encoder, Normalise\n"
        "    Encoder(4, Normalise(4), numerics='fused')\n"
        "except NineError as err:\n"
        "    print(err)\n"
    )
    env = {"CC": "no-such-compiler", "NINE_CACHE": str(tmp_path), "ONEDNN_MAX_CPU_ISA": "AVX2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "channels_last"
    assert out[1] == ("numerics='fused' needs a C compiler to build its kernel (conv_pool.c): 'no-such-compiler' was "
                      "not found (set CC, or install gcc or clang); or use numerics='channels_last'")


def test_fused_is_not_allowed_on_cuda():
    with pytest.raises(ConfigError, match=r"^numerics='fused' is not allowed with device='cuda'"):
        make_config("cpu", numerics="fused", device="cuda")
