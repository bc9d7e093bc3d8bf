"""A real, small file system for disk-fault tests: a tmpfs mounted on a test directory.

We run as root, so permission bits stop no write; only a full or read-only file
system makes the kernel say ENOSPC / EROFS.  A tmpfs gives both: ``size=`` is
counted in 4 KiB pages (each non-empty file takes at least one), it can grow or
shrink with ``remount``, and ``remount,ro`` makes it read-only.

A test that cannot mount fails with the reason: these tests guard real
behaviour and CI runs as root on the same kind of machine, so a silent skip
would hide a lost guarantee.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.fail(
            f"mount {' '.join(args)} failed ({done.stderr.strip() or done.returncode}): "
            "the disk-fault tests need root and a kernel that allows tmpfs mounts"
        )


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``path`` (made if missing); always unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        if done.returncode != 0:  # still busy (a file left open by a failed test): detach it
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def resize(path: Path, size: int) -> None:
    """Grow (free space) or shrink the tmpfs on ``path``."""
    _mount("-o", f"remount,size={size}", str(path))


def read_only(path: Path, on: bool = True) -> None:
    _mount("-o", "remount," + ("ro" if on else "rw"), str(path))


def fill(path: Path, leave: int = 0) -> Path:
    """Take every free page but ``leave`` of the file system holding ``path`` with one filler
    file (removing it frees them again)."""
    filler = path / ".filler"
    with open(filler, "ab", buffering=0) as f:
        for step in (64 * PAGE, PAGE):  # big pieces, then the last pages one by one
            while True:
                try:
                    f.write(b"\0" * step)
                except OSError:
                    break
    assert os.statvfs(path).f_bavail == 0, "the filler did not take all free space"
    if leave:
        os.truncate(filler, max(0, os.path.getsize(filler) - leave * PAGE))
    return filler
