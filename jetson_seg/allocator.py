"""Keep freed frame-sized buffers inside the process instead of returning them to the kernel.

Every 640x480 frame allocates and frees megabyte arrays: the mask, colour mask and overlay,
their message payloads, serialization buffers, received images. glibc serves blocks above
128 KB with fresh mmap pages and unmaps them on free, so each such buffer paid a page fault per
4 KB page on first write: building an rgb8 Image message took 0.90 ms and serializing it 1.46
ms, against 0.06 and 0.08 ms once these blocks come from the heap (measured on a slower
machine of this kind). Raising the thresholds keeps at most a few frames' worth of memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's ceiling for it on 64-bit is 32 MiB).
MMAP_THRESHOLD = 32 << 20
#: Free memory above this at the top of a heap is returned to the kernel: room for the buffers
#: of a few frames in flight (a 1920x1080 rgb8 frame is 6 MiB), per malloc arena.
TRIM_THRESHOLD = 32 << 20


def keep_large_allocations() -> bool:
    """Tune glibc malloc for frame-sized buffers; False where that is not glibc (musl, macOS)."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
