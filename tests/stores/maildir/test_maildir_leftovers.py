"""Leftovers in a folder's tmp/: a killed mailtide's files go at the start of the next sync of
the folder, anyone's stale files go by the Maildir convention, and a file someone may still be
writing stays."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mailtide.stores.maildir import MaildirMailbox, MaildirStore
from mailtide.stores.maildir.delivery import Delivery, Staged
from mailtide.stores.maildir.filenames import new_unique
from mailtide.stores.maildir.leftovers import STALE, UNTOUCHED, clear_tmp
from stores.maildir.mdstore_helpers import message

HOUR = 3600


@pytest.fixture
async def box(store: MaildirStore) -> MaildirMailbox:
    await store.create_folder("INBOX")
    return await store.open("INBOX")


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def ours(pid: int, uid: str | None = None) -> str:
    """A name mailtide writes in tmp/ on this host, as if by the process ``pid``."""
    return re.sub(r"P\d+Q", f"P{pid}Q", new_unique(uid), count=1)


def leave(box: MaildirMailbox, name: str, age: float = 0) -> Path:
    """A file in tmp/, read and modified last ``age`` seconds ago (its ctime is now)."""
    path = Path(box.path, "tmp", name)
    path.write_bytes(b"Subject: half a message\n\nhalf")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def left(box: MaildirMailbox) -> list[str]:
    return sorted(os.listdir(Path(box.path, "tmp")))


async def test_a_killed_runs_files_go_at_the_next_sync_of_the_folder(
    box: MaildirMailbox, live_pid: int
) -> None:
    """425 files of a run killed mid-download go; files of this process, of a live process,
    a young foreign file, and an old-dated foreign file just touched (a writer that set an old
    date right before its rename) all stay.  The count is logged."""
    killed = dead_pid()
    for i in range(425):
        leave(box, ours(killed, uid=str(i + 1)))
    keep = [
        leave(box, ours(os.getpid())).name,
        leave(box, ours(live_pid)).name,
        leave(box, "1700000000.M1P1.otherhost").name,  # a Dovecot delivery under way
        leave(box, "1700000000.2_3.otherhost", age=40 * HOUR).name,  # mbsync's utime, then rename
    ]
    with capture_logs() as logs:
        await box.status()
    assert left(box) == sorted(keep)
    [cleared] = [e for e in logs if e["event"] == "maildir.tmp_cleared"]
    assert (cleared["removed"], cleared["of_dead_runs"], cleared["stale"]) == (425, 425, 0)
    with capture_logs() as logs:
        await box.status()
    assert left(box) == sorted(keep)
    assert not [e for e in logs if e["event"] == "maildir.tmp_cleared"]


async def test_stale_files_of_anyone_go_after_36_hours(box: MaildirMailbox, live_pid: int) -> None:
    """Seen an hour later (``now``), a file neither read nor modified for 36 hours goes, whoever
    wrote it; one read or modified within 36 hours stays."""
    stale = leave(box, "1600000000.M1P1.otherhost", age=STALE + 60)
    ours_stale = leave(box, ours(live_pid), age=STALE + 60)
    young = leave(box, "1600000000.M2P1.otherhost", age=STALE - 2 * HOUR)
    read_lately = leave(box, "1600000000.M3P1.otherhost", age=STALE + 60)
    os.utime(read_lately, (time.time(), read_lately.stat().st_mtime))
    (Path(box.path, "tmp", "a-directory")).mkdir()
    cleared = clear_tmp(box.path, now=time.time() + UNTOUCHED + 1)
    assert (cleared.own, cleared.stale) == (0, 2)
    assert not stale.exists() and not ours_stale.exists()
    assert left(box) == sorted([young.name, read_lately.name, "a-directory"])


def test_a_delivery_under_way_is_never_cleared(box: MaildirMailbox) -> None:
    """A message staged in tmp/ with an old INTERNALDATE (its mtime) is not stale: its atime is
    now, so neither mailtide's clearing nor another program's (by atime) takes it."""
    delivery = Delivery(box.path)
    delivery.prepare()
    unique = new_unique("7")
    date = time.time() - 365 * 24 * HOUR
    staged = Staged(unique, "S", date, delivery.tmp_path(unique))
    delivery.write_whole([(staged, [message(1).replace(b"\r\n", b"\n")])])
    st = os.stat(staged.tmp_path)
    assert st.st_mtime == date and st.st_atime > time.time() - 60
    assert clear_tmp(box.path, now=time.time() + UNTOUCHED + 1).total == 0
    assert delivery.commit() == [staged.id]
