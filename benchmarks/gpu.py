"""The GPU path in one command: throughput, the cost of a long run, peak memory, and correctness.

    python benchmarks/gpu.py            # on a CUDA machine, within about 8 minutes
    python benchmarks/gpu.py --smoke    # any machine, in seconds: the same code on a tiny budget

Writes results/bench-gpu.json (``--smoke``: _build/bench-gpu-smoke.json, so that a CPU check never
replaces GPU figures) with:

- training throughput (samples/s; one sample = one image seen as two views) of NINE (Gaussian, d = 16,
  σ = 1) at batch 512 and 2048, for fp32, bf16 and bf16 under ``torch.compile``;
- the wall time of one `cpu`-profile run (4,000 digits) and of one `paper`-profile run (60,000 digits)
  at 2,000 epochs, extrapolated from the measured epochs of the fastest setting;
- the peak GPU memory of each setting;
- correctness: one training step from the same weights and batch on the CPU and on the device (loss
  and every gradient), and torch's ``SyncBatchNorm`` against ``nine``'s ``GlobalBatchNorm`` (forward
  and backward) in a process group on the device.

Without CUDA (``--smoke``) every figure is computed on the CPU and marked ``"device": "cpu"``.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from nine.config import make_config
from nine.core import distributed
from nine.core.objectives import make_objective
from nine.core.train import training_step
from nine.data import load_split, training_view

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(d=16, prior="gaussian", sigma=1.0)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(x_train: torch.Tensor, device: torch.device, batch: int, numerics: str, compiled: bool,
               seconds: float) -> dict:
    """Samples/s of NINE's training step at this batch size, from steps over ``seconds`` after a warm-up."""
    cfg = make_config("cpu", numerics=numerics, batch_size=batch, **RUN)
    torch.manual_seed(0)
    objective = make_objective(cfg)
    encoder, critic = (m.to(device) for m in objective.build())
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    model = torch.compile(encoder) if compiled else encoder
    view, generator = training_view(cfg), torch.Generator(device=device).manual_seed(0)
    x = x_train[:batch].to(device) if len(x_train) >= batch else x_train.repeat(batch // len(x_train) + 1, 1, 1, 1)[:batch].to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    training_step(objective, model, critic, optimiser, x, view, generator)  # compiles, if compiled
    synchronise(device)
    first = time.perf_counter() - start
    for _ in range(2):
        training_step(objective, model, critic, optimiser, x, view, generator)
    synchronise(device)
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        training_step(objective, model, critic, optimiser, x, view, generator)
        steps += 1
    synchronise(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return {"samples_per_s": steps * batch / elapsed, "first_step_s": first, "peak_memory_mb": peak}


def step_agreement(x: torch.Tensor, device: torch.device) -> dict:
    """The same training step (weights, views, channel noise) on the CPU and on ``device``: the
    largest relative difference of the loss and of any gradient."""
    cfg = make_config("cpu", **RUN)
    results = []
    for where in (torch.device("cpu"), device):
        torch.manual_seed(0)
        objective = make_objective(cfg)
        encoder, critic = (m.to(where) for m in objective.build())
        encoder.train()
        batch = x.to(where)
        view = training_view(cfg)
        views = [view(batch.cpu(), torch.Generator().manual_seed(s)).to(where) for s in (1, 2)]
        noise = objective.noise.sample((len(x), cfg.d), torch.device("cpu"), torch.Generator().manual_seed(3)).to(where)
        u, y = encoder(views[0]), encoder(views[1]) + noise
        from nine.core.losses import infonce

        loss, _ = infonce(critic(u, y), cfg.softmax)
        loss.backward()
        grads = [p.grad.detach().cpu() for p in [*encoder.parameters(), *critic.parameters()] if p.grad is not None]
        results.append((float(loss.detach()), grads))
    (loss_a, grads_a), (loss_b, grads_b) = results
    grad_diff = max(float((a - b).abs().max() / (a.abs().max() + 1e-12)) for a, b in zip(grads_a, grads_b))
    return {"loss_cpu": loss_a, "loss_device": loss_b, "loss_relative_difference": abs(loss_a - loss_b) / abs(loss_a),
            "max_gradient_relative_difference": grad_diff}


def batchnorm_agreement(device: torch.device) -> dict:
    """torch's SyncBatchNorm (CUDA only) against GlobalBatchNorm, forward and backward, in a process
    group of this one process. With one process both reduce over the local batch only, so this checks
    the replacement itself (the statistics, the running buffers and the gradients), not the collective."""
    if device.type != "cuda":
        return {"compared": False, "why": "SyncBatchNorm runs only on CUDA"}
    import torch.distributed as dist

    with tempfile.NamedTemporaryFile() as store:
        dist.init_process_group("nccl", init_method=f"file://{store.name}", rank=0, world_size=1)
        try:
            x = torch.randn(512, 32, 11, 11, device=device, generator=torch.Generator(device=device).manual_seed(0))
            outs = []
            for convert in (distributed.GlobalBatchNorm, None):
                bn = torch.nn.BatchNorm2d(32).to(device)
                module = convert(bn) if convert else torch.nn.SyncBatchNorm.convert_sync_batchnorm(bn)
                xi = x.clone().requires_grad_(True)
                out = module(xi)
                (out * torch.arange(out.numel(), device=device).reshape(out.shape).sin()).sum().backward()
                outs.append((out.detach(), xi.grad, module.running_var.detach().clone()))
            (a, ga, va), (b, gb, vb) = outs
            return {"compared": True, "processes": 1, "max_output_difference": float((a - b).abs().max()),
                    "max_gradient_difference": float((ga - gb).abs().max()),
                    "max_running_var_difference": float((va - vb).abs().max())}
        finally:
            dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny budget on any device, in seconds")
    parser.add_argument("--out", default=None, help="where the figures go (default: results/bench-gpu.json, "
                                                    "with --smoke _build/bench-gpu-smoke.json)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.smoke:
        parser.exit(2, "gpu.py: no CUDA device here (torch.cuda.is_available() is False); use --smoke to check the script on CPU\n")
    smoke = args.smoke
    split = load_split(make_config("smoke" if smoke else "cpu"))
    figures: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
                     "smoke": smoke, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "throughput": {}}
    batches = (64, 128) if smoke else (512, 2048)
    settings = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16 + torch.compile": ("bf16", True)}
    if smoke:
        settings.pop("bf16 + torch.compile")  # compiling takes minutes on a CPU
    for batch in batches:
        for name, (numerics, compiled) in settings.items():
            row = throughput(split.x_train, device, batch, numerics, compiled, seconds=0.5 if smoke else 15)
            figures["throughput"][f"{name}, batch {batch}"] = row
            print(f"batch {batch}, {name}: {row['samples_per_s']:,.0f} samples/s, first step {row['first_step_s']:.1f} s, "
                  f"peak memory {row['peak_memory_mb']:.0f} MiB")
    best = max(figures["throughput"].items(), key=lambda item: item[1]["samples_per_s"])
    per_epoch = {"cpu": 4000 / best[1]["samples_per_s"], "paper": 60000 / best[1]["samples_per_s"]}
    figures["run_2000_epochs_hours"] = {profile: 2000 * s / 3600 for profile, s in per_epoch.items()}
    figures["run_2000_epochs_setting"] = best[0]
    print(f"2,000 epochs at {best[0]}: cpu profile (4,000 digits) {figures['run_2000_epochs_hours']['cpu']:.2f} h, "
          f"paper profile (60,000 digits) {figures['run_2000_epochs_hours']['paper']:.1f} h (extrapolated)")
    figures["step_agreement"] = step_agreement(split.x_train[:64 if smoke else 512], device)
    print(f"one step, CPU against {device.type}: loss relative difference "
          f"{figures['step_agreement']['loss_relative_difference']:.1e}, largest gradient relative difference "
          f"{figures['step_agreement']['max_gradient_relative_difference']:.1e}")
    figures["batchnorm_agreement"] = batchnorm_agreement(device)
    print(f"SyncBatchNorm against GlobalBatchNorm: {json.dumps(figures['batchnorm_agreement'])}")
    out = Path(args.out) if args.out else ROOT / ("_build/bench-gpu-smoke.json" if smoke else "results/bench-gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    os.environ.setdefault("NINE_NO_TRAINING", "1")
    main()
