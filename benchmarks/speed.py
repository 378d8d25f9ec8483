"""How fast a `cpu`-profile run trains, for each way the encoder can compute, on this machine.

    python benchmarks/speed.py [--repeats 8] [--run-epochs 60]

Three parts, one figure per line, all written to results/bench.json under "speed":

1. **One training step** of NINE (Gaussian, d = 16, σ = 1) on the same 512 digits, for each candidate:
   the numerics a run can record (`fp32` = the previous trainer, `channels_last`, `bf16`), `bf16` under
   `torch.compile` (its compile time reported apart), and two threads instead of one. The candidates
   alternate step by step (see ``common.interleaved_times``); each row gives the median step time
   and its ratio to fp32 at one thread, and the activations autograd keeps for the backward pass.
2. **The views**: two MNIST crops of 512 digits, and SimCLR views of 512 colour images, batched
   against torchvision's per-image transforms (the previous implementation).
3. **Whole runs** (training, evaluation and saving, `nine.store.execute`), each in a fresh one-thread
   process as a sweep worker runs them, for each CPU class this machine can stand in for: the previous
   release's trainer (`fp32`, the allocator as glibc leaves it) against what `numerics="auto"` trains a new run
   with in that process (:func:`nine.config.fastest_numerics`, with :func:`nine.store.memory.keep_freed_memory`), two pairs in ABBA order
   (``--run-pairs``): the median wall time, peak resident
   memory, the resolved numerics, the CPU class as torch's kernels saw it, and the run's headline metrics.
   The classes: the machine as it is; oneDNN limited to AVX-512 without its bf16 units
   (`ONEDNN_MAX_CPU_ISA=AVX512_CORE`, where the CPU has AVX-512); and AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`,
   `ATEN_CPU_CAPABILITY=avx2`). A CPU with AMX thus measures both classes; which one was real is recorded.

Last, the matching statistics of the committed fp32 and bf16 runs (three seeds each) side by side: the
check that the faster numerics leave the results within the seed spread.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from common import BENCH_JSON, cpu_batch, interleaved_times, record

from nine.config import NUMERICS, make_config
from nine.core.objectives import make_objective
from nine.core.train import training_step
from nine.data import random_view, simclr_view, training_view

MIB = 2**20
RUN = dict(d=16, prior="gaussian", sigma=1.0)  # the configuration the issue of speed is measured on
# the CPU classes whole runs are timed in: name -> (environment of the run's process, CPU flag it needs)
CLASSES = {
    "as is": ({}, None),
    "AVX-512, bf16 units hidden": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "avx512f"),
    "AVX2": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}, "avx2"),
}
TARGETS = {True: 2.5, False: 2.0}  # whole-run speed-up over the previous trainer, with / without bf16 units
HEADLINE = ("infonce_test", "linear_probe_acc", "knn_acc", "ks_view_mean", "tau")


def step_of(numerics: str, x: torch.Tensor, threads: int, compiled: bool = False):
    """A closure doing one training step (with its own model, optimiser and generator), and the MiB of
    activations its backward pass keeps."""
    cfg = make_config("cpu", numerics=numerics, **RUN)
    torch.manual_seed(0)
    objective = make_objective(cfg)
    encoder, critic = objective.build()
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    model = torch.compile(encoder) if compiled else encoder
    view, generator = training_view(cfg), torch.Generator().manual_seed(0)
    encoder.train()

    def step() -> None:
        torch.set_num_threads(threads)
        training_step(objective, model, critic, optimiser, x, view, generator)

    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()  # the first step: for a compiled model, this is when it compiles
    first = time.perf_counter() - start
    return step, sum(saved.values()) / MIB, first


def torchvision_simclr(x: torch.Tensor) -> torch.Tensor:
    """The previous SimCLR views: torchvision's transforms image by image (global RNG)."""
    from torchvision.transforms import v2

    augment = v2.Compose([
        v2.RandomResizedCrop(32, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ])
    return torch.stack([augment(image) for image in x])


def whole_run(trainer: str, epochs: int, profile: str = "cpu") -> dict:
    """Train, evaluate and save one cpu-profile run in this (fresh, one-thread) process: ``trainer``
    "previous" is the previous release's (float32, glibc's allocator untouched), "default" today's.
    ``profile`` "smoke" makes it a seconds-long run (for the tests of this script)."""
    import nine.store.store as store_module
    from nine.config import fastest_numerics, native_bf16
    from nine.store import execute
    from nine.store.provenance import cpu_class

    if trainer == "previous":
        store_module.keep_freed_memory = lambda: False
    cfg = make_config(profile, epochs=epochs, **RUN, numerics="fp32" if trainer == "previous" else fastest_numerics("cpu"))
    with tempfile.TemporaryDirectory() as store:
        start = time.perf_counter()
        run = execute(cfg, store=__import__("pathlib").Path(store), resume=False, replace=True)
        wall = time.perf_counter() - start
        metrics = json.loads((run / "metrics.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "numerics": cfg.numerics, "cpu": cpu_class(), "bf16_units": native_bf16("cpu"),
            "metrics": {name: metrics[name] for name in HEADLINE}}


def whole_runs(epochs: int, classes: list[str], pairs: int = 2) -> dict:
    """The previous trainer against the default, in fresh one-thread processes, in each CPU class: ``pairs``
    pairs of runs, in the order previous-default then default-previous (ABBA), so that a drift of the
    machine's speed during a class hits both alike. The speed-up is the ratio of the median wall times."""
    from nine.config import cpu_flags, native_bf16

    flags, out = cpu_flags(), {}
    for name in classes:
        env, needs = CLASSES[name]
        if needs is not None and needs not in flags:
            print(f"run, {name}: not measured (this CPU has no {needs})")
            continue
        if name == "as is":  # a real class, named by what it has: the emulated rows stand in for it
            name = "as is, bf16 units" if native_bf16("cpu") else ("as is, AVX-512, no bf16 units" if "avx512f" in flags
                                                                   else "as is, AVX2")
        measured: dict[str, list[dict]] = {"previous": [], "default": []}
        for pair in range(pairs):
            for trainer in ("previous", "default") if pair % 2 == 0 else ("default", "previous"):
                child = {**os.environ, "OMP_NUM_THREADS": "1", **env}
                command = [sys.executable, __file__, "--worker", trainer, "--run-epochs", str(epochs)]
                measured[trainer].append(json.loads(subprocess.run(
                    command, check=True, capture_output=True, text=True, env=child).stdout.strip().splitlines()[-1]))
        runs = {trainer: {**done[0], "wall_s": statistics.median(run["wall_s"] for run in done),
                          "walls_s": [run["wall_s"] for run in done]} for trainer, done in measured.items()}
        speedup = runs["previous"]["wall_s"] / runs["default"]["wall_s"]
        units = runs["default"]["bf16_units"]
        out[name] = {**runs, "environment": env, "speedup": speedup, "target": TARGETS[units], "pairs": pairs,
                     "date": time.strftime("%Y-%m-%d")}
        print(f"run, {name} ({runs['default']['cpu']['class']}; torch kernels {runs['default']['cpu']['torch_isa']}): "
              f"previous fp32 {runs['previous']['wall_s'] / 60:.2f} min, default ({runs['default']['numerics']}) "
              f"{runs['default']['wall_s'] / 60:.2f} min (medians of {pairs}): {speedup:.2f}× faster "
              f"(target >= {TARGETS[units]:g})")
    return out


def real_name(name: str, run: dict) -> str:
    """The row name of a class timed as it is (on whichever machine): by whether it had bf16 units."""
    if name != "as is":
        return name
    return "as is, bf16 units" if run["default"]["bf16_units"] else "as is, no bf16 units"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=8, help="rounds of the interleaved step timing")
    parser.add_argument("--run-epochs", type=int, default=60, help="epochs of each whole run (the cpu profile: 60)")
    parser.add_argument("--run-pairs", type=int, default=2, help="pairs of whole runs per class (ABBA order)")
    parser.add_argument("--classes", nargs="+", choices=tuple(CLASSES), default=list(CLASSES),
                        help="CPU classes to time whole runs in (default: all this CPU can stand in for)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the trainer of one whole run in this process
    parser.add_argument("--worker-profile", default="cpu", help=argparse.SUPPRESS)  # "smoke" in the tests
    args = parser.parse_args()
    if args.worker:
        torch.set_num_threads(1)
        print(json.dumps(whole_run(args.worker, args.run_epochs, args.worker_profile)))
        return

    x = cpu_batch()
    figures: dict = {"steps": {}, "views": {}, "runs": {}}
    candidates = {  # name: (numerics, threads, compiled)
        "fp32, 1 thread": ("fp32", 1, False),
        "channels_last, 1 thread": ("channels_last", 1, False),
        "bf16, 1 thread": ("bf16", 1, False),
        "bf16 + torch.compile, 1 thread": ("bf16", 1, True),
        "fp32, 2 threads": ("fp32", 2, False),
        "bf16, 2 threads": ("bf16", 2, False),
    }
    steps, activations = {}, {}
    for name, (numerics, threads, compiled) in candidates.items():
        try:
            steps[name], activations[name], first = step_of(numerics, x, threads, compiled)
        except Exception as err:  # torch.compile needs a working compiler toolchain
            print(f"{name}: not measured ({type(err).__name__}: {str(err).splitlines()[0][:100]})")
            continue
        if compiled:
            figures["compile_s"] = first
            print(f"{name}: first step (compilation) {first:.1f} s")
    times = interleaved_times(steps, repeats=args.repeats)
    reference = statistics.median(times["fp32, 1 thread"])
    for name, values in times.items():
        median = statistics.median(values)
        # a compiled graph keeps its activations inside itself, out of sight of the hooks: not counted
        kept = None if candidates[name][2] else activations[name]
        figures["steps"][name] = {"ms": 1000 * median, "speedup": reference / median, "activations_mb": kept}
        print(f"step, {name}: {1000 * median:.0f} ms (median of {args.repeats}), {reference / median:.2f}× fp32 at "
              f"1 thread; activations kept for backward " + ("not counted" if kept is None else f"{kept:.0f} MiB"))

    torch.set_num_threads(1)
    colour = torch.rand(512, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    view_steps = {
        "MNIST crops (two views of 512)": lambda: [random_view(x, 0.2, generator) for _ in range(2)],
        "SimCLR views of 512, batched": lambda: simclr_view(colour, generator),
        "SimCLR views of 512, torchvision per image": lambda: torchvision_simclr(colour),
    }
    view_times = interleaved_times(view_steps, repeats=max(3, args.repeats // 2), warmup=1)
    for name, values in view_times.items():
        figures["views"][name] = {"ms": 1000 * statistics.median(values)}
        print(f"views, {name}: {1000 * statistics.median(values):.1f} ms")
    batched = figures["views"]["SimCLR views of 512, batched"]["ms"]
    figures["views"]["simclr_speedup"] = figures["views"]["SimCLR views of 512, torchvision per image"]["ms"] / batched
    print(f"views, SimCLR batched against per image: {figures['views']['simclr_speedup']:.0f}× faster")

    figures["runs"] = whole_runs(args.run_epochs, args.classes, args.run_pairs)
    earlier = json.loads(BENCH_JSON.read_text()).get("speed", {}) if BENCH_JSON.is_file() else {}
    if earlier.get("run_epochs") == args.run_epochs:  # classes not measured this time keep their last figures,
        kept = {real_name(name, run): run for name, run in earlier.get("runs", {}).items()  # unless their default
                if run["default"]["numerics"] in NUMERICS}  # is retired; another machine's "as is" named by its class
        figures["runs"] = {**kept, **figures["runs"]}
    figures["run_epochs"] = args.run_epochs
    record("speed", figures)
    print_metric_table()


def print_metric_table() -> None:
    """The statistics of three committed seeds of each numerics against fp32 (also on the reproducing page)."""
    os.environ["NINE_NO_TRAINING"] = "1"  # committed runs only: never train here
    import pandas as pd

    from nine.book.tables import numerics_table
    from nine.config import NineError

    for other in ("bf16", "fused"):
        for prior, level in (("gaussian", 1.0), ("uniform", 0.2)):
            try:
                table = numerics_table(prior, level, numerics=("fp32", other))
            except NineError as err:
                print(f"metric table, fp32 against {other}, {prior}: not available ({err})")
                continue
            with pd.option_context("display.width", 200, "display.max_columns", 10):
                print(f"metric table, fp32 against {other}, {prior} prior, d = 16, level {level:g}, three seeds each:\n{table}")


if __name__ == "__main__":
    main()
