"""Memory of one training step for each method (NINE, plain InfoNCE, adversarial, VAE).

    python benchmarks/memory.py

Each method runs in a fresh process on one cpu-profile batch (512 digits, d = 16) and reports:

- ``activations``: the tensors autograd saves for the backward pass of one step, each storage counted
  once (``torch.autograd.graph.saved_tensors_hooks``). This is what grows with the batch and is exact
  and repeatable on any device.
- ``state``: parameters, their gradients and Adam's two moments (4 × the parameter bytes).
- ``rss growth`` (CPU) or ``cuda peak`` (GPU): the growth of the process's peak resident set size, or
  the peak allocated CUDA memory, over three steps. On CPU this depends on the allocator's reuse
  of freed blocks and varies by tens of MiB from run to run; read it as a rough check only.

One figure per line.
"""

import json
import resource
import subprocess
import sys

from common import METHODS

MIB = 2**20


def worker(method: str) -> None:
    import torch
    from common import cpu_batch

    from nine.config import make_config
    from nine.core.models import pick_device
    from nine.core.objectives import make_objective
    from nine.core.train import training_step
    from nine.data import training_view

    cfg = make_config("cpu", d=16, **METHODS[method])
    device = pick_device("auto")
    torch.manual_seed(0)
    objective = make_objective(cfg)
    encoder, critic = (module.to(device) for module in objective.build())
    view = training_view(cfg)
    parameters = [*encoder.parameters(), *critic.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=cfg.lr)
    x = cpu_batch().to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        training_step(objective, encoder, critic, optimiser, x, view, generator)
    for _ in range(2):
        training_step(objective, encoder, critic, optimiser, x, view, generator)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    state = 4 * sum(p.numel() * p.element_size() for p in parameters)
    print(json.dumps({"method": method, "device": device.type, "activations_mb": sum(saved.values()) / MIB,
                      "state_mb": state / MIB, "peak_growth_mb": (peak - before) / MIB}))


def main() -> None:
    from common import record

    figures = {"activations_mb": {}, "state_mb": {}, "peak_growth_mb": {}}
    for method in METHODS:
        out = subprocess.run([sys.executable, __file__, method], check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        for key in figures:
            figures[key][method] = result[key]
        peak = "RSS growth" if result["device"] == "cpu" else "CUDA peak"
        print(f"{method}: activations saved for backward {result['activations_mb']:.1f} MiB, parameters + grads + "
              f"Adam state {result['state_mb']:.1f} MiB, {peak} over 3 steps {result['peak_growth_mb']:.0f} MiB")
    record("memory", figures)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        worker(sys.argv[1])
    else:
        main()
