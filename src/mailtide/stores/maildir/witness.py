"""Proof that a sync's own writes were the only change to a Maildir folder, so that the stamp
taken after them (stamp.py) may be recorded as the folder's: the next sync then need not list
the folder it just wrote to.

A ``Witness`` is an inotify watch on the folder, its new/ and cur/, set up before the sync's
first write.  It counts only once the folder's stamp, read after the watch is in place, is
still the one the sync's listing (or the recorded stamp) started from: from then on every
change of an entry of new/ or cur/, of the keyword file, or of new/ and cur/ themselves is an
event in its queue.  The writer tells it of each of its own operations (``own``: a file that
arrived in or left new/ or cur/, the keyword file replaced); ``stamp`` reads the stamp, then
the queue, and gives the stamp only when every event is one of those operations.  Another
client's change in the same moment, even on the same name, is one event more than expected.
A lost event (``IN_Q_OVERFLOW``), a watch ended (new/ or cur/ removed or renamed, the file
system unmounted), or an event on the keyword file that is no replacement of ours, spoil
the proof for good.

The stamp's own rule holds: a stamp whose times lie in the current tick is no proof
(``folder_stamp`` gives None), so ``stamp`` gives None until they have settled
(``settles_in`` says how long that is).  Between the stamp and the queue, one read of each
directory waits for the changes under way in it (``_after_changes_in_flight``), so the event
of a change whose times the stamp shows is in the queue when it is read.

Linux only (inotify through ctypes); elsewhere ``start`` gives None and nothing is proven.
The witnesses of a process share one inotify instance (``_Watches``), whose events each
witness keeps by watch descriptor until it reads them itself: a user has 128 instances for all
programs (``fs.inotify.max_user_instances``), and closing one waits for the kernel's grace
period (7-17 ms here, once per instance), where removing a watch does not.  At most
``MAX_OPEN`` witnesses are open at once; a folder written beyond that is listed next time, as
without a witness.  A lost event (``IN_Q_OVERFLOW``) spoils every witness open.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir.flags import KEYWORDS_FILE
from mailtide.stores.maildir.stamp import SECOND, folder_stamp, settled_after

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_MASK_ADD = 0x20000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_ARRIVED = IN_CREATE | IN_MOVED_TO
_LEFT = IN_DELETE | IN_MOVED_FROM
_SELF = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED | IN_Q_OVERFLOW
_ENTRIES = _ARRIVED | _LEFT | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
# the folder itself: the keyword file (also edited in place) and new/, cur/ replaced
_FOLDER = _ENTRIES | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_FOLDER_NAMES = frozenset((KEYWORDS_FILE, "new", "cur"))
MESSAGE_DIRS = ("new", "cur")
# Own operations a witness keeps at most (about 200 bytes each): a sync that writes more to
# one folder (an initial one) lists it once more next time instead.
MAX_OWN = 4096
# Own operations between two reads of the shared queue into the witnesses' own lists: the
# kernel keeps 16,384 events per instance (``fs.inotify.max_queued_events``) for all of them.
DRAIN_EVERY = 256
MAX_OPEN = 32  # witnesses open at once
_open = 0  # witnesses open now
_open_lock = threading.Lock()

# (subdirectory or "" for the folder, file name, True: arrived / False: left)
Entry = tuple[str, str, bool]


def _load() -> tuple[Callable[..., int], Callable[..., int], Callable[..., int]] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add, rm = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add.restype = ctypes.c_int
    rm.argtypes, rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return init, add, rm


_INOTIFY = _load()


class _Watches:
    """The process's inotify instance, shared by its witnesses: which witness watches which
    directory under which descriptor (a directory watched twice has one descriptor), and the
    events read for each, kept until that witness reads them.  All under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd = -1
        self.routes: dict[int, list[tuple[Witness, str]]] = {}  # wd -> (witness, subdirectory)

    def add(self, witness: Witness, path: str, sub: str, mask: int) -> int:
        """Watch ``path`` for ``witness`` (as its ``sub``); the descriptor, or -1."""
        assert _INOTIFY is not None
        init, add, _ = _INOTIFY
        with self.lock:
            if self.fd < 0:
                self.fd = init(IN_NONBLOCK | IN_CLOEXEC)
                if self.fd < 0:
                    return -1
            wd = int(add(self.fd, os.fsencode(path), mask | IN_MASK_ADD))
            if wd >= 0:
                self.routes.setdefault(wd, []).append((witness, sub))
            return wd

    def remove(self, witness: Witness, wds: Iterable[int]) -> None:
        """``witness`` no longer watches; a descriptor nobody else uses is removed."""
        assert _INOTIFY is not None
        rm = _INOTIFY[2]
        with self.lock:
            for wd in wds:
                left = [r for r in self.routes.get(wd, []) if r[0] is not witness]
                if left:
                    self.routes[wd] = left
                else:
                    self.routes.pop(wd, None)
                    rm(self.fd, wd)  # its IN_IGNORED, read later, goes to nobody

    def read(self) -> None:
        """Hand every queued event to the witnesses watching its directory (the caller holds
        ``lock``)."""
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.EINTR:
                    continue
                self._spoil_all()
                return
            at = 0
            while at < len(data):
                wd, mask, _cookie, size = _HEADER.unpack_from(data, at)
                name = data[at + _HEADER.size : at + _HEADER.size + size].rstrip(b"\0")
                at += _HEADER.size + size
                if mask & IN_Q_OVERFLOW:
                    self._spoil_all()
                    continue
                for witness, sub in self.routes.get(wd, ()):
                    witness.heard(sub, mask, name)

    def _spoil_all(self) -> None:
        for routes in self.routes.values():
            for witness, _ in routes:
                witness.spoiled = True


_WATCHES = _Watches()


class Witness:
    """The inotify watch of one folder from before a sync's first write to its end.  Used
    from the writer's worker threads one at a time; ``close`` it when done."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._wds: list[int] = []
        self._expected: Counter[Entry] = Counter()
        self._owned = 0
        self._heard: list[tuple[str, int, bytes]] = []  # events for it, not yet matched
        self._open = True
        self.spoiled = False

    @classmethod
    def start(cls, folder: str, since: str | None) -> Witness | None:
        """A witness of ``folder`` whose stamp is still ``since`` now that it is watched; None
        when it is not (or ``since`` is None), or inotify cannot be had (then nothing is
        proven: the next sync lists the folder, as without a witness)."""
        if since is None or _INOTIFY is None or not _take():
            return None
        witness = cls(folder)
        try:
            for sub, mask in (("", _FOLDER), ("new", _ENTRIES), ("cur", _ENTRIES)):
                wd = _WATCHES.add(witness, os.path.join(folder, sub), sub, mask)
                if wd < 0:
                    witness.close()
                    return None
                witness._wds.append(wd)
            if folder_stamp(folder) != since:  # changed before the watch was in place
                witness.close()
                return None
        except MailboxError:  # new/ or cur/ gone: the write that follows says so
            witness.close()
            return None
        except BaseException:
            witness.close()
            raise
        return witness

    def own(self, path: str, arrived: bool) -> None:
        """One operation of the writer's own: ``path`` arrived in (created, renamed to) or left
        (unlinked, renamed from) new/, cur/ or the folder; paths elsewhere are no concern."""
        if self.spoiled:
            return
        self._owned += 1
        if self._owned > MAX_OWN:
            self.spoil()
            return
        sub, name = os.path.split(path)
        parent, base = os.path.split(sub)
        if sub == self.folder:
            self._expected[("", name, arrived)] += 1
        elif parent == self.folder and base in MESSAGE_DIRS:
            self._expected[(base, name, arrived)] += 1
        if self._owned % DRAIN_EVERY == 0:  # the shared queue holds 16,384 events at most
            self._drain()

    def _drain(self) -> None:
        """Read the shared queue, and drop the events that operations told already account
        for, with those operations (what a witness holds stays per drain, not per folder
        written); the others wait for ``stamp`` (the operation of an event may be told
        next: the second half of a rename)."""
        with _WATCHES.lock:
            _WATCHES.read()
            heard = self._heard
            self._heard = [e for e in heard if not self._match(e[0], e[1], os.fsdecode(e[2]))]

    def spoil(self) -> None:
        """The writer knows the folder no longer lists as it will record (a write it skipped)."""
        self.spoiled = True
        self._expected.clear()
        self._heard = []

    def heard(self, sub: str, mask: int, name: bytes) -> None:
        """An event of one of its directories, kept until ``stamp`` matches it (``_Watches``
        calls this, under its lock, while another witness reads the shared queue)."""
        if self.spoiled:
            return
        if len(self._heard) > 2 * MAX_OWN:
            self.spoiled = True
            self._heard.clear()
            return
        self._heard.append((sub, mask, name))

    def settles_in(self) -> float:
        """Seconds until the folder's times as they are now can prove something (0: now)."""
        try:
            at = settled_after(self.folder)
        except OSError:
            return 0.0
        return max(0.0, (at - time.time_ns()) / SECOND)

    def stamp(self) -> str | None:
        """The folder's stamp now, when it is proven that only the operations told to ``own``
        changed the folder since the witness started; None when it is not, or not yet (its
        times have not settled: ``settles_in``)."""
        if self.spoiled:
            return None
        try:
            now = folder_stamp(self.folder)
        except OSError:
            return None
        if now is None:
            return None
        if not _after_changes_in_flight(self.folder):
            return None
        self._read()
        return None if self.spoiled else now

    def _read(self) -> None:
        """Match every event queued for it against the expected ones."""
        with _WATCHES.lock:
            if self._open:
                _WATCHES.read()
            heard, self._heard = self._heard, []
        for sub, mask, name in heard:
            if self.spoiled or not self._match(sub, mask, os.fsdecode(name)):
                self.spoiled = True
                return

    def _match(self, sub: str, mask: int, name: str) -> bool:
        """Whether an event is one of its own operations, or of no concern."""
        if mask & _SELF:
            return False
        if sub == "" and name not in _FOLDER_NAMES:
            return True  # tmp/, .mailtide-id, subfolders, other programs' files
        if not mask & (_ARRIVED | _LEFT):  # the keyword file edited in place, touched
            return False
        entry = (sub, name, bool(mask & _ARRIVED))
        expected = self._expected[entry]
        if not expected:
            return False
        if expected == 1:
            del self._expected[entry]
        else:
            self._expected[entry] = expected - 1
        return True

    def close(self) -> None:
        if self._open:
            self._open = False
            _WATCHES.remove(self, self._wds)
            self._wds = []
            _give_back()


def _after_changes_in_flight(folder: str) -> bool:
    """Wait for the changes of the folder's entries that are under way to end (False when a
    directory cannot be read).  A rename, unlink or create sets its directory's times and
    queues its inotify event while it holds the directory's lock, which reading a directory
    also takes: after one read of each, every change whose times a stamp read before shows
    has its event in the queue, however long the kernel took between the two."""
    for sub in ("", "new", "cur"):
        try:
            fd = os.open(os.path.join(folder, sub), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            with os.scandir(fd) as entries:  # one getdents: not a listing of the folder
                next(entries, None)
        except OSError:
            return False
        finally:
            os.close(fd)
    return True


def _take() -> bool:
    global _open
    with _open_lock:
        if _open >= MAX_OPEN:
            return False
        _open += 1
        return True


def _give_back() -> None:
    global _open
    with _open_lock:
        _open -= 1
