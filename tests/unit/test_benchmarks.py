"""The timing helpers of benchmarks/: rotation of the order within rounds and the paired ratio."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import interleaved_times, paired_ratio  # noqa: E402


def test_each_round_starts_one_method_further():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    times = interleaved_times(steps, repeats=4, warmup=1)
    assert calls[:3] == list("ABC")  # warm-up
    assert "".join(calls[3:]) == "ABC" "BCA" "CAB" "ABC"
    assert {name: len(t) for name, t in times.items()} == {"A": 4, "B": 4, "C": 4}


def test_paired_ratio_uses_times_of_the_same_round():
    # B drifts 10× slower over the rounds, A is always 1.1× B of its round: the paired ratio sees
    # 1.1 in every round, a ratio of medians would too only by chance
    b = [1.0, 2.0, 5.0, 10.0, 10.0]
    a = [1.1 * x for x in b]
    median, q1, q3 = paired_ratio(a, b)
    assert median == pytest.approx(1.1) and q1 == pytest.approx(1.1) and q3 == pytest.approx(1.1)
    median, q1, q3 = paired_ratio([1.0, 3.0, 2.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert (q1, median, q3) == pytest.approx((1.25, 2.5, 4.5))


def test_gpu_check_runs_in_smoke_mode_on_any_machine(tmp_path):
    """benchmarks/gpu.py --smoke: every figure of the GPU check, on a tiny budget, into the file it is
    given; without --smoke and without CUDA it refuses in one line."""
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench-gpu-smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--out", str(out)], cwd=root, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["smoke"] is True
    throughput = figures["throughput"]
    assert {"fp32, batch 64", "bf16, batch 128"} <= set(throughput) and all(r["samples_per_s"] > 0 for r in throughput.values())
    # the hours follow from the fastest setting of the table, 2,000 epochs of 4,000 digits
    fastest = max(throughput, key=lambda k: throughput[k]["samples_per_s"])
    assert figures["run_2000_epochs_setting"] == fastest
    assert figures["run_2000_epochs_hours"]["cpu"] == pytest.approx(2000 * 4000 / throughput[fastest]["samples_per_s"] / 3600)
    # with no CUDA here both sides of the comparison are the CPU: the same seeds must give the same step
    agreement = figures["step_agreement"]
    assert agreement["loss_cpu"] == agreement["loss_device"] and agreement["max_gradient_relative_difference"] == 0
    assert f"written to {out}" in done.stdout  # and nowhere in the repository
    import torch

    if not torch.cuda.is_available():
        refused = subprocess.run([sys.executable, "benchmarks/gpu.py"], cwd=root, capture_output=True, text=True)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
        assert "no CUDA device here" in refused.stderr and "Traceback" not in refused.stderr


def test_cpu_class_names_whether_bf16_has_units():
    from common import cpu_class

    amx = cpu_class("model name\t: Xeon\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    plain = cpu_class("model name\t: EPYC\nflags\t\t: fpu avx2 fma\n")
    assert amx["class"].startswith("bf16 units") and amx["flags"]["amx_tile"] and amx["model"] == "Xeon"
    assert plain["class"].startswith("no bf16 units") and not any(plain["flags"].values())
    assert cpu_class()["torch_isa"]  # this machine's, whatever it is


def test_whole_run_worker_resolves_the_default_in_the_class_it_stands_in_for():
    """benchmarks/speed.py times the previous trainer against today's default in fresh processes; under
    oneDNN's AVX2 limit a new run must train in float32 channels-last (bf16 would be emulated) and say the class
    it ran in."""
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    seen = {}
    for trainer in ("previous", "default"):
        out = subprocess.run([sys.executable, "speed.py", "--worker", trainer, "--run-epochs", "1", "--worker-profile", "smoke"], cwd=root / "benchmarks",
                             env=env, capture_output=True, text=True, check=True).stdout
        seen[trainer] = json.loads(out.strip().splitlines()[-1])
    assert seen["previous"]["numerics"] == "fp32" and seen["default"]["numerics"] == "channels_last"
    for run in seen.values():
        assert run["cpu"]["onednn_max_isa"] == "AVX2" and run["cpu"]["torch_isa"] == "AVX2" and not run["bf16_units"]
        assert run["wall_s"] > 0 and set(run["metrics"]) == {"infonce_test", "linear_probe_acc", "knn_acc", "ks_view_mean", "tau"}
    # one epoch of the same seed: the numerics compute the same function, so the runs agree closely
    assert abs(seen["previous"]["metrics"]["infonce_test"] - seen["default"]["metrics"]["infonce_test"]) < 0.01


def test_the_readmes_speed_figures_are_those_of_bench_json():
    """The README states the whole-run speed-up per CPU class; each must be bench.json's, to two decimals."""
    import json

    root = Path(__file__).resolve().parents[2]
    speed = json.loads((root / "results" / "bench.json").read_text())["speed"]
    readme = (root / "README.md").read_text()
    assert f"`results/bench.json` of {speed['date']}" in readme
    for name, run in speed["runs"].items():
        assert f"{run['speedup']:.2f}×" in readme, name
