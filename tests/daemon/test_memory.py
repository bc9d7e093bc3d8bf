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
