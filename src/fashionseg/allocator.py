"""Keep freed memory in the process: glibc's malloc returns every block over 32 MB to the kernel on free.

A training step allocates and frees the same large tensors every iteration (R50-DC5's 100M-weight box-head
layer: its bfloat16 copy under autocast, its gradient, 0.4-1 GB a step). glibc serves blocks above its mmap
threshold (at most 32 MB on 64-bit) with a fresh ``mmap`` and ``munmap``s them on free, so every step pays
the kernel's page faults and page zeroing again; in a profile they show up as ``aten::fill_`` and in
whichever kernel first writes the new memory. Told to serve them from the heap and never to trim it, malloc
reuses the pages. Measured on the 2-core AMD EPYC (Zen 5): R50-DC5's bf16 demo step 0.98 -> 0.61 s, peak RSS
+11% (``benchmarks/train_speed.py``, see the README). Allocation changes no arithmetic: results stay bit for
bit the same.
"""

from __future__ import annotations

import ctypes
import platform

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int: 2 GiB of free heap top before trimming, i.e. never here


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and keep freed pages (True if it could).

    A no-op (False) where the C library is not glibc (macOS, musl, Windows).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, _NEVER_TRIM))
