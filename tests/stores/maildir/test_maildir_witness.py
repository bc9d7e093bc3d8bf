"""The witness of a folder's own writes (witness.py): after a sync's writes, the folder's
stamp is given only when every change since the stamp the sync started from is one of those
writes.  Another client's file added, renamed or removed, the keyword file edited, new/
replaced, each in the middle of the writes, leave it without one; so does a change made
before the watch was in place."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailtide.stores.base import FlagChange
from mailtide.stores.maildir import MaildirMailbox, MaildirStore
from mailtide.stores.maildir import witness as witness_mod
from mailtide.stores.maildir.stamp import folder_stamp
from mailtide.stores.maildir.witness import Witness
from stores.maildir.mdstore_helpers import incoming, message

FLAGGED = "\\Flagged"


def settle(folder: str) -> None:
    """Wait until the folder's times can prove something (the second of the last change is
    over)."""
    deadline = time.monotonic() + 5
    while folder_stamp(folder) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def stamp_when_settled(proof: Witness) -> str | None:
    time.sleep(proof.settles_in())
    return proof.stamp()


@pytest.fixture
async def box(fs_store: MaildirStore) -> MaildirMailbox:
    """A folder with three messages, its status taken once its times have settled: the
    writes to come are weighed against it."""
    await fs_store.create_folder("INBOX")
    first = await fs_store.open("INBOX")
    await first.append([incoming(message(i)) for i in range(3)])
    await first.close()
    settle(first.path)
    box = await fs_store.open("INBOX")
    box.begin_writes(await box.status())
    await box.snapshot()
    return box


def _files(box: MaildirMailbox) -> list[Path]:
    return sorted(p for sub in ("new", "cur") for p in Path(box.path, sub).iterdir())


async def test_own_writes_alone_give_the_stamp_after_them(box: MaildirMailbox) -> None:
    """A delivery, a flag rename, a deletion and a new keyword (the keyword file replaced)."""
    ids = [m.id for m in await box.snapshot()]
    await box.append([incoming(message(10))])
    await box.set_flags([FlagChange(ids[0], frozenset({FLAGGED, "Work"}), frozenset())])
    await box.delete([ids[1]])
    proof = box.written()
    assert isinstance(proof, Witness)
    try:
        stamp = stamp_when_settled(proof)
    finally:
        proof.close()
    assert stamp is not None and stamp == folder_stamp(box.path)


def _add(box: MaildirMailbox) -> None:
    Path(box.path, "new", "1700000001.M9P9Q9.mutt").write_bytes(b"Subject: x\n\nbody\n")


def _rename(box: MaildirMailbox) -> None:
    path = _files(box)[-1]
    os.rename(path, Path(box.path, "cur", path.name.split(":")[0] + ":2,FS"))


def _remove(box: MaildirMailbox) -> None:
    _files(box)[-1].unlink()


def _keywords(box: MaildirMailbox) -> None:
    with open(Path(box.path, "dovecot-keywords"), "a") as f:  # edited in place
        f.write("5 Urgent\n")


def _new_replaced(box: MaildirMailbox) -> None:
    os.rename(Path(box.path, "new"), Path(box.path, "new.old"))
    os.mkdir(Path(box.path, "new"))


FOREIGN: dict[str, Callable[[MaildirMailbox], None]] = {
    "added": _add,
    "renamed": _rename,
    "removed": _remove,
    "keywords edited": _keywords,
    "new/ replaced": _new_replaced,
}


@pytest.mark.parametrize("drained", [False, True], ids=["one write", "drained writes"])
@pytest.mark.parametrize("change", FOREIGN)
async def test_another_clients_change_between_own_writes_leaves_no_stamp(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch, change: str, drained: bool
) -> None:
    """Drained: the other client's event is heard at a drain of the queue that drops the own
    ones around it."""
    n = 20 if drained else 1
    if drained:
        monkeypatch.setattr(witness_mod, "DRAIN_EVERY", 4)
    await box.append([incoming(message(100 + i), flags=frozenset({"Work"})) for i in range(n)])
    FOREIGN[change](box)
    await box.append([incoming(message(200 + i)) for i in range(n)])
    proof = box.written()
    assert proof is not None
    try:
        assert stamp_when_settled(proof) is None
    finally:
        proof.close()


async def test_a_witness_of_many_writes_holds_only_what_came_since_its_last_drain(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events its own operations account for are dropped at each drain of the queue, with
    those operations: what it holds does not grow with the folder's writes (an initial sync
    keeps a witness of each folder open until its end), and the stamp is still proven."""
    monkeypatch.setattr(witness_mod, "DRAIN_EVERY", 8)
    await box.append([incoming(message(100 + i)) for i in range(60)])
    ids = [m.id for m in await box.snapshot()]
    await box.set_flags([FlagChange(id, frozenset({FLAGGED}), frozenset()) for id in ids])
    proof = box.written()
    assert isinstance(proof, Witness)
    try:
        held = len(proof._heard) + sum(proof._expected.values())
        assert held <= 3 * 8, held  # of about 250 operations and as many events
        stamp = stamp_when_settled(proof)
    finally:
        proof.close()
    assert stamp is not None and stamp == folder_stamp(box.path)


async def test_a_change_before_the_first_write_leaves_no_witness(box: MaildirMailbox) -> None:
    """The folder changed after the status: what the sync planned from is not what is there,
    so nothing after the writes can stand for it."""
    _add(box)
    await box.append([incoming(message(10))])
    assert box.written() is None


async def test_a_folder_nothing_was_written_to_keeps_the_stamp_of_its_status(
    box: MaildirMailbox,
) -> None:
    status = await box.status()
    box.begin_writes(status)
    proof = box.written()
    assert proof is not None and proof.settles_in() == 0
    assert proof.stamp() == status.stamp


async def test_a_stamp_is_given_only_once_the_writes_times_have_settled(
    box: MaildirMailbox,
) -> None:
    await box.append([incoming(message(10))])
    proof = box.written()
    assert isinstance(proof, Witness)
    try:
        assert proof.settles_in() > 0
        assert proof.stamp() is None  # the tick of the write is not over
        assert stamp_when_settled(proof) is not None
    finally:
        proof.close()


async def test_witnesses_beyond_the_cap_are_not_started_and_a_closed_one_frees_its_place(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most ``MAX_OPEN`` witnesses are open at once; closing one frees its place."""
    monkeypatch.setattr(witness_mod, "MAX_OPEN", 2)
    since = folder_stamp(box.path)
    first, second = Witness.start(box.path, since), Witness.start(box.path, since)
    assert first is not None and second is not None
    assert Witness.start(box.path, since) is None
    first.close()
    third = Witness.start(box.path, since)
    assert third is not None
    second.close()
    third.close()


def _inotify_instances() -> int:
    return sum(
        os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


async def test_witnesses_share_one_inotify_instance_and_one_closed_leaves_the_others_watching(
    box: MaildirMailbox,
) -> None:
    """A user has 128 inotify instances for every program, and closing one waits for the
    kernel's grace period: all witnesses share one.  Two of the same folder share its
    watches, and the one that stays still hears another client's change."""
    before = _inotify_instances()
    since = folder_stamp(box.path)
    first, second = Witness.start(box.path, since), Witness.start(box.path, since)
    assert first is not None and second is not None
    assert _inotify_instances() - before <= 1
    first.close()
    settle(box.path)
    assert stamp_when_settled(second) == folder_stamp(box.path)  # nothing happened yet
    (Path(box.path) / "new" / "1700000000.M1P1.other").write_bytes(message(9))
    settle(box.path)
    assert stamp_when_settled(second) is None
    second.close()
