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
    """benchmarks/gpu.py --smoke: every figure of the GPU check, on a tiny budget, into _build/ (never
    over results/bench-gpu.json); without --smoke and without CUDA it refuses in one line."""
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    out = root / "_build" / "bench-gpu-smoke.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["smoke"] is True
    assert all(row["samples_per_s"] > 0 for row in figures["throughput"].values())
    assert {"fp32, batch 64", "bf16, batch 128"} <= set(figures["throughput"])
    assert figures["run_2000_epochs_hours"]["paper"] == pytest.approx(15 * figures["run_2000_epochs_hours"]["cpu"])
    # the same step on the CPU twice (no CUDA here): nothing differs
    assert figures["step_agreement"]["loss_relative_difference"] == 0
    import torch

    if not torch.cuda.is_available():
        refused = subprocess.run([sys.executable, "benchmarks/gpu.py"], cwd=root, capture_output=True, text=True)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
        assert "no CUDA device here" in refused.stderr and "Traceback" not in refused.stderr
