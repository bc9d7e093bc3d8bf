"""Client push: MaildirWatcher on real Maildir trees, with real inotify and watchdog's threads.

Changes are made as a mail client makes them (``maildir_helpers``); waits are
bounded polls.  "Nothing reported" is shown with a sentinel: a message
delivered last into a folder of its own; once that folder is reported, every
earlier event has been handled (inotify and watchdog keep the order).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import structlog
from watchdog.observers import inotify_c

from maildir_helpers import deliver, folder_dir, messages, set_letters
from mailtide.stores.maildir.journal import WriteJournal
from mailtide.stores.maildir.own_changes import OwnChanges
from mailtide.stores.maildir.settings import MaildirSettings
from mailtide.stores.maildir.store import MaildirStore
from mailtide.stores.maildir.watch import (
    SPACING,
    MaildirChange,
    MaildirWatcher,
    changes_tree,
    folder_of,
)
from stores.maildir.tmpfs import tmpfs

MSG = b"Message-ID: <m@example.org>\r\nSubject: hi\r\n\r\nHello.\r\n"
# s: the longest any test waits for a change, a hang guard only (a change is seen in
# milliseconds on an idle machine, an inotify overflow in about a second; a loaded one,
# with the suite on several workers, took over 5 s)
WAIT = 30.0
SENTINEL = "Sentinel"


# ---- folder_of and changes_tree (pure) ---------------------------------------------------

R = "/home/u/Mail"


@pytest.mark.parametrize(
    ("layout", "rel", "folder"),
    [
        ("fs", "INBOX/new/1.a.host", "INBOX"),
        ("fs", "INBOX/cur/1.a.host:2,S", "INBOX"),
        ("fs", "Archive/2024/cur/1.a.host:2,RS", "Archive/2024"),
        ("fs", "Project Alpha/new/1.a.host", "Project Alpha"),
        ("fs", "Entwürfe/new/1.a.host", "Entwürfe"),
        ("fs", "日本語/Sub/cur/1.a.host:2,", "日本語/Sub"),
        ("fs", "INBOX/tmp/1.a.host", None),
        ("fs", "INBOX/Sub/tmp/1.a.host", None),
        ("fs", "inbox/new/1.a.host", None),  # a case variant of INBOX: listed as refused
        ("fs", ".notmuch/cur/1.a.host", None),  # hidden: never listed
        ("fs", "Archive/.hidden/new/1.a.host", None),
        ("fs", "cur/1.a.host", None),  # the root is no folder in fs
        ("fs", "Archive/1.a.host", None),  # beside cur/new, not in them
        ("fs", "INBOX/cur/sub/1.a.host", None),
        ("maildir++", "new/1.a.host", "INBOX"),
        ("maildir++", "cur/1.a.host:2,S", "INBOX"),
        ("maildir++", ".Archive.2024/cur/1.a.host:2,RS", "Archive/2024"),
        ("maildir++", ".Entwürfe/new/1.a.host", "Entwürfe"),
        ("maildir++", ".INBOX.Sub/new/1.a.host", "INBOX/Sub"),
        ("maildir++", "tmp/1.a.host", None),
        ("maildir++", ".Archive/tmp/1.a.host", None),
        ("maildir++", ".INBOX/cur/1.a.host", None),  # conflicts with INBOX, the root
        ("maildir++", ".inbox.Sub/cur/1.a.host", None),  # a case variant of INBOX
        ("maildir++", "Archive/cur/1.a.host", None),  # no dot: not a maildir++ folder
        ("maildir++", ".Archive/Sub/cur/1.a.host", None),  # maildir++ does not nest
        ("maildir++", ".a..b/new/1.a.host", None),  # an empty name component
    ],
)
def test_folder_of(layout: str, rel: str, folder: str | None) -> None:
    assert folder_of(R, layout, f"{R}/{rel}") == folder  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", ["fs", "maildir++"])
def test_folder_of_paths_outside_the_root(layout: str) -> None:
    for path in ("/elsewhere/INBOX/new/1", R + "2/INBOX/new/1", R + "2/new/1", R, "/"):
        assert folder_of(R, layout, path) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layout", "rel", "changes"),
    [
        ("fs", "", True),  # the root itself
        ("fs", "Archive", True),  # may hold folders
        ("fs", "Archive/2024", True),
        ("fs", "Archive/2024/cur", True),  # makes or unmakes a folder
        ("fs", "Archive/2024/new", True),
        ("fs", "Archive/2024/tmp", False),
        ("fs", "Archive/cur/x", False),  # inside a folder's cur/
        ("fs", ".notmuch", False),
        ("fs", ".notmuch/xapian", False),
        ("fs", "cur", False),  # the root's own cur/ is no folder in fs
        ("maildir++", "", True),
        ("maildir++", "cur", True),  # INBOX's
        ("maildir++", "tmp", False),
        ("maildir++", ".Archive.2024", True),
        ("maildir++", ".Archive.2024/cur", True),
        ("maildir++", ".Archive.2024/tmp", False),
        ("maildir++", ".notmuch/xapian", False),
        ("maildir++", "Archive", False),  # no dot: not listed
    ],
)
def test_changes_tree(layout: str, rel: str, changes: bool) -> None:
    path = f"{R}/{rel}" if rel else R
    assert changes_tree(R, layout, path) is changes  # type: ignore[arg-type]


# ---- OwnChanges (pure, with a clock) -----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_expectation_matches_one_event() -> None:
    own = OwnChanges()
    own.expect("/m/INBOX/cur/a:2,S", "/m/INBOX/cur/a:2,RS")
    own.expect("/m/INBOX/cur/a:2,S")  # written twice, expected twice
    assert own.consume("/m/INBOX/cur/a:2,RS")
    assert not own.consume("/m/INBOX/cur/a:2,RS")
    assert own.consume("/m/INBOX/cur//a:2,S")  # the same path, spelt differently
    assert own.consume("/m/INBOX/cur/a:2,S")
    assert not own.consume("/m/INBOX/cur/a:2,S")
    assert not own.consume("/m/INBOX/new/b")
    assert len(own) == 0


def test_expectations_lapse_between_half_the_ttl_and_the_ttl() -> None:
    clock = Clock()
    own = OwnChanges(ttl=60, clock=clock)
    for start in (0.0, 29.9):  # early and late in a generation
        clock.now = 1020.0 + start  # generations start at multiples of 30 s
        own.expect("/m/a")
        clock.now += 30.0
        assert own.consume("/m/a"), start  # honoured for at least ttl / 2
        own.expect("/m/b")
        clock.now += 60.0
        assert not own.consume("/m/b"), start  # never after ttl
        assert len(own) == 0


def test_expectations_are_dropped_once_seen_or_lapsed() -> None:
    """50k expectations (a big sync) take memory only until each is seen or lapses."""
    clock = Clock()
    own = OwnChanges(ttl=60, clock=clock)
    paths = [f"/m/INBOX/new/{i}.mailtide" for i in range(50_000)]
    own.expect(*paths)
    assert len(own) == 50_000
    assert all(own.consume(p) for p in paths)
    assert len(own) == 0
    own.expect(*paths)
    clock.now += 60.0
    assert len(own) == 0
    assert not own.consume(paths[0])


# ---- the watcher on a real tree ----------------------------------------------------------


class Seen:
    """The changes delivered to the callback, checked to arrive on the loop's thread."""

    def __init__(self) -> None:
        self.changes: list[MaildirChange] = []
        self.thread = threading.get_ident()

    def __call__(self, change: MaildirChange) -> None:
        assert threading.get_ident() == self.thread
        self.changes.append(change)

    @property
    def folders(self) -> set[str]:
        return {f for c in self.changes for f in c.folders}

    @property
    def tree(self) -> bool:
        return any(c.tree for c in self.changes)

    @property
    def rescans(self) -> int:
        return sum(c.rescan for c in self.changes)

    async def until(self, what: Callable[[Seen], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not what(self):
            if time.monotonic() > deadline:
                pytest.fail(f"not seen within {timeout} s; seen: {self.changes}")
            await _tick()

    async def settled(self, root: Path, layout: str) -> None:
        """Wait until a sentinel message delivered now is reported: all before it is handled."""
        deliver(root, layout, SENTINEL, MSG)
        await self.until(lambda s: SENTINEL in s.folders)

    def clear(self) -> None:
        self.changes.clear()


async def _tick() -> None:
    await asyncio.sleep(0.01)


@pytest.fixture
def root(tmp_path: Path, layout: str) -> Path:
    """A Maildir with INBOX, a nested folder and the sentinel folder, one message each."""
    top = Path(os.path.realpath(tmp_path)) / "Mail"  # as watchdog and the store spell paths
    top.mkdir()
    for folder in ("INBOX", "Archive/2024", SENTINEL):
        deliver(top, layout, folder, MSG)
    return top


@contextlib.asynccontextmanager
async def watching(root: Path, layout: str, **options: object) -> AsyncIterator[Seen]:
    seen = Seen()
    async with MaildirWatcher(str(root), layout, seen, **options):  # type: ignore[arg-type]
        yield seen


async def test_a_new_message_in_a_nested_folder(root: Path, layout: str) -> None:
    async with watching(root, layout) as seen:
        deliver(root, layout, "Archive/2024", MSG)
        await seen.until(lambda s: "Archive/2024" in s.folders)
        await seen.settled(root, layout)
        assert seen.folders == {"Archive/2024", SENTINEL}
        assert not seen.tree and not seen.rescans


async def test_a_root_given_through_a_symlink(root: Path, layout: str) -> None:
    link = root.with_name("Mail-link")
    link.symlink_to(root)
    seen = Seen()
    async with MaildirWatcher(str(link), layout, seen):  # type: ignore[arg-type]
        deliver(link, layout, "INBOX", MSG)
        await seen.until(lambda s: "INBOX" in s.folders)


async def test_a_flag_rename_in_cur(root: Path, layout: str) -> None:
    flagged = deliver(root, layout, "INBOX", MSG, letters="S")
    async with watching(root, layout) as seen:
        (msg,) = [m for m in messages(root, layout, "INBOX") if m.path == flagged]
        set_letters(msg, "RS")
        await seen.until(lambda s: "INBOX" in s.folders)
        assert seen.folders == {"INBOX"}


async def test_a_message_removed(root: Path, layout: str) -> None:
    async with watching(root, layout) as seen:
        messages(root, layout, "Archive/2024")[0].path.unlink()
        await seen.until(lambda s: "Archive/2024" in s.folders)
        assert seen.folders == {"Archive/2024"}


async def test_a_message_moved_to_another_folder_names_both(root: Path, layout: str) -> None:
    async with watching(root, layout) as seen:
        msg = messages(root, layout, "INBOX")[0]
        os.rename(msg.path, folder_dir(root, layout, "Archive/2024") / "cur" / msg.path.name)
        await seen.until(lambda s: {"INBOX", "Archive/2024"} <= s.folders)
        assert seen.folders == {"INBOX", "Archive/2024"}


async def test_a_folder_created_or_removed_changes_the_tree(root: Path, layout: str) -> None:
    async with watching(root, layout) as seen:
        deliver(root, layout, "Lists/python-dev", MSG)
        await seen.until(lambda s: s.tree and "Lists/python-dev" in s.folders)
        seen.clear()
        shutil.rmtree(folder_dir(root, layout, "Archive/2024"))
        await seen.until(lambda s: s.tree)


async def test_tmp_reads_and_metadata_are_not_changes(root: Path, layout: str) -> None:
    async with watching(root, layout) as seen:
        inbox = folder_dir(root, layout, "INBOX")
        (inbox / "tmp" / "1.half-written.host").write_bytes(MSG)
        (inbox / "tmp" / "1.half-written.host").unlink()
        msg = messages(root, layout, "INBOX")[0]  # reads every message file
        os.utime(msg.path, (0, 0))
        await seen.settled(root, layout)
        assert seen.folders == {SENTINEL}
        assert not seen.tree


# ---- own writes --------------------------------------------------------------------------


def own_delivery(own: OwnChanges, root: Path, layout: str, folder: str, name: str) -> None:
    """Deliver as the store does (tmp/, then a rename into new/), expecting each path first."""
    d = folder_dir(root, layout, folder)
    tmp, new = str(d / "tmp" / name), str(d / "new" / name)
    own.expect(tmp)
    Path(tmp).write_bytes(MSG)
    own.expect(tmp, new)
    os.rename(tmp, new)


async def test_own_writes_are_not_changes(root: Path, layout: str) -> None:
    own = OwnChanges()
    async with watching(root, layout, own=own) as seen:
        own_delivery(own, root, layout, "INBOX", "1.own.host")
        flagged = messages(root, layout, "Archive/2024")[0].path
        renamed = flagged.parent.parent / "cur" / (flagged.name.split(":2,")[0] + ":2,S")
        own.expect(str(flagged), str(renamed))
        os.rename(flagged, renamed)
        own.expect(str(renamed))
        renamed.unlink()
        await seen.settled(root, layout)
        assert seen.folders == {SENTINEL}
        assert len(own) == 0  # every expectation met its event and is gone


async def test_a_folder_the_store_makes_is_no_tree_change(root: Path, layout: str) -> None:
    """The store announces the directories of a folder it makes; watchdog reports a new
    directory twice (the kernel's event, then its own walk of it): neither is a change."""
    own = OwnChanges()
    store = MaildirStore(MaildirSettings(str(root), layout), journal=WriteJournal(own=own))
    for attempt in range(10):  # the second report comes only some of the time
        async with watching(root, layout, own=own) as seen:
            await store.create_folder(f"Made/By{attempt}")
            await seen.settled(root, layout)
            assert not seen.tree, seen.changes
            assert seen.folders == {SENTINEL}


async def test_another_clients_write_beside_an_own_write_is_a_change(
    root: Path, layout: str
) -> None:
    own = OwnChanges()
    async with watching(root, layout, own=own) as seen:
        own_delivery(own, root, layout, "INBOX", "1.own.host")
        deliver(root, layout, "INBOX", MSG)  # at the same moment, in the same folder
        await seen.until(lambda s: "INBOX" in s.folders)


async def test_a_lapsed_expectation_does_not_hide_a_later_change(root: Path, layout: str) -> None:
    own = OwnChanges(ttl=0.2)
    async with watching(root, layout, own=own) as seen:
        msg = messages(root, layout, "INBOX")[0]
        own.expect(str(msg.path))  # a write mailtide meant to do and did not
        deadline = time.monotonic() + WAIT
        while len(own) and time.monotonic() < deadline:
            await _tick()
        msg.path.unlink()  # by another client, after the expectation lapsed
        await seen.until(lambda s: "INBOX" in s.folders)


# ---- bursts, overflow, limits ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["renames", "new messages"])
async def test_a_burst_makes_few_calls_naming_every_folder(tmp_path: Path, kind: str) -> None:
    """10,000 flag renames, or new messages, by another client over about a second, while the
    loop is free to deliver: a few calls (one per SPACING at most), every folder named."""
    root = Path(os.path.realpath(tmp_path)) / "Mail"
    folders = [f"Box{i}/Sub" for i in range(10)]
    files = [deliver(root, "fs", f, MSG, letters="S") for f in [*folders, SENTINEL]]

    def change(i: int) -> None:
        path = files[i % len(folders)]
        if kind == "renames":
            other = path.with_name(path.name[:-1] + ("RS" if path.name.endswith(",S") else "S"))
            os.rename(path, other)
            files[i % len(folders)] = other
        else:
            os.link(path, path.parent.parent / "new" / f"{i}.burst.host")

    def burst() -> None:
        for i in range(10_000):
            if i % 50 == 0:
                time.sleep(0.002)
            change(i)

    async with watching(root, "fs") as seen:
        started = time.monotonic()
        await asyncio.to_thread(burst)
        await seen.settled(root, "fs")
        elapsed = time.monotonic() - started
        assert seen.folders == {*folders, SENTINEL}
        assert len(seen.changes) <= elapsed / SPACING + 2, (len(seen.changes), elapsed)
        assert not seen.tree and not seen.rescans


@pytest.mark.parametrize("layout", ["fs"])  # the same in both layouts
async def test_an_inotify_queue_overflow_is_a_rescan(root: Path, layout: str) -> None:
    """A real kernel overflow: watchdog's reader is held while more events happen than the
    kernel queues (fs.inotify.max_queued_events).  Pins watchdog's EventsLostEvent: it did
    not exist before 7.1.1, when an overflow was dropped silently."""
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    seen = Seen()
    async with MaildirWatcher(str(root), layout, seen) as watcher:  # type: ignore[arg-type]
        assert watcher._inotify is not None
        spare = str(folder_dir(root, layout, "INBOX") / "tmp" / "1.spare.host")
        Path(spare).write_bytes(MSG)
        with watcher._inotify.reader._lock:  # its thread blocks before its next read
            for _ in range(queued // 2 + 4096):  # two events each, which watchdog handles fast
                os.link(spare, spare + "x")
                os.unlink(spare + "x")
        await seen.until(lambda s: s.rescans > 0)
        seen.clear()
        deliver(root, layout, "Archive/2024", MSG)  # the watches still work
        await seen.until(lambda s: "Archive/2024" in s.folders)


def _exhausted(monkeypatch: pytest.MonkeyPatch, err: int, after: threading.Event) -> None:
    """inotify_add_watch fails with ``err`` once ``after`` is set, as the kernel does when the
    watches run out (injected where watchdog calls libc, so all of watchdog's handling runs)."""
    real = inotify_c.inotify_add_watch

    def add_watch(fd: int, path: bytes, mask: int) -> int:
        if after.is_set():
            ctypes.set_errno(err)
            return -1
        return real(fd, path, mask)  # type: ignore[arg-type]

    monkeypatch.setattr(inotify_c, "inotify_add_watch", add_watch)


def _no_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    def init() -> int:
        ctypes.set_errno(errno.EMFILE)
        return -1

    monkeypatch.setattr(inotify_c, "inotify_init", init)


@pytest.mark.parametrize("layout", ["fs"])  # the same in both layouts
@pytest.mark.parametrize(
    ("limit", "sysctl"),
    [
        ("watches", "fs.inotify.max_user_watches"),
        ("instances", "fs.inotify.max_user_instances"),
    ],
)
async def test_too_few_inotify_resources_degrade_to_polling(
    root: Path, layout: str, limit: str, sysctl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if limit == "watches":
        now = threading.Event()
        now.set()
        _exhausted(monkeypatch, errno.ENOSPC, now)
    else:
        _no_instances(monkeypatch)
    with structlog.testing.capture_logs() as logs:
        async with watching(root, layout, poll=0.1) as seen:
            await seen.until(lambda s: s.rescans >= 3)
    warnings = [e for e in logs if e["event"] == "maildir.watch_degraded"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["fix"] == f"raise the sysctl {sysctl}"


@pytest.mark.parametrize("layout", ["fs"])  # the same in both layouts
async def test_watches_running_out_for_a_new_folder_degrade_to_polling(
    root: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchdog only logs a directory it cannot watch once it is running; that must not leave
    the new folder unwatched in silence."""
    exhausted = threading.Event()
    _exhausted(monkeypatch, errno.ENOSPC, exhausted)
    with structlog.testing.capture_logs() as logs:
        async with watching(root, layout, poll=0.1) as seen:
            exhausted.set()
            deliver(root, layout, "New", MSG)
            await seen.until(lambda s: s.rescans >= 3)
            deliver(root, layout, "Newer", MSG)
            await seen.until(lambda s: s.rescans >= 5)
    warnings = [e for e in logs if e["event"] == "maildir.watch_degraded"]
    assert len(warnings) == 1
    assert warnings[0]["fix"] == "raise the sysctl fs.inotify.max_user_watches"


# ---- start, stop, and a root that goes away ----------------------------------------------


async def test_stop_ends_every_thread_promptly_and_twice_is_fine(root: Path, layout: str) -> None:
    before = set(threading.enumerate())
    seen = Seen()
    watcher = MaildirWatcher(str(root), layout, seen)  # type: ignore[arg-type]
    await watcher.start()
    assert set(threading.enumerate()) - before  # watchdog's threads run
    msg = messages(root, layout, "INBOX")[0]
    os.rename(msg.path, root.parent / "moved")  # out of the tree: watchdog holds it 0.5 s
    started = time.monotonic()
    await watcher.stop()
    assert time.monotonic() - started < 1.0
    await watcher.stop()
    left = {
        t
        for t in set(threading.enumerate()) - before
        if t.is_alive() and not t.name.startswith("asyncio_")  # the loop's executor
    }
    assert not left, left
    delivered = len(seen.changes)
    deliver(root, layout, "INBOX", MSG)
    await _tick()
    assert len(seen.changes) == delivered  # nothing after stop


@pytest.mark.parametrize(
    ("how", "root_check"),
    [
        ("unmounted", 60.0),  # seen at once: the kernel ends the root's watch
        ("removed", 0.05),  # seen from the events; the new root is found by the check
        ("moved away", 0.05),  # nothing ends the watch: the check finds the root gone
    ],
)
async def test_a_root_that_goes_away_is_a_tree_change_then_watched_again(
    tmp_path: Path, layout: str, how: str, root_check: float
) -> None:
    top = Path(os.path.realpath(tmp_path)) / "Mail"
    with contextlib.ExitStack() as stack:
        if how == "unmounted":
            stack.enter_context(tmpfs(top, 1 << 20))
        else:
            top.mkdir()
        deliver(top, layout, "INBOX", MSG)
        async with watching(top, layout, root_check=root_check) as seen:
            if how == "unmounted":
                stack.close()  # umount: IN_UNMOUNT, which watchdog does not pass on
            elif how == "removed":
                shutil.rmtree(top)
            else:
                top.rename(top.with_name("Mail.old"))
            await seen.until(lambda s: s.tree)
            top.mkdir(exist_ok=True)
            await seen.until(lambda s: s.rescans > 0)  # watched again: look at everything
            seen.clear()
            deliver(top, layout, "Archive", MSG)
            await seen.until(lambda s: "Archive" in s.folders)
