"""Training throughput of one process against K processes (torchrun, gloo on CPU / nccl on GPU).

    python benchmarks/processes.py [--processes 2] [--epochs 3]

Trains the `cpu`-profile MNIST configuration for a few epochs into temporary stores, once in one
process and once under torchrun with K processes (global batch unchanged), and prints the median
samples per second of each and their ratio. One line per figure.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def throughput(store: Path, launcher: list[str], epochs: int) -> float:
    cmd = [*launcher, "-m", "nine", "train", "--profile", "cpu", "--epochs", str(epochs), "--store", str(store)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (run,) = [p for p in store.iterdir() if not p.name.startswith(".")]
    return json.loads((run / "provenance.json").read_text())["train_samples_per_s"]


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
    print(f"1 process: {one:,.0f} samples/s")
    print(f"{k} processes: {many:,.0f} samples/s")
    print(f"ratio {k} processes / 1 process: {many / one:.2f}")


if __name__ == "__main__":
    main()
