"""Making writes durable: fsync of files and directories, and Linux ``syncfs``.

Delivery makes a whole batch durable at once: the message files are written
to tmp/ without fsync, then one ``syncfs`` on the Maildir's file system
flushes them all before any is renamed into place (see delivery.py for the
figures that chose this).  Where ``syncfs`` is missing we fsync each file.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def has_syncfs() -> bool:
    return _SYNCFS is not None


def syncfs(path: str) -> None:
    """Flush every dirty page of the file system holding ``path`` (raises OSError)."""
    if _SYNCFS is None:
        raise OSError("syncfs is not available on this system")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dirs(paths: Iterable[str]) -> None:
    for path in dict.fromkeys(paths):  # once each, in order
        fsync_dir(path)
