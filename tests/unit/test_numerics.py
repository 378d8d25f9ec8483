"""The numerics a run records (fp32, channels_last, fused, bf16): part of its identity, old runs stay fp32."""

import json
import shutil

import pytest
import torch

from nine.config import ConfigError, make_config, resolve_numerics
from nine.core.models import Encoder, Normalise
from nine.core.train import train
from nine.data import load_split
from nine.store import RESULTS_DIR, load_run, run_hash


def test_numerics_is_validated_in_one_line():
    with pytest.raises(ConfigError, match=r"^numerics='fp16' is not allowed: must be one of fp32, channels_last, fused, bf16, auto$"):
        make_config("cpu", numerics="fp16")


def test_a_run_saved_before_the_field_loads_as_fp32_with_its_hash(tmp_path):
    committed = next(p for p in sorted(RESULTS_DIR.iterdir())
                     if (p / "config.json").is_file() and "numerics" not in json.loads((p / "config.json").read_text()))
    run = load_run(committed)
    assert run.config.numerics == "fp32" and run_hash(run.config) == committed.name
    # fp32 stays out of the hash (every earlier run has it); another numerics is another run
    assert run_hash(run.config.replace(numerics="bf16")) != committed.name
    assert make_config("cpu").numerics == resolve_numerics()  # what a new run computes with, unless told otherwise
    # the copy of a committed run is not altered by loading it
    copy = tmp_path / committed.name
    shutil.copytree(committed, copy)
    load_run(copy)
    assert (copy / "config.json").read_text() == (committed / "config.json").read_text()


def test_encoder_numerics_agree_and_end_in_float32():
    x = torch.rand(64, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for numerics in ("fp32", "channels_last", "bf16"):
        torch.manual_seed(0)
        encoder = Encoder(8, Normalise(8), numerics=numerics).eval()
        h = encoder.features(x)
        assert h.dtype == torch.float32 and h.is_contiguous()
        outputs[numerics] = h
    conv = encoder.body[4].weight  # the second convolution (with one input channel both layouts coincide)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    # the same weights: the layout changes only the order of float32 sums, bfloat16 keeps about 3 digits
    torch.testing.assert_close(outputs["channels_last"], outputs["fp32"], rtol=1e-4, atol=1e-5)
    scale = outputs["fp32"].abs().max()
    assert (outputs["bf16"] - outputs["fp32"]).abs().max() < 0.05 * scale
    assert not torch.equal(outputs["bf16"], outputs["fp32"])  # it does compute in bfloat16


@pytest.mark.parametrize("numerics, other", [("bf16", "fp32"), ("fused", "channels_last")])
def test_training_is_deterministic_and_differs_from_another_numerics(numerics, other):
    cfg = make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=64, epochs=2, d=3)
    split = load_split(cfg)
    runs = [train(cfg.replace(numerics=n), split, progress=lambda line: None) for n in (numerics, numerics, other)]
    (a, b, c) = (r.encoder.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_auto_numerics_is_bf16_only_on_bf16_units_and_is_stored_resolved(monkeypatch):
    from nine.config import native_bf16

    assert native_bf16("cpu", flags={"avx2", "avx512f", "amx_bf16"}, max_isa="")
    assert native_bf16("cpu", flags={"avx512f", "avx512_bf16"}, max_isa="ALL")
    assert not native_bf16("cpu", flags={"avx2", "fma"}, max_isa="")  # bf16 would be emulated
    assert not native_bf16("cpu", flags={"amx_bf16"}, max_isa="AVX512_CORE")  # oneDNN told to stay below the units
    assert native_bf16("cpu", flags={"amx_bf16"}, max_isa="AVX512_CORE_AMX")
    cfg = make_config("cpu", d=4)
    assert cfg.numerics in ("bf16", "fused", "channels_last") and cfg.to_dict()["numerics"] == cfg.numerics
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert make_config("cpu", d=4, device="cpu").numerics == "fused"  # this machine builds the kernel (cc is here)
    assert make_config("cpu", d=4, numerics="bf16").numerics == "bf16"  # a named value is kept as it is


def test_cpu_class_names_bf16_units_hidden_by_the_onednn_limit(monkeypatch):
    from nine.store.provenance import cpu_class

    amx = "model name : Some Xeon\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    plain = "model name : Some laptop\nflags : fpu avx2 fma\n"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    seen = cpu_class(amx)
    assert seen["class"].startswith("bf16 units") and seen["onednn_max_isa"] == "all"
    assert seen["model"] == "Some Xeon" and seen["flags"] == dict.fromkeys(("avx512f", "avx512_bf16", "amx_bf16", "amx_tile"), True)
    assert cpu_class(plain)["class"] == "no bf16 units (bf16 emulated)"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    hidden = cpu_class(amx)
    assert hidden["class"] == "no bf16 units (hidden by ONEDNN_MAX_CPU_ISA=AVX512_CORE)"
    assert hidden["onednn_max_isa"] == "AVX512_CORE" and hidden["flags"]["amx_bf16"]  # the flags stay what the CPU has


def test_keeping_freed_memory_is_applied_under_glibc_and_outside_the_numerical_code():
    import platform

    from nine.store.memory import keep_freed_memory
    from nine.store.provenance import NUMERICAL_CODE

    applied = keep_freed_memory()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert not any("nine/store".startswith(path) for path in NUMERICAL_CODE)  # runs stay "made by this code"
