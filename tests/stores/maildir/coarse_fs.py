"""A real file system whose times have whole seconds: ext4 with 128-byte inodes, on a loop
device.  There a change in the same second as the last one leaves a directory's mtime and
ctime as they were, as on many network file systems; the tests of the Maildir stamp need it.

As for the tmpfs, a test that cannot mount fails with the reason (see tmpfs.py).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stores.maildir.tmpfs import _mount


@contextlib.contextmanager
def whole_second_fs(path: Path, image: Path, size_mib: int = 16) -> Iterator[Path]:
    """Mount an empty ext4 with one-second times on ``path`` (made if missing), its image in
    the file ``image``; always unmounted after (the loop device goes with it)."""
    path.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as f:
        f.truncate(size_mib << 20)
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-I", "128", str(image)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.fail(f"mkfs.ext4 failed: {made.stderr.strip() or made.returncode}")
    _mount("-o", "loop", str(image), str(path))
    try:
        (path / "lost+found").rmdir()  # the Maildir root must hold nothing else
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
