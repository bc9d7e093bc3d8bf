"""A Maildir folder's stamp: a token that is equal at two moments only if the folder lists the
same messages with the same flags at both, so a sync can skip listing it.

Every change a listing can see is a change to a directory entry of new/ or cur/ (a file
delivered, renamed for its flags, moved between them, deleted), which sets that directory's
mtime and ctime, or a new keyword table (``dovecot-keywords``, replaced by rename, or edited in
place), which spells the flags.  The stamp is those directories' device, inode, mtime and ctime
and the keyword file's inode, times and size: a directory replaced by another is a new inode,
and a ``touch -d`` or ``os.utime`` that puts an mtime back sets the ctime to now.

A time is only a proof where it cannot be taken again by a later change.  A file system keeps
times in ticks (a second on ext4 with small inodes and many network file systems, two on FAT):
a change in the same tick as the time read leaves it as it was.  So a time in the tick of the
moment the stamp is read, or later, makes the stamp ambiguous: ``folder_stamp`` then gives
None, and the folder is listed.  A time with no sub-second part is taken to come from a file
system with two-second ticks (on one with finer times that is one chance in a billion, and
costs a listing).  The moment is read before the times, with a margin for the coarse clock
the kernel stamps files with, which may lag the one ``time.time_ns`` reads.  A local file
system with sub-second times (``local_clock``) has the kernel's clock for its tick: a time
``CLOCK_SLACK`` older than the moment is a proof, and a sync's own writes settle in a
fraction of a second instead of at the end of theirs.
"""

from __future__ import annotations

import os
import stat
import time

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir.flags import KEYWORDS_FILE
from mailtide.stores.maildir.local_clock import stamps_finely

SECOND = 1_000_000_000  # ns
CLOCK_SLACK = 100_000_000  # ns: how far a file time may lag time.time_ns (a jiffy, with room)


def folder_stamp(folder: str, now_ns: int | None = None) -> str | None:
    """The stamp of the Maildir folder at ``folder`` (see the module docstring), or None when
    a time in it is too recent to prove anything.  MailboxError when new/ or cur/ cannot be
    read (a folder that has vanished must never look unchanged)."""
    now = time.time_ns() if now_ns is None else now_ns
    try:
        parts, times, fine = _read(folder)
    except OSError as err:
        raise MailboxError(f"Maildir folder {folder} cannot be read: {err}") from err
    if not all(_settled(t, now, fine) for t in times):
        return None
    return " ".join(parts)


def settled_after(folder: str) -> int:
    """The moment (``time.time_ns``) from which the times new/ and cur/ of ``folder`` have now
    can prove something (``folder_stamp`` gives them); OSError when they cannot be read."""
    _, times, fine = _read(folder)
    return max(_tick_of(t, fine) * (t // _tick_of(t, fine) + 1) + CLOCK_SLACK for t in times)


def _read(folder: str) -> tuple[list[str], list[int], bool]:
    """What the stamp is made of: its parts, the times in them, and whether the file system
    keeps this machine's clock finely (``local_clock``).  OSError when new/ or cur/ cannot be
    read or is no directory."""
    parts: list[str] = []
    times: list[int] = []
    fine = True
    for sub in ("new", "cur"):
        st = os.stat(os.path.join(folder, sub))
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(f"{sub} is no directory")
        parts.append(f"{sub}={st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}")
        times += (st.st_mtime_ns, st.st_ctime_ns)
        fine = fine and stamps_finely(st.st_dev)
    try:
        kw = os.lstat(os.path.join(folder, KEYWORDS_FILE))
    except FileNotFoundError:
        parts.append("kw=-")
    else:
        parts.append(f"kw={kw.st_ino}:{kw.st_mtime_ns}:{kw.st_ctime_ns}:{kw.st_size}")
        times += (kw.st_mtime_ns, kw.st_ctime_ns)
    return parts, times, fine


def _tick_of(time_ns: int, fine: bool) -> int:
    """The file system's tick for a time it gave: two seconds for a whole second, the
    kernel's clock (within ``CLOCK_SLACK``) on a local file system with finer times, else a
    second."""
    if time_ns % SECOND == 0:
        return 2 * SECOND
    return CLOCK_SLACK if fine else SECOND


def _settled(time_ns: int, now_ns: int, fine: bool) -> bool:
    """Whether a change after ``now_ns`` must give a time other than ``time_ns``: it lies in
    an earlier tick of the file system's clock than any such change can."""
    tick = _tick_of(time_ns, fine)
    return time_ns // tick < (now_ns - CLOCK_SLACK) // tick
