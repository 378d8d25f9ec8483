"""The numerics a run records (fp32, channels_last, bf16; the retired fused): part of its identity, old runs stay
fp32; "auto" finds a committed run on any CPU and otherwise trains with the fastest numerics here."""

import json
import shutil

import pytest
import torch

from nine.config import ConfigError, fastest_numerics, make_config
from nine.core.models import Encoder, Normalise
from nine.core.train import train
from nine.data import load_split
from nine.store import RESULTS_DIR, find_run, get_or_train, load_run, resolve_numerics, run_hash


def test_numerics_is_validated_in_one_line():
    with pytest.raises(ConfigError, match=r"^numerics='fp16' is not allowed: must be one of fp32, channels_last, bf16, auto$"):
        make_config("cpu", numerics="fp16")


def test_a_run_saved_before_the_field_loads_as_fp32_with_its_hash(tmp_path):
    committed = next(p for p in sorted(RESULTS_DIR.iterdir())
                     if (p / "config.json").is_file() and "numerics" not in json.loads((p / "config.json").read_text()))
    run = load_run(committed)
    assert run.config.numerics == "fp32" and run_hash(run.config) == committed.name
    # fp32 stays out of the hash (every earlier run has it); another numerics is another run
    assert run_hash(run.config.replace(numerics="bf16")) != committed.name
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


@pytest.mark.parametrize("numerics, other", [("bf16", "fp32"), ("channels_last", "bf16")])
def test_training_is_deterministic_and_differs_from_another_numerics(numerics, other):
    cfg = make_config("smoke", dataset="digits", n_train=128, n_test=64, batch_size=64, epochs=2, d=3)
    split = load_split(cfg)
    runs = [train(cfg.replace(numerics=n), split, progress=lambda line: None) for n in (numerics, numerics, other)]
    (a, b, c) = (r.encoder.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_the_fastest_numerics_is_bf16_only_on_bf16_units(monkeypatch):
    from nine.config import native_bf16

    assert native_bf16("cpu", flags={"avx2", "avx512f", "amx_bf16"}, max_isa="")
    assert native_bf16("cpu", flags={"avx512f", "avx512_bf16"}, max_isa="ALL")
    assert not native_bf16("cpu", flags={"avx2", "fma"}, max_isa="")  # bf16 would be emulated
    assert not native_bf16("cpu", flags={"amx_bf16"}, max_isa="AVX512_CORE")  # oneDNN told to stay below the units
    assert native_bf16("cpu", flags={"amx_bf16"}, max_isa="AVX512_CORE_AMX")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert fastest_numerics("cpu") == "channels_last"
    assert make_config("cpu", d=4).numerics == "auto"  # a config is the same on every machine: resolved by the store
    assert make_config("cpu", d=4, numerics="bf16").numerics == "bf16"  # a named value is kept as it is


@pytest.mark.parametrize("isa", ["", "AVX2"])
def test_auto_finds_the_committed_run_on_any_cpu_class(monkeypatch, isa):
    """The README's `nine train --profile cpu --sigma 0.5 --d 2` loads the committed run, with or without bf16 units
    (oneDNN's switch stands in for a CPU without them); the hash of an "auto" config is the committed run's."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    cfg = make_config("cpu", sigma=0.5, d=2)
    committed = find_run(cfg.replace(numerics="bf16"), (RESULTS_DIR,))
    assert committed is not None and committed.parent == RESULTS_DIR
    assert run_hash(cfg) == committed.name and find_run(cfg) == committed
    assert get_or_train(cfg).path == committed  # loaded, nothing trained (a training would take minutes)
    (resolved,), why = resolve_numerics([cfg])
    assert resolved.numerics == "bf16" and why == ""


def test_auto_trains_one_numerics_for_runs_compared_together(monkeypatch, tmp_path):
    """Configs resolved together never mix numerics: when some have committed bf16 runs and others none, on a CPU
    without bf16 units all of them train in channels_last, and the line says so."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    committed = make_config("cpu", sigma=0.5, d=2)
    new = make_config("cpu", sigma=0.5, d=2, seed=987654)  # no run of this seed exists
    resolved, why = resolve_numerics([committed, new, committed.replace(numerics="fp32")], (RESULTS_DIR, tmp_path))
    assert [cfg.numerics for cfg in resolved] == ["channels_last", "channels_last", "fp32"]
    assert "no bf16 units" in why and "1 of these 2 runs exist in bf16" in why and "\n" not in why
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    monkeypatch.setattr("nine.config.cpu_flags", lambda: {"amx_bf16"})
    assert [cfg.numerics for cfg in resolve_numerics([committed, new], (RESULTS_DIR, tmp_path))[0]] == ["bf16", "bf16"]


def test_a_retired_numerics_loads_but_never_trains(tmp_path):
    from nine.store import execute

    fused = sorted(p for p in RESULTS_DIR.iterdir() if (p / "config.json").is_file()
                   and json.loads((p / "config.json").read_text()).get("numerics") == "fused")
    assert len(fused) == 6
    run = load_run(fused[0])  # its weights build as channels_last: the same function of the same weights
    assert run.config.numerics == "fused" and run_hash(run.config) == fused[0].name
    encoder, _ = run.load_model()
    assert encoder.numerics == "channels_last"
    x = torch.rand(8, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # its weights reproduce its stored embeddings' law: finite, standardised output
        z = encoder(x)
    assert z.shape == (8, run.config.d) and torch.isfinite(z).all()
    with pytest.raises(ConfigError, match=r"^numerics='fused' is not allowed for a new run: it is retired"):
        execute(run.config.replace(seed=12345), tmp_path)
    assert not any(tmp_path.iterdir())


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
