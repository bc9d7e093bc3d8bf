"""Memory a sync freed, given back to the system before the daemon waits again; and one
C heap for the whole process.

glibc keeps the chunks a process frees in its heap for the next allocation, and returns
the top of the heap only: after a sync that held a batch of bodies, a long-running daemon
keeps megabytes it no longer uses (seen in the soak: about 1.3 MB a half hour, which
``malloc_trim`` gives back).  Elsewhere (musl, macOS) there is nothing to do.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only the daemon pays for it

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def give_back() -> bool:
    """Return the free memory of the C heap to the system; whether there was a way to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def one_heap() -> bool:
    """Have glibc keep one heap (arena) for every thread, instead of one more per thread that
    allocates: each worker thread that wrote a batch of message files kept its own heap at
    its high-water mark (an initial sync of 10k: 70 MB peak RSS against 62 MB with one).
    Python's threads allocate under the GIL, so one heap costs no waiting.  Call it before
    any thread starts; whether there was a way to."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))
