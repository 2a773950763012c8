"""Let the C heap keep freed tensor memory, so that CPU rendering and training reuse it.

PyTorch's CPU allocator has no cache: every tensor is a `malloc` and a `free`. glibc serves blocks
of more than 32 MB (and, by its default threshold, many smaller ones) with a fresh `mmap` and
returns them to the kernel on `free`, so each layer of each frame faults in and zeroes its
activations' pages again. For the StyleGAN3 networks that kernel time was as large as the
arithmetic: `explorer bench` on the 2-core development machine took 7.8 s per 256 px StyleGAN3-T
image with glibc's defaults and 4.6 s with the heap kept (-R: 14.3 s and 7.3 s), at a 16% higher
peak resident size.

All threads share that one heap (glibc would give each thread an arena of its own, of at most
64 MB, that maps and unmaps the same way), as the window renders on a worker thread.

Entry points (the `explorer` command, the trainers, the SWD measurement) call `keep_freed_memory`
once; importing the engine changes nothing. `EXPLORER_SYSTEM_MALLOC=1` leaves glibc's defaults,
for A/B measurements.
"""

from __future__ import annotations

import ctypes
import os

ENV_SYSTEM_MALLOC = "EXPLORER_SYSTEM_MALLOC"

# mallopt(3) parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
M_ARENA_MAX = -8

TOP_PAD_BYTES = 64 << 20  # grow the heap in steps of at least this, not page by page
# Keep up to 2 GB free at the heap's top (mallopt's largest value, an int): a frame's activations
# come back with the next frame.
TRIM_THRESHOLD_BYTES = 2**31 - 1

_kept = False


def keep_freed_memory() -> bool:
    """Make glibc serve every block from one heap and never hand freed memory back to the kernel.

    Returns whether the heap is set up so (now or by an earlier call): False where the C library is
    not glibc (macOS, Windows, musl: their allocators differ and are left alone) or where
    `EXPLORER_SYSTEM_MALLOC` is set to anything but 0.
    """
    global _kept
    if _kept:
        return True
    if os.environ.get(ENV_SYSTEM_MALLOC, "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it, and only glibc's mallopt takes these
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TOP_PAD, TOP_PAD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    _kept = all(mallopt(param, value) == 1 for param, value in settings)
    return _kept


def freed_memory_kept() -> bool:
    """Whether `keep_freed_memory` has set the heap up in this process (benchmarks record it)."""
    return _kept
