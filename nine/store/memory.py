"""How a training process asks its allocator to keep memory between steps (no arithmetic changes).

By default glibc hands a freed block larger than its mmap threshold (128 KiB at first, rising to 32 MiB as
large blocks are freed) back to the kernel, and trims the top of its heap; the next training step's tensor
of the same size is then faulted in again page by page — several thousand page faults a step of a
cpu-profile run (the max-pool gradient of the encoder's first block alone is 31 MiB). Keeping the blocks
costs no memory beyond the step's peak. Lives outside the numerical code (:mod:`nine.store.provenance`):
it changes how fast a run is, never its numbers.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks up to it come from the heap and are reused
TRIM_THRESHOLD = 2**31 - 1  # never trim the heap's top while the process runs


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds so that freed blocks stay in the process for reuse. Returns
    whether it was applied: True under glibc, False elsewhere (macOS, musl: nothing is changed)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
