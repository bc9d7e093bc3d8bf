"""The daemon gives the memory a sync freed back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import os
    from mailtide.daemon import memory

    def rss_kib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    # 100 MB in chunks glibc takes from its heap (below its mmap threshold), then freed
    # but one allocated after them, which pins the heap's top: free() alone returns nothing
    chunks = [bytearray(8000) for _ in range(12_500)]
    pin = bytearray(8000)
    before = rss_kib()
    del chunks
    freed = rss_kib()
    trimmed = memory.give_back()
    after = rss_kib()
    print(before, freed, after, trimmed)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_give_back_returns_what_a_sync_freed_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    before, freed, after, trimmed = done.stdout.split()
    assert trimmed == "True"
    held = int(freed) - int(after)
    # free() kept most of the 100 MB; give_back returned most of it
    assert int(freed) > int(before) - 50_000, done.stdout
    assert held > 50_000, done.stdout


HEAPS = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading
    from mailtide.daemon import memory

    if sys.argv[1] == "one":
        print(memory.one_heap())
    else:
        print(None)

    def work():  # as a worker thread writing message files: bodies allocated and freed
        for _ in range(200):
            data = [bytes(20_000) for _ in range(50)]
            del data

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile() as out:
        f = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, f)
        libc.fclose(f)
        print(open(out.name).read().count("<heap nr="))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_one_heap_keeps_worker_threads_from_holding_heaps_of_their_own() -> None:
    """Each thread that allocates gets a glibc heap of its own, kept at its high-water mark
    (an initial sync's worker threads held 8 MB more so); ``one_heap`` keeps one."""

    def heaps(mode: str) -> tuple[str, int]:
        done = subprocess.run(
            [sys.executable, "-c", HEAPS, mode],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        said, count = done.stdout.split()
        return said, int(count)

    assert heaps("one") == ("True", 1)
    assert heaps("default")[1] > 1  # the test sees threads make heaps of their own
