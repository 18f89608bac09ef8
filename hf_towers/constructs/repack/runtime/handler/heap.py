"""Keep the process's RSS from drifting upward with the artifact size (glibc only).

The stream path allocates and frees buffers of 1-20 MiB (read chunks, 4 MiB gzip members, parts)
from several threads. glibc raises its mmap threshold each time such a block is freed (dynamic
threshold, up to 32 MiB), after which these buffers come from the per-thread heaps, which keep
the freed memory fragmented instead of returning it: measured on a 2 GiB artifact, Python-level
memory (tracemalloc) stayed at ~75 MiB whatever the size while RSS went 241 -> 264 MiB from
256 MiB to 2 GiB. A fixed 1 MiB threshold (which also disables the dynamic one) serves every
large buffer with its own mmap, unmapped on free: RSS was 190 MiB at both sizes (~8 % slower).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number (glibc ``malloc.h``)."""
MMAP_THRESHOLD = 1024 * 1024


def bound_large_buffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve allocations >= ``threshold`` with mmap; True when applied (glibc), else a no-op."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
