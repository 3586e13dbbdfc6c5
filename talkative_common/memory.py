"""Give freed memory back to the system: glibc's malloc, tuned once per service process.

A photo decoded in full takes tens to hundreds of MB, in blocks of up to 16 MB (Pillow's
arena), on one of asyncio's worker threads. glibc serves allocations above its mmap
threshold with their own mmap, unmapped at free, but it raises that threshold to the
size of any such block when it is freed (up to 32 MB), so the next photos' blocks are
carved from the per-thread arenas instead; that memory, once freed, stays with the
process (fragmented heaps are not trimmed). After a burst of big photos a service kept
gigabytes it no longer used. A fixed threshold turns the dynamic growth off: every big
block is its own mapping again and goes back to the system the moment it is freed.
`trim()` (malloc_trim) hands back the free pages left in every arena after a big decode.

Both are no-ops where the C library is not glibc (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import cache

log = logging.getLogger("talkative.memory")
M_MMAP_THRESHOLD = -3  # mallopt parameter numbers, from glibc's malloc.h
# Blocks from 1 MiB up get their own mapping: Pillow's image blocks, numpy arrays and
# tensors of a photo; the many small objects of a request stay in the arenas.
MMAP_THRESHOLD_BYTES = 1024 * 1024


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):  # only glibc has it (musl does not)
            return None
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold (see the module's docstring); False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    if not ok:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) refused", mmap_threshold)
    return ok


def trim() -> bool:
    """Return the free pages of every malloc arena to the system; True if any went back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
