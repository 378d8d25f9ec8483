"""What is recorded beside every run: the code that computed its numbers, the packages, the machine
and the time; and whether a run was made by the code of this checkout.

A run's *numerical code* is the part of ``nine/`` that determines its numbers: the configuration,
the method core, the data and the evaluation (``NUMERICAL_CODE``). Its identity is the git object id of
each of those paths, so a change to plots, pages or the run store leaves every run "made by the
current code", and a change to the method marks every run made before it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import nine
from nine.config import BF16_UNITS, native_bf16
from nine.store.paths import ROOT

NUMERICAL_CODE = ("nine/config.py", "nine/priors.py", "nine/core", "nine/data", "nine/eval")
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "mlxtend")


def git(*args: str) -> str | None:
    """The output of ``git -C ROOT args`` (stripped), or None outside a git checkout or on failure."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def numerical_code() -> dict[str, Any]:
    """The git object id of every path of ``NUMERICAL_CODE`` at HEAD, and whether any has uncommitted
    changes (None outside a git checkout)."""
    ids = {path: git("rev-parse", f"HEAD:{path}") for path in NUMERICAL_CODE}
    status = git("status", "--porcelain", "--", *NUMERICAL_CODE)
    return {"numerical_code": None if None in ids.values() else ids,
            "numerical_code_dirty": None if status is None else bool(status)}


def code_identity() -> dict[str, Any]:
    """The commit, the numerical code, and whether any of ``nine/`` had uncommitted changes."""
    status = git("status", "--porcelain", "--", "nine")
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status),
            **numerical_code()}


CODE = code_identity()  # read once at import: a long run must not record a later checkout's code


BF16_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_class(cpuinfo: str | None = None) -> dict:
    """The CPU a run or a figure was made on: its model, the flags that decide whether bf16 pays (native bf16
    units: AMX or AVX-512 BF16; elsewhere bf16 is emulated), the limit ``ONEDNN_MAX_CPU_ISA`` puts on oneDNN's
    kernels (it can hide the bf16 units, making the machine one of the other class) and the instruction set
    torch's own kernels use."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    native = native_bf16("cpu", flags=flags, max_isa=limit)
    hidden = bool(set(BF16_UNITS) & flags) and not native
    return {"model": fields.get("model name", platform.processor() or platform.machine()),
            "flags": {flag: flag in flags for flag in BF16_FLAGS},
            "class": "bf16 units (AMX / AVX-512 BF16)" if native else
                     f"no bf16 units (hidden by ONEDNN_MAX_CPU_ISA={limit})" if hidden else "no bf16 units (bf16 emulated)",
            "onednn_max_isa": limit or "all",
            "torch_isa": torch.backends.cpu.get_cpu_capability()}


def provenance(device: torch.device, started: float, ended: float) -> dict[str, Any]:
    """Where and with what a run was made."""
    return {
        "nine_version": nine.__version__,
        **CODE,
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} CPU cores",
        "torch_threads": torch.get_num_threads(),
        **({"cpu": cpu_class()} if device.type == "cpu" else {}),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "ended": datetime.fromtimestamp(ended, timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(ended - started, 2),
    }


def code_state(record: dict[str, Any]) -> str:
    """Whether the run with provenance ``record`` was made by the numerical code of this checkout:
    "current", "older" (it has changed since), "unrecorded" (the run was made before its numerical
    code was recorded) or "unknown" (uncommitted changes to it on either side, or no git checkout)."""
    if "numerical_code" not in record:
        return "unrecorded"
    made = record["numerical_code"]
    now = numerical_code()
    if made is None or now["numerical_code"] is None or now["numerical_code_dirty"] or record["numerical_code_dirty"]:
        return "unknown"
    return "current" if made == now["numerical_code"] else "older"


REMEDY = "make reproduce retrains the cheapest committed run and compares every metric"
STATES = {
    "current": "made by the current numerical code of nine/",
    "older": "made by an earlier numerical code of nine/",
    "unrecorded": "made before nine/ recorded the identity of its numerical code",
    "unknown": "made or read outside a git checkout or with uncommitted changes to the numerical code of nine/",
}


def code_status(record: dict[str, Any]) -> str:
    """:func:`code_state` as a sentence, with the commit and the remedy where the code may differ."""
    state = code_state(record)
    if state == "current":
        return STATES[state]
    return f"{STATES[state]} (commit {(record.get('git_commit') or '?')[:10]}); {REMEDY}"


def code_summary(records: list[dict[str, Any]]) -> str:
    """One sentence on which code made a set of runs (given their provenance records)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(code_state(record), []).append(record)
    parts = []
    for state in STATES:
        if state in groups:
            commits = sorted({(r.get("git_commit") or "?")[:10] for r in groups[state]})
            which = "" if state == "current" else (
                f" (commit{'s' if len(commits) > 1 else ''} {', '.join(commits[:3])}"
                f"{f' and {len(commits) - 3} more' if len(commits) > 3 else ''})")
            parts.append(f"{len(groups[state])} {STATES[state]}{which}")
    tail = "" if set(groups) == {"current"} else f"; {REMEDY}"
    if len(groups) == 1:  # "All 9 were made by …", "It was made by …"
        who = "It was" if len(records) == 1 else f"All {len(records)} were"
        return f"{who} {parts[0].split(' ', 1)[1]}{tail}."
    return f"Of these {len(records)} runs, " + "; ".join(parts) + tail + "."
