"""The Maildir store on a real full (ENOSPC) or read-only (EROFS) file system: a small tmpfs.

Each test checks the files on disk afterwards: the messages said to be
delivered are there whole, no other message file is, nothing is left in tmp/,
and the keyword table is never damaged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailtide.stores.base import FlagChange, Incoming, MailboxError
from mailtide.stores.maildir import DeliveryError, MaildirMailbox, MaildirSettings, MaildirStore
from stores.maildir.mdstore_helpers import incoming, message
from stores.maildir.tmpfs import PAGE, fill, read_only, tmpfs

SEEN, FLAGGED = "\\Seen", "\\Flagged"
PAGES = 128


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 128-page (512 KiB) tmpfs holding the Maildir root."""
    with tmpfs(tmp_path / "Mail", PAGES * PAGE) as root:
        yield root


@pytest.fixture
async def box(disk: Path) -> MaildirMailbox:
    store = MaildirStore(MaildirSettings(str(disk), "fs"))
    await store.connect()
    await store.create_folder("INBOX")
    return await store.open("INBOX")


def files(box: MaildirMailbox, sub: str) -> list[str]:
    return sorted(os.listdir(os.path.join(box.path, sub)))


def page_sized(n: int) -> bytes:
    """A message taking exactly one page on disk (LF form)."""
    data = message(n, b"x" * 3000 + b"\r\n")
    assert len(data) < PAGE
    return data


async def assert_whole(box: MaildirMailbox, ids: list[str], bodies: list[bytes]) -> None:
    """Exactly these messages are in the folder, each with its whole content."""
    assert sorted(m.id for m in await box.snapshot()) == sorted(ids)
    for fetched, body in zip([f async for f in box.fetch(ids)], bodies, strict=True):
        assert b"".join([c async for c in fetched.body.chunks()]) == body


async def test_disk_full_part_way_through_a_batch(box: MaildirMailbox) -> None:
    """Room for 128 pages, 150 one-page messages: the first 128 are delivered and reported,
    the 129th fails with ENOSPC, its partial file is gone, the rest were never written."""
    bodies = [page_sized(i) for i in range(150)]
    with pytest.raises(DeliveryError, match="No space left on device") as caught:
        await box.append([incoming(b) for b in bodies])
    delivered = [str(i) for i in caught.value.delivered]
    assert len(delivered) == PAGES
    assert files(box, "tmp") == []
    await assert_whole(box, delivered, bodies[:PAGES])


async def test_a_message_bigger_than_the_disk(box: MaildirMailbox) -> None:
    """A streamed 1 MB message into 512 KiB: the small ones before it are delivered, its partial
    file is removed, the one after it is not written."""
    big = message(2, b"B" * 1_000_000 + b"\r\n")
    bodies = [message(1), big, message(3)]
    with pytest.raises(DeliveryError, match="No space left on device") as caught:
        await box.append([incoming(b) for b in bodies])
    assert [str(i) for i in caught.value.delivered] == [m.id for m in await box.snapshot()]
    assert len(caught.value.delivered) == 1
    assert files(box, "tmp") == []
    assert os.statvfs(box.path).f_bfree > PAGES - 5  # the partial big file's pages are free again


@dataclass(frozen=True, slots=True)
class BrokenBody:
    """A body whose source breaks after its first chunk (a dropped connection)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data) * 2

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data
        raise ConnectionResetError("the source went away")


async def test_source_fails_while_the_disk_is_full(box: MaildirMailbox) -> None:
    """Two faults at once: a streamed message (staged in tmp/) and a small one before it fill
    the disk; two more small ones wait in memory when the next source breaks, and writing them
    hits ENOSPC.  What was staged is still delivered and tmp/ is left empty."""
    first = message(1)
    big = message(2, b"B" * 290_000 + b"\r\n")  # streamed (over 256 KiB): 71 pages
    waiting = [message(3), message(4)]
    broken = Incoming(frozenset(), None, incoming(message(5)).identity, BrokenBody(b"x" * 100))
    fill(Path(box.path), 72)  # room for the first two only
    with pytest.raises(DeliveryError) as caught:
        await box.append([incoming(first), incoming(big), *map(incoming, waiting), broken])
    delivered = [str(i) for i in caught.value.delivered]
    assert files(box, "tmp") == []
    assert len(delivered) == 2
    await assert_whole(box, delivered, [first, big])


async def test_keyword_table_is_never_damaged_on_a_full_disk(box: MaildirMailbox) -> None:
    """A new keyword needs a bigger ``dovecot-keywords``; on a full disk it is rewritten by a
    new file and a rename, so the old table stays whole and no temporary file is left.  The
    other flag changes of the same call, renames that need no space, are still made."""
    ids = await box.append([incoming(message(i), flags=frozenset({SEEN, "Work"})) for i in (1, 2)])
    a, b = (str(i) for i in ids)
    table = Path(box.path) / "dovecot-keywords"
    before = table.read_bytes()
    assert before == b"0 Work\n"
    fill(Path(box.path))
    with pytest.raises(MailboxError, match="No space left on device"):
        await box.set_flags(
            [
                FlagChange(a, frozenset({"Urgent"}), frozenset()),
                FlagChange(b, frozenset({FLAGGED}), frozenset({"Work"})),
            ]
        )
    assert table.read_bytes() == before
    assert [n for n in os.listdir(box.path) if n.endswith(".tmp")] == []
    flags = {m.id: m.flags for m in await box.snapshot()}
    assert flags == {a: {SEEN, "Work"}, b: {SEEN, FLAGGED}}


async def test_flag_renames_need_no_space(box: MaildirMailbox) -> None:
    """A flag change that needs no new keyword is a rename: it works on a full disk."""
    (msg_id,) = await box.append([incoming(message(1), flags=frozenset({"Work"}))])
    fill(Path(box.path))
    await box.set_flags([FlagChange(str(msg_id), frozenset({SEEN}), frozenset({"Work"}))])
    (info,) = await box.snapshot()
    assert info.flags == {SEEN}


async def test_read_only_folder_refuses_to_sync(box: MaildirMailbox, disk: Path) -> None:
    """A folder on a read-only file system fails at ``status`` (before any work on either
    side) with an error that says so; a dry run (a read-only store) still reads it."""
    (msg_id,) = await box.append([incoming(message(1))])
    await box.status()  # the folder id exists
    read_only(disk)
    try:
        with pytest.raises(MailboxError, match="read-only file system"):
            await box.status()
        dry = MaildirStore(MaildirSettings(str(disk), "fs"), read_only=True)
        dry_box = await dry.open("INBOX")
        await dry_box.status()
        assert [m.id for m in await dry_box.snapshot()] == [msg_id]
    finally:
        read_only(disk, False)
