"""Training throughput of one process against K processes (torchrun, gloo on CPU / nccl on GPU).

    python benchmarks/processes.py [--processes 2] [--epochs 3]

Trains the `cpu`-profile MNIST configuration for a few epochs into temporary stores, once in one
process, once under torchrun with K processes (global batch unchanged), and once as K independent
runs at the same time with one thread each (how `python -m nine sweep --workers K` trains), and
prints the median samples per second of each (summed over the independent runs) and the ratios.
One line per figure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def throughput(store: Path, launcher: list[str], epochs: int) -> float:
    cmd = [*launcher, "-m", "nine", "train", "--profile", "cpu", "--epochs", str(epochs), "--store", str(store)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (run,) = [p for p in store.iterdir() if not p.name.startswith(".")]
    return json.loads((run / "provenance.json").read_text())["train_samples_per_s"]


def independent(store: Path, k: int, epochs: int) -> float:
    """Summed throughput of k one-thread runs (seeds 0..k-1) trained at the same time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "nine", "train", "--profile", "cpu", "--epochs", str(epochs),
                               "--seed", str(seed), "--store", str(store)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for seed in range(k)]
    if any(p.wait() for p in procs):
        raise SystemExit("an independent run failed")
    runs = [p for p in store.iterdir() if not p.name.startswith(".")]
    return sum(json.loads((run / "provenance.json").read_text())["train_samples_per_s"] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = throughput(Path(tmp) / "one", [sys.executable], args.epochs)
        k = args.processes
        many = throughput(Path(tmp) / "many", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                               f"--nproc_per_node={k}"], args.epochs)
        apart = independent(Path(tmp) / "apart", k, args.epochs)
    print(f"1 process: {one:,.0f} samples/s")
    print(f"{k} processes, one run: {many:,.0f} samples/s")
    print(f"{k} independent one-thread runs, summed: {apart:,.0f} samples/s")
    print(f"ratio {k} processes / 1 process: {many / one:.2f}")
    print(f"ratio {k} independent runs / 1 process: {apart / one:.2f}")
    from common import record

    record("processes", {"one_process_samples_per_s": one, "ddp_samples_per_s": many,
                         "independent_samples_per_s": apart, "processes": k, "epochs": args.epochs})


if __name__ == "__main__":
    main()
