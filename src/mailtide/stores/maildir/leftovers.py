"""Clearing a folder's tmp/ of files no writer will ever rename into place.

A writer killed mid-delivery (``kill -9``, a power cut) leaves its files in
tmp/, and nobody else removes them.  Two kinds go:

- mailtide's own (a name ``filenames.writer_pid`` recognises, written on this
  host) whose writer is gone: not this process (a delivery of ours may be
  under way) and no live process with that pid (another mailtide using this
  Maildir through another account; a reused pid only delays the removal);
- anyone's file, by the Maildir convention, when neither read nor modified
  for 36 hours (atime and mtime) and untouched for an hour (ctime): a writer
  that set an old date with utime just before its rename changed the ctime
  (a ctime cannot be set), so a file still being written or about to be
  renamed is never taken.  mailtide stages its own files with atime = now
  for the same reason, so that other programs' tmp cleaning spares them.

Cost: one readdir of tmp/ (empty but for leftovers and deliveries in
flight), one lstat per file that is not mailtide's own, one kill(pid, 0) per
file of ours.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass

from mailtide.stores.maildir.filenames import writer_pid

STALE = 36 * 3600  # s without a read or a write: the Maildir convention
UNTOUCHED = 3600  # s since the file's inode last changed (a write, a utime, a rename)


@dataclass(frozen=True, slots=True)
class Cleared:
    """What was removed from one tmp/: files of dead mailtide runs, and stale files."""

    own: int = 0
    stale: int = 0

    @property
    def total(self) -> int:
        return self.own + self.stale


def clear_tmp(folder: str, now: float | None = None) -> Cleared:
    """Remove the leftovers from ``folder``'s tmp/ (see the module docstring); a tmp/ that is
    missing or cannot be listed, and files that cannot be removed, are left as they are."""
    now = time.time() if now is None else now
    own = stale = 0
    try:
        entries = list(os.scandir(os.path.join(folder, "tmp")))
    except OSError:
        return Cleared()
    for entry in entries:
        pid = writer_pid(entry.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            own += _remove(entry.path)
        elif pid != os.getpid() and _stale(entry, now):
            stale += _remove(entry.path)
    return Cleared(own, stale)


def _stale(entry: os.DirEntry[str], now: float) -> bool:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return False  # not a file a delivery left; someone's, on purpose
    used = max(st.st_atime, st.st_mtime)
    return used < now - STALE and st.st_ctime < now - UNTOUCHED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else (EPERM)
    return True


def _remove(path: str) -> int:
    try:
        os.unlink(path)
    except OSError:
        return 0
    return 1
