"""Client push: which mailboxes of a Maildir another mail client changed, as it happens.

``MaildirWatcher`` watches an account's Maildir tree with inotify (through
watchdog) and tells the daemon, on the event loop's thread, which folders'
messages changed (a file created, renamed or removed in ``cur/`` or ``new/``)
and whether the folder tree may have changed (a directory created, removed or
renamed).  It never decides when to sync: the account task debounces.

Promises:

- nothing is lost silently.  When events are lost (an inotify queue
  overflow) or cannot be had (too few inotify watches or instances), the
  change says ``rescan=True``: list every folder.  Without inotify the
  watcher degrades to a ``rescan=True`` every ``poll`` seconds, with one
  warning (``maildir.watch_degraded``) naming the sysctl to raise.
- a root that disappears (unmounted, removed, replaced) is a ``tree=True``
  change, then the root is watched again when it is back, with a rescan.
  The root's identity (device, inode) is checked every ``root_check``
  seconds, because an unmount sends no event watchdog passes on.
- mailtide's own writes, announced in ``OwnChanges``, are not reported.
- files in ``tmp/``, metadata and content changes, and reads are not
  changes (the inotify mask asks only for creations, deletions and renames,
  so our own scans cost no events).

One recursive watch on the root, not one watch per folder: watchdog runs a
thread per scheduled watch, and its recursive watch follows directories
created, removed and renamed under the root (subtree moves included) on its
own.  The cost is one inotify watch per directory: a folder is 4 (itself,
``cur``, ``new``, ``tmp``), a 200-folder tree about 800, against a per-user
``fs.inotify.max_user_watches`` of at least 8,192 on any kernel (scaled with
RAM since Linux 5.11); per-folder watches on ``cur`` and ``new`` would save
a quarter of that.  Running out is the degraded mode above.

Changes reach the consumer through a callback on the loop's thread, merged:
the account task has several trigger sources (IMAP IDLE, timers, signals)
feeding one queue, and a callback that puts into that queue fits better than
one more async iterator to multiplex.  At most one call per ``SPACING``
seconds: a burst of 10,000 renames makes a handful of calls naming every
folder it touched.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import math
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyConstants,
    InotifyEvent,
    InotifyFD,
    Mask,
    WatchCallback,
    WatchDescriptor,
)

from mailtide.deadline import within
from mailtide.stores.base import UnsafeFolderName
from mailtide.stores.maildir.layout import layout_for
from mailtide.stores.maildir.own_changes import OwnChanges
from mailtide.stores.maildir.settings import Layout

log = structlog.get_logger("mailtide.stores.maildir")

SPACING = 0.1  # s between two calls of the callback: merges bursts, delays a change at most this
DEFAULT_POLL = 60.0  # s between full rescans when inotify is not available
DEFAULT_ROOT_CHECK = 5.0  # s between checks that the watched root is still the root
_JOIN = 2.0  # s to wait for one of watchdog's threads to end (it takes at most 0.5 s)
MESSAGE_DIRS = ("cur", "new")

# The sysctl that bounds each inotify resource, by the errno of running out of it.
LIMITS = {
    errno.ENOSPC: "fs.inotify.max_user_watches",
    errno.EMFILE: "fs.inotify.max_user_instances",
}
# The kernel ends a watch with IN_IGNORED (after IN_UNMOUNT when the file system goes away).
_ROOT_GONE = InotifyConstants.IN_IGNORED | InotifyConstants.IN_UNMOUNT
# What watchdog is asked for: creations, deletions and renames (also of directories), and lost
# events; its inotify mask then leaves out opens, reads, writes and attribute changes.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
]


@dataclass(frozen=True, slots=True)
class MaildirChange:
    """What changed in a Maildir tree since the last change was delivered.

    ``folders``: canonical names of folders whose messages changed (sync them).
    ``tree``: folders may have been created, removed or renamed (list the folders).
    ``rescan``: changes may have been missed (list the folders and sync every one).
    """

    folders: frozenset[str] = frozenset()
    tree: bool = False
    rescan: bool = False


# -- paths to folders (pure) ---------------------------------------------------------------


def folder_of(root: str, layout: Layout, path: str) -> str | None:
    """The canonical name of the folder a message file at ``path`` belongs to.

    ``path`` must be in ``cur/`` or ``new/`` of a directory that the layout's
    listing names as a folder (``scan`` of ``root``, whose spelling ``path``
    shares); anything else (``tmp/``, a hidden directory, a name the layout
    refuses, a path outside ``root``) gives None.
    """
    parts = _parts_below(root, path)
    if parts is None or len(parts) < 2 or parts[-2] not in MESSAGE_DIRS:
        return None
    return _folder_named(layout, tuple(parts[:-2]))


def changes_tree(root: str, layout: Layout, path: str) -> bool:
    """Whether a directory created, removed or renamed at ``path`` may change the folder list.

    True for the root, for ``cur``/``new`` of a folder (they make it one), and
    for any directory that is or may hold a folder; False for ``tmp``, for
    directories inside ``cur``/``new``/``tmp``, and for directories the
    layout's listing never looks at (hidden ones in ``fs``; anything but
    ``<root>/.name`` in ``maildir++``).
    """
    parts = _parts_below(root, path)
    if parts is None:
        return False
    if not parts:
        return True
    *parent, last = parts
    if last in MESSAGE_DIRS:
        return _folder_named(layout, tuple(parent)) is not None
    if last == "tmp" or any(p in ("cur", "new", "tmp") for p in parent):
        return False
    if layout == "maildir++":
        return len(parts) == 1 and last.startswith(".") and last not in (".", "..")
    return not any(p.startswith(".") for p in parts)


def _parts_below(root: str, path: str) -> list[str] | None:
    if path == root:
        return []
    prefix = root.rstrip(os.sep) + os.sep
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].split(os.sep)


@functools.lru_cache(maxsize=4096)  # a burst hits the same few folders thousands of times
def _folder_named(layout: Layout, parts: tuple[str, ...]) -> str | None:
    """The folder whose directory is ``<root>/<parts>``: the layout's mapping backwards, kept only
    when it maps forward to the same directory (so case variants of INBOX, names the layout
    refuses and hidden directories name no folder, as in the layout's listing)."""
    if layout == "maildir++":
        if not parts:
            name = "INBOX"
        elif len(parts) == 1 and parts[0].startswith("."):
            name = parts[0][1:].replace(".", "/")
        else:
            return None
    elif parts:
        name = "/".join(parts)
    else:
        return None
    try:
        if layout_for(layout).relative(name) != list(parts):
            return None
    except UnsafeFolderName:
        return None
    return name


# -- from watchdog's threads to the loop ---------------------------------------------------


class _Outbox:
    """Changes noted on any thread, merged, and handed to ``deliver`` on the loop's thread at
    most once per ``SPACING`` seconds; nothing is handed over once closed."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[MaildirChange], None],
        context: contextvars.Context,
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._context = context  # the starting task's (the account's log context)
        self._lock = threading.Lock()
        self._folders: set[str] = set()
        self._tree = False
        self._rescan = False
        self._armed = False  # a delivery is on its way to the loop
        self._closed = False
        self._last = -math.inf  # loop time of the last delivery
        self._timer: asyncio.TimerHandle | None = None

    def note(self, folders: Iterable[str] = (), tree: bool = False, rescan: bool = False) -> None:
        """Add to the next change (any thread)."""
        with self._lock:
            if self._closed:
                return
            self._folders.update(folders)
            self._tree |= tree
            self._rescan |= rescan
            if self._armed:
                return
            self._armed = True
        try:
            self._loop.call_soon_threadsafe(self._arm, context=self._context)
        except RuntimeError:  # the loop is closed: there is no one left to tell
            pass

    def _arm(self) -> None:
        if not self._closed:
            delay = max(0.0, self._last + SPACING - self._loop.time())
            self._timer = self._loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        with self._lock:
            if self._closed:
                return
            change = MaildirChange(frozenset(self._folders), self._tree, self._rescan)
            self._folders = set()
            self._tree = self._rescan = False
            self._armed = False
        self._timer = None
        self._last = self._loop.time()
        self._deliver(change)

    def close(self) -> None:
        """Deliver nothing from now on (loop thread)."""
        with self._lock:
            self._closed = True
        if self._timer is not None:
            self._timer.cancel()


class _Events(FileSystemEventHandler):
    """watchdog's events (on its observer thread) as notes in the outbox."""

    def __init__(self, root: str, layout: Layout, own: OwnChanges | None, outbox: _Outbox):
        self._root = root  # symlinks resolved, as in watchdog's paths and the store's
        self._layout = layout
        self._own = own
        self._outbox = outbox

    def dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, EventsLostEvent):
            self._outbox.note(rescan=True)
            return
        paths = [os.fsdecode(p) for p in (event.src_path, event.dest_path) if p]
        if self._own is not None:
            # every path is consumed, tmp/ too: an expectation is dropped once its event is seen
            paths = [p for p in paths if not self._own.consume(p)]
        if event.is_directory:
            if any(changes_tree(self._root, self._layout, p) for p in paths):
                self._outbox.note(tree=True)
            return
        folders = {f for p in paths if (f := folder_of(self._root, self._layout, p)) is not None}
        if folders:
            self._outbox.note(folders)


class _Reader(InotifyFD):
    """watchdog's inotify reader, which also tells when a watch could not be added for lack of
    watches (watchdog only logs that for a directory created after the start, and leaves it
    unwatched), and when the root's own watch ended (the root removed or its file system
    unmounted: an unmount is an event watchdog does not pass on)."""

    def __init__(self, root: str, on_limit: Callable[[OSError], None], on_lost: Callable[[], None]):
        super().__init__()
        self._root = os.fsencode(root)
        self._root_wd: WatchDescriptor | None = None
        self._on_limit = on_limit
        self._on_lost = on_lost
        self.root_lost = False

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        try:
            wd = super().add_callback(path, mask, callback, id_)
        except OSError as err:
            if err.errno in LIMITS:
                self._on_limit(err)
            raise
        if path == self._root:  # again after an overflow, under a new descriptor
            self._root_wd = wd
        return wd

    def handle_event(self, event: InotifyEvent) -> None:
        super().handle_event(event)
        if event.wd == self._root_wd and event.mask & _ROOT_GONE:
            self.root_lost = True
            self._on_lost()


@dataclass(slots=True)
class _Inotify:
    """A recursive inotify watch on a root, with watchdog's threads (blocking calls)."""

    observer: BaseObserver
    reader: _Reader
    identity: tuple[int, int]  # (st_dev, st_ino) of the root when the watch was set

    @classmethod
    def open(
        cls,
        root: str,
        events: Callable[[str], _Events],
        on_limit: Callable[[OSError], None],
        on_lost: Callable[[], None],
    ) -> _Inotify:
        """Watch ``root``; OSError when it is missing (ENOENT, ENOTDIR) or inotify runs out."""
        real = os.path.realpath(root)
        st = os.stat(real)
        if not os.path.isdir(real):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", real)
        reader = _Reader(real, on_limit, on_lost)  # EMFILE: too many inotify instances
        reader.start()
        observer = BaseObserver(InotifyEmitter, inotify_fd=reader)
        try:
            observer.schedule(events(real), real, recursive=True, event_filter=_EVENTS)
            observer.start()  # adds the watches: ENOSPC when there are too few
        except BaseException:
            observer.unschedule_all()
            reader.stop()
            reader.join(_JOIN)
            raise
        return cls(observer, reader, (st.st_dev, st.st_ino))

    def current(self, identity: tuple[int, int] | None) -> bool:
        """Whether this still watches the root, which now has ``identity``."""
        return identity == self.identity and not self.reader.root_lost

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(_JOIN)
        self.reader.stop()
        self.reader.join(_JOIN)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# -- the watcher ---------------------------------------------------------------------------


class MaildirWatcher:
    """Reports changes under one account's Maildir root to ``on_change``.

    ``on_change`` is called on the event loop's thread (the loop ``start`` runs
    in, in the context of the task that called ``start``), with changes merged,
    never more often than every ``SPACING`` seconds, and never after ``stop``
    returns; it must not block.  ``own`` holds the paths mailtide itself is
    about to write, whose events are not reported.

    ``start`` returns once the tree is watched (changes from then on are
    reported), or once the watcher has degraded to polling, or at once when
    the root is missing (it is watched when it appears, with a rescan).
    ``stop`` ends watchdog's threads, within a second; it may be called twice.
    Also an async context manager.
    """

    def __init__(
        self,
        root: str,
        layout: Layout,
        on_change: Callable[[MaildirChange], None],
        *,
        own: OwnChanges | None = None,
        poll: float = DEFAULT_POLL,
        root_check: float = DEFAULT_ROOT_CHECK,
    ) -> None:
        if poll <= 0 or root_check <= 0:
            raise ValueError("poll and root_check must be positive")
        layout_for(layout)  # ValueError for an unknown layout, now rather than in a thread
        self.root = os.path.expanduser(root)
        self.layout: Layout = layout
        self._on_change = on_change
        self._own = own
        self._poll = poll
        self._root_check = root_check
        self._outbox: _Outbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._inotify: _Inotify | None = None
        self._wake = asyncio.Event()  # stop, a watch limit hit, the root's watch ended: look now
        self._stopping = False
        self._limit: OSError | None = None  # a watch could not be added for lack of watches
        self._degraded = False

    async def __aenter__(self) -> MaildirWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("a MaildirWatcher is started once")
        loop = asyncio.get_running_loop()
        self._outbox = _Outbox(loop, self._on_change, contextvars.copy_context())
        ready: asyncio.Future[None] = loop.create_future()
        self._task = loop.create_task(self._supervise(ready))
        await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping = True
        if self._outbox is not None:
            self._outbox.close()
        self._wake.set()
        await self._task

    @property
    def degraded(self) -> bool:
        """True once inotify is given up for polling."""
        return self._degraded

    # -- the supervising task: owns the inotify watch, checks the root, polls when degraded --

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        try:
            await self._watch_root(rescan=False)
            ready.set_result(None)
            while not self._stopping:
                if self._degraded:
                    await self._pause(self._poll)
                    self._note(rescan=True)
                elif self._limit is not None:
                    await self._degrade(self._limit)
                else:
                    await self._pause(self._root_check)
                    if not self._stopping:
                        await self._check_root()
        finally:
            await self._unwatch()

    async def _pause(self, seconds: float) -> None:
        try:
            await within(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _watch_root(self, rescan: bool) -> None:
        """Watch the root as it is now; a missing root stays unwatched until ``_check_root``."""
        assert self._outbox is not None
        outbox = self._outbox

        def events(real: str) -> _Events:
            return _Events(real, self.layout, self._own, outbox)

        try:
            self._inotify = await asyncio.to_thread(
                _Inotify.open, self.root, events, self._limit_from_thread, self._lost_from_thread
            )
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR):
                await self._degrade(err)
            return
        if rescan:  # nothing was watched for a while
            self._note(rescan=True)

    async def _check_root(self) -> None:
        """A root that is gone or is another directory now (unmounted, removed, replaced) is a tree
        change; the root there now is watched, with a rescan."""
        now = await asyncio.to_thread(_identity, self.root)
        if self._inotify is not None:
            if self._inotify.current(now):
                return
            await self._unwatch()
            self._note(tree=True)
        if now is not None and not self._stopping:
            await self._watch_root(rescan=True)

    async def _degrade(self, err: OSError) -> None:
        if self._degraded:
            return
        self._degraded = True
        await self._unwatch()
        limit = LIMITS.get(err.errno or 0)
        fix = {"fix": f"raise the sysctl {limit}"} if limit else {}
        log.warning(
            "maildir.watch_degraded",
            root=self.root,
            error=err.strerror or str(err),
            detail=f"client changes are picked up by a full rescan every {self._poll:g} s",
            **fix,
        )
        self._note(rescan=True)

    async def _unwatch(self) -> None:
        inotify, self._inotify = self._inotify, None
        if inotify is not None:
            await asyncio.to_thread(inotify.close)

    def _limit_from_thread(self, err: OSError) -> None:
        """On watchdog's thread: a watch could not be added; degrade (on the loop)."""
        self._from_thread(self._limit_reached, err)

    def _lost_from_thread(self) -> None:
        """On watchdog's thread: the root's watch ended; look at the root now (on the loop)."""
        self._from_thread(self._root_lost)

    def _from_thread(self, callback: Callable[..., None], *args: object) -> None:
        if self._task is None:
            return
        try:
            self._task.get_loop().call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed
            pass

    def _limit_reached(self, err: OSError) -> None:
        if self._limit is None and not self._degraded:
            self._limit = err
            self._wake.set()

    def _root_lost(self) -> None:
        # only the current watch's: closing a watch ends its root's watch too
        if self._inotify is not None and self._inotify.reader.root_lost:
            self._wake.set()

    def _note(self, tree: bool = False, rescan: bool = False) -> None:
        if self._outbox is not None and not self._stopping:
            self._outbox.note(tree=tree, rescan=rescan)
