"""Process-level memory settings for CPU training.

glibc's allocator serves large blocks (a batch's activations and gradients) with ``mmap``
and returns them to the system on ``free``, and it raises that threshold only as it sees
large frees. On the 2-core test machine this made the first training run in a process about
1.6x slower per epoch than later ones (every step faulted its buffers in again) and left
later runs' speed to chance: 1.05-1.2 s vs 1.8 s per avmnist epoch for the same work.
Keeping large blocks on the heap (``M_MMAP_THRESHOLD`` at its 32 MiB maximum, no trimming)
makes every run take the fast path; the price is that freed memory stays with the process
(its peak resident size) until it exits. The ``mmcoop`` command and the benchmarks call
`tune_malloc`; library users can call it themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound on 64-bit systems
_done = False


def tune_malloc() -> bool:
    """Keep large allocations on glibc's heap (see the module docstring).

    Returns:
        True when the settings were applied (Linux with glibc), False elsewhere (no-op).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _done = bool(ok)
    return _done
