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
the kernel stamps files with, which may lag the one ``time.time_ns`` reads.

A local file system with sub-second times (``local_clock``) stamps a change with the kernel's
coarse clock (``CLOCK_REALTIME_COARSE``, one jiffy fine; since Linux 6.13 a finer time that is
never earlier): a change after a moment gets a time no earlier than that clock read at that
moment.  So a time older than that clock, read before the times, is a proof already, and a
sync's own writes settle a jiffy after their last one instead of at the end of their second.
``EVENT_MARGIN`` more is asked for: a witness (witness.py) reads its inotify queue after the
times, and the event of another program's write to the keyword file in place (not under the
folder's lock, which the witness waits on for the entries of new/ and cur/) is queued at the
end of that program's system call, which a busy machine may hold for a moment.
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
EVENT_MARGIN = 20_000_000  # ns: a change's system call, between its times and its event
JIFFY = 10_000_000  # ns: the coarse clock's step at its coarsest (HZ=100)
_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)  # Linux's number, where Python names none


def folder_stamp(folder: str, now_ns: int | None = None) -> str | None:
    """The stamp of the Maildir folder at ``folder`` (see the module docstring), or None when
    a time in it is too recent to prove anything.  MailboxError when new/ or cur/ cannot be
    read (a folder that has vanished must never look unchanged)."""
    now, coarse = _now() if now_ns is None else (now_ns, now_ns)
    try:
        parts, times, fine = _read(folder)
    except OSError as err:
        raise MailboxError(f"Maildir folder {folder} cannot be read: {err}") from err
    if not all(_settled(t, now, coarse, fine) for t in times):
        return None
    return " ".join(parts)


def settled_after(folder: str) -> int:
    """The moment (``time.time_ns``) from which the times new/ and cur/ of ``folder`` have now
    can prove something (``folder_stamp`` gives them); OSError when they cannot be read."""
    _, times, fine = _read(folder)
    return max(_settles_at(t, fine) for t in times)


def _now() -> tuple[int, int]:
    """``time.time_ns`` and the coarse clock the kernel stamps files with, read in that order
    (the first is the later where they differ); the coarse clock is ``time.time_ns`` less a
    jiffy where it cannot be read (no Linux: every file system is then taken as coarse)."""
    now = time.time_ns()
    try:
        return now, time.clock_gettime_ns(_COARSE)
    except (OSError, AttributeError):
        return now, now - JIFFY


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


def _fine(time_ns: int, fine: bool) -> bool:
    """Whether ``time_ns`` is a time from this machine's kernel clock (``local_clock``), not a
    whole second (two-second ticks, see above)."""
    return fine and time_ns % SECOND != 0


def _tick_of(time_ns: int) -> int:
    """The tick of a file system that keeps whole seconds (two for a time with no sub-second
    part) or another machine's clock."""
    return 2 * SECOND if time_ns % SECOND == 0 else SECOND


def _settles_at(time_ns: int, fine: bool) -> int:
    """The moment (``time.time_ns``) from which ``time_ns`` is a proof (``_settled``)."""
    if _fine(time_ns, fine):  # the coarse clock past it by the margin, a jiffy behind
        return time_ns + EVENT_MARGIN + JIFFY + 1
    tick = _tick_of(time_ns)
    return tick * (time_ns // tick + 1) + CLOCK_SLACK


def _settled(time_ns: int, now_ns: int, coarse_ns: int, fine: bool) -> bool:
    """Whether a change after the moment ``now_ns`` (the coarse clock read then:
    ``coarse_ns``) must give a time other than ``time_ns``: on a local clock, one older than
    that clock by ``EVENT_MARGIN``; elsewhere, in an earlier tick of the file system's clock
    than any such change can have."""
    if _fine(time_ns, fine):
        return time_ns < coarse_ns - EVENT_MARGIN
    tick = _tick_of(time_ns)
    return time_ns // tick < (now_ns - CLOCK_SLACK) // tick
