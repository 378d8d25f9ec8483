"""Peak memory of one training step for each method (NINE, plain InfoNCE, adversarial, VAE).

    python benchmarks/memory.py

Each method runs in a fresh process: build the model and one cpu-profile batch (512 digits, d = 16),
take three training steps, and report the growth of the peak resident set size (CPU) or the peak
allocated CUDA memory (GPU) over what model and data held before the first step. One figure per line.
"""

import json
import resource
import subprocess
import sys

from common import METHODS


def worker(method: str) -> None:
    import torch
    from common import cpu_batch

    from nine.config import make_config
    from nine.critics import make_critic
    from nine.models import Encoder, pick_device
    from nine.train import training_step

    cfg = make_config("cpu", d=16, **METHODS[method])
    device = pick_device("auto")
    torch.manual_seed(0)
    encoder, critic = Encoder.from_config(cfg).to(device), make_critic(cfg).to(device)
    optimiser = torch.optim.Adam([*encoder.parameters(), *critic.parameters()], lr=cfg.lr)
    x = cpu_batch().to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(3):
        training_step(encoder, critic, optimiser, x, cfg, generator)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"method": method, "device": device.type, "step_peak_mb": (peak - before) / 2**20}))


def main() -> None:
    from common import record

    figures = {}
    for method in METHODS:
        out = subprocess.run([sys.executable, __file__, method], check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        figures[method] = result["step_peak_mb"]
        print(f"{method}: {result['step_peak_mb']:.0f} MiB peak growth in one training step ({result['device']})")
    record("memory", {"step_peak_mb": figures})


if __name__ == "__main__":
    if len(sys.argv) > 1:
        worker(sys.argv[1])
    else:
        main()
