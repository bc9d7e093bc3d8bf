"""Messages in a Maildir folder: delivery, reading back, flags, keywords, other clients."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailtide.core.identity import identity_of_message
from mailtide.stores.base import FlagChange, Incoming, MailboxError
from mailtide.stores.maildir import DeliveryError, MaildirMailbox, MaildirStore
from mailtide.stores.maildir.delivery import Delivery, Staged
from mailtide.stores.maildir.mailbox import SMALL_BODY
from stores.maildir.mdstore_helpers import ChunkedBody, incoming, message

SEEN, FLAGGED, ANSWERED, DRAFT, DELETED = (
    "\\Seen",
    "\\Flagged",
    "\\Answered",
    "\\Draft",
    "\\Deleted",
)
MIB = 1 << 20


@pytest.fixture
async def box(store: MaildirStore) -> MaildirMailbox:
    await store.create_folder("Archive/2024")
    return await store.open("Archive/2024")


async def deliver(box: MaildirMailbox, messages: list[Incoming]) -> list[str]:
    """Append; a Maildir always knows the new ids."""
    ids = await box.append(messages)
    assert all(i is not None for i in ids)
    return [str(i) for i in ids]


def files(box: MaildirMailbox, sub: str) -> list[str]:
    return sorted(os.listdir(os.path.join(box.path, sub)))


async def read_back(box: MaildirMailbox, msg_id: str) -> tuple[bytes, int]:
    fetched = [f async for f in box.fetch([msg_id])]
    assert [f.id for f in fetched] == [msg_id]
    data = b"".join([c async for c in fetched[0].body.chunks()])
    return data, fetched[0].body.size


# a CRLF split across the 1 MiB chunk boundary, on the way in and on the way out
CR_AT_BOUNDARY = message(2, b"a" * (MIB - len(message(2, b"")) - 1) + b"\r\nrest\r\n")

ROUND_TRIPS = {
    "plain": message(1, b"Hello.\r\n\r\nBye.\r\n"),
    "cr at 1 MiB boundary": CR_AT_BOUNDARY,
    "no trailing newline": message(3, b"last line without end"),
    "bare cr kept": message(4, b"a\rb\r\n"),
    "empty body": message(5, b""),
    "8-bit": message(6, "Grüße, 日本語\r\n".encode()),
    "3 MiB of lines": message(7, b"".join(b"line %d\r\n" % i for i in range(350_000))),
}


@pytest.mark.parametrize("sizes", [(MIB,), (7,), (MIB - 1, 3)], ids=["1MiB", "7B", "odd"])
@pytest.mark.parametrize("name", list(ROUND_TRIPS))
async def test_append_fetch_is_byte_exact(
    box: MaildirMailbox, name: str, sizes: tuple[int, ...]
) -> None:
    if sizes == (7,) and len(ROUND_TRIPS[name]) > 100_000:
        pytest.skip("tiny chunks of a big body only cost time")
    data = ROUND_TRIPS[name]
    [msg_id] = await deliver(box, [incoming(data, sizes=sizes)])
    assert msg_id is not None
    # on disk: LF line ends
    [filename] = files(box, "new")
    on_disk = Path(box.path, "new", filename).read_bytes()
    assert on_disk == data.replace(b"\r\n", b"\n")
    # read back: the CRLF form, with its size known before reading
    back, size = await read_back(box, msg_id)
    assert back == data
    assert size == len(data)
    [info] = await box.snapshot()
    assert info.size == len(on_disk)


async def test_cr_at_read_chunk_boundary_of_a_crlf_file(box: MaildirMailbox) -> None:
    # another tool stored CRLF line ends; the 1 MiB read splits one of them
    data = CR_AT_BOUNDARY
    assert data[MIB - 1 : MIB + 1] == b"\r\n"
    Path(box.path, "cur", "other.crlf:2,S").write_bytes(data)
    back, size = await read_back(box, "other.crlf")
    assert back == data and size == len(data)


async def test_file_names_and_mtime(box: MaildirMailbox) -> None:
    date = datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)
    ids = await deliver(
        box,
        [
            incoming(message(1), flags=frozenset({SEEN, FLAGGED}), hint="42", date=date),
            incoming(message(2), hint="43", date=date),
            incoming(message(3), hint="not-a-uid"),
        ],
    )
    [cur_file] = files(box, "cur")
    assert re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.[^/:,]+,U=42,S=\d+:2,FS", cur_file)
    new_files = files(box, "new")
    assert len(new_files) == 2 and all(":2," not in f for f in new_files)
    assert files(box, "tmp") == []
    assert ids[0] == cur_file.split(":2,")[0]
    assert os.stat(Path(box.path, "cur", cur_file)).st_mtime == date.timestamp()
    snap = {m.id: m for m in await box.snapshot()}
    assert ",U=42," in ids[0] and ",U=43," in ids[1] and ",U=" not in ids[2]
    assert snap[ids[0]].flags == {SEEN, FLAGGED} and snap[ids[1]].flags == frozenset()
    fetched = {f.id: f async for f in box.fetch(ids)}
    assert fetched[ids[0]].internaldate == date
    assert fetched[ids[0]].flags == {SEEN, FLAGGED}


async def test_identify_matches_the_crlf_form(box: MaildirMailbox) -> None:
    data = message(1, b"x\r\ny\r\n", extra_headers=b"X-Long: a\r\n continued\r\n")
    lf = data.replace(b"\r\n", b"\n")
    # a file another client delivered (no ,S= in its name)
    Path(box.path, "cur", "1600000000.other.host:2,S").write_bytes(lf)
    [msg_id] = await deliver(box, [incoming(data)])
    want = identity_of_message(data)
    got = await box.identify([msg_id, "1600000000.other.host", "gone"])
    assert got == {msg_id: want, "1600000000.other.host": want}
    assert want.message_id == "<m1@example.org>"


async def test_flags_and_keywords_round_trip(box: MaildirMailbox) -> None:
    flags = frozenset({SEEN, ANSWERED, DRAFT, DELETED, "$Forwarded", "$Junk", "Work"})
    [msg_id] = await deliver(box, [incoming(message(1), flags=flags)])
    assert msg_id is not None
    [filename] = files(box, "cur")
    assert filename.endswith(":2,DPRSTab")
    keywords = Path(box.path, "dovecot-keywords").read_text()
    assert keywords == "0 $Junk\n1 Work\n"
    [info] = await box.snapshot()
    assert info.flags == flags

    await box.set_flags(
        [
            FlagChange(
                msg_id, add=frozenset({FLAGGED, "$label1"}), remove=frozenset({"$Junk", DRAFT})
            )
        ]
    )
    [filename] = files(box, "cur")
    assert filename == f"{msg_id}:2,FPRSTbc"
    assert Path(box.path, "dovecot-keywords").read_text() == "0 $Junk\n1 Work\n2 $label1\n"
    [info] = await box.snapshot()
    assert info.flags == {SEEN, ANSWERED, DELETED, FLAGGED, "$Forwarded", "Work", "$label1"}


async def test_existing_keyword_file_is_followed(box: MaildirMailbox) -> None:
    Path(box.path, "dovecot-keywords").write_text("0 $label1\n3 Work\n")
    Path(box.path, "cur", "old.one:2,Sad").write_bytes(b"Message-ID: <o@x>\n\nhi\n")
    [info] = await box.snapshot()
    assert info.flags == {SEEN, "$label1", "Work"}
    [msg_id] = await deliver(box, [incoming(message(1), flags=frozenset({"Work", "$New"}))])
    assert any(f.endswith(":2,bd") for f in files(box, "cur"))  # $New took the free 'b'
    assert Path(box.path, "dovecot-keywords").read_text() == "0 $label1\n1 $New\n3 Work\n"
    snap = {m.id: m.flags for m in await box.snapshot()}
    assert snap[msg_id] == {"Work", "$New"}


async def test_unknown_letters_survive_a_flag_change(box: MaildirMailbox) -> None:
    Path(box.path, "cur", "x.y:2,SXz").write_bytes(b"\n")
    await box.snapshot()
    await box.set_flags([FlagChange("x.y", add=frozenset({FLAGGED}), remove=frozenset({SEEN}))])
    assert files(box, "cur") == ["x.y:2,FXz"]


async def test_more_than_26_keywords_drops_the_rest(box: MaildirMailbox) -> None:
    many = frozenset(f"kw{i:02d}" for i in range(30))
    [msg_id] = await deliver(box, [incoming(message(1), flags=many)])
    [info] = await box.snapshot()
    assert len(info.flags) == 26 and info.flags < many
    assert len(Path(box.path, "dovecot-keywords").read_text().splitlines()) == 26
    assert msg_id is not None


async def test_flag_change_after_another_client_renamed(box: MaildirMailbox) -> None:
    ids = await deliver(box, [incoming(message(i)) for i in range(3)])
    await box.snapshot()
    a, b, c = (str(i) for i in ids)
    # another client: reads a (new/ -> cur/ with S), flags b, deletes c
    os.rename(Path(box.path, "new", a), Path(box.path, "cur", f"{a}:2,S"))
    os.rename(Path(box.path, "new", b), Path(box.path, "cur", f"{b}:2,F"))
    os.unlink(Path(box.path, "new", c))
    await box.set_flags(
        [
            FlagChange(a, add=frozenset({ANSWERED}), remove=frozenset()),
            FlagChange(b, add=frozenset({SEEN}), remove=frozenset({FLAGGED})),
            FlagChange(c, add=frozenset({SEEN}), remove=frozenset()),
        ]
    )
    assert files(box, "cur") == sorted([f"{a}:2,RS", f"{b}:2,S"])
    assert files(box, "new") == []
    snap = {m.id: m.flags for m in await box.snapshot()}
    assert snap == {a: {SEEN, ANSWERED}, b: {SEEN}}


async def test_vanished_messages_are_skipped_everywhere(box: MaildirMailbox) -> None:
    ids = [str(i) for i in await box.append([incoming(message(i)) for i in range(3)])]
    await box.snapshot()
    os.unlink(Path(box.path, "new", ids[1]))
    fetched = [f.id async for f in box.fetch(ids)]
    assert fetched == [ids[0], ids[2]]
    assert set(await box.identify(ids)) == {ids[0], ids[2]}
    await box.delete(ids)
    assert files(box, "new") == [] and files(box, "cur") == []


async def test_body_of_a_message_renamed_after_fetch_is_still_read(box: MaildirMailbox) -> None:
    data = message(1, b"body\r\n")
    [msg_id] = await deliver(box, [incoming(data)])
    [fetched] = [f async for f in box.fetch([msg_id])]
    os.rename(Path(box.path, "new", str(msg_id)), Path(box.path, "cur", f"{msg_id}:2,S"))
    assert b"".join([c async for c in fetched.body.chunks()]) == data


async def test_delete_removes_exactly_those(box: MaildirMailbox) -> None:
    ids = [str(i) for i in await box.append([incoming(message(i)) for i in range(4)])]
    await box.delete([ids[0], ids[2]])
    assert files(box, "new") == sorted([ids[1], ids[3]])
    assert {m.id for m in await box.snapshot()} == {ids[1], ids[3]}


async def test_snapshot_skips_dotfiles_and_non_files(box: MaildirMailbox) -> None:
    Path(box.path, "cur", ".hidden:2,S").write_bytes(b"\n")
    Path(box.path, "cur", "subdir").mkdir()
    os.symlink("/etc/hostname", Path(box.path, "cur", "link:2,S"))
    Path(box.path, "new", "real").write_bytes(b"\n")
    assert [m.id for m in await box.snapshot()] == ["real"]


async def test_status_gives_a_stable_folder_id(store: MaildirStore, box: MaildirMailbox) -> None:
    await box.append([incoming(message(i)) for i in range(2)])
    first = await box.status()
    again = await (await store.open("Archive/2024")).status()
    assert first.validity == again.validity and len(first.validity) == 32
    # no listing: the count is left unknown (the stamp tells whether a listing is needed)
    assert first.count is None and first.uidnext is None and first.highestmodseq is None
    assert Path(box.path, ".mailtide-id").read_text().strip() == first.validity
    await store.create_folder("Other")
    other = await (await store.open("Other")).status()
    assert other.validity != first.validity


async def test_vanished_folder_is_an_error_not_empty(box: MaildirMailbox) -> None:
    await box.append([incoming(message(1))])
    for sub in ("cur", "new", "tmp"):
        for f in os.listdir(os.path.join(box.path, sub)):
            os.unlink(os.path.join(box.path, sub, f))
        os.rmdir(os.path.join(box.path, sub))
    with pytest.raises(MailboxError):
        await box.snapshot()
    shutil.rmtree(box.path)  # with what else the folder holds (maildirfolder, .mailtide-id)
    with pytest.raises(MailboxError, match="vanished"):
        await box.status()
    with pytest.raises(MailboxError):
        await box.append([incoming(message(2))])


@dataclass(frozen=True, slots=True)
class FailingBody:
    """A body whose source fails after ``good`` bytes (a dropped connection, a full disk)."""

    good: bytes
    size: int = 10 * MIB

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.good), 64 << 10):
            yield self.good[start : start + (64 << 10)]
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("partial", [1000, SMALL_BODY + 100_000], ids=["small", "streamed"])
async def test_failure_mid_batch_keeps_earlier_messages_and_leaves_no_partial(
    box: MaildirMailbox, partial: int
) -> None:
    good = incoming(message(1), flags=frozenset({SEEN}))
    bad = Incoming(
        flags=frozenset(),
        internaldate=None,
        identity=good.identity,
        body=FailingBody(message(2, b"z" * partial)),
    )
    later = incoming(message(3))
    with pytest.raises(DeliveryError) as caught:
        await box.append([good, bad, later])
    assert isinstance(caught.value, MailboxError)
    delivered = caught.value.delivered
    assert len(delivered) == 1
    assert files(box, "tmp") == []
    assert files(box, "new") == []
    assert files(box, "cur") == [f"{delivered[0]}:2,S"]
    assert [m.id for m in await box.snapshot()] == delivered


async def test_large_body_after_small_ones_keeps_order(box: MaildirMailbox) -> None:
    big = message(2, b"B" * (3 * MIB) + b"\r\n")
    ids = await deliver(box, [incoming(message(1)), incoming(big), incoming(message(3))])
    got = [await read_back(box, str(i)) for i in ids]
    assert [d for d, _ in got] == [message(1), big, message(3)]


async def test_append_to_a_folder_without_tmp(box: MaildirMailbox) -> None:
    os.rmdir(os.path.join(box.path, "tmp"))
    [msg_id] = await deliver(box, [incoming(message(1))])
    assert (await read_back(box, str(msg_id)))[0] == message(1)


def test_chunked_body_helper_serves_all_bytes() -> None:
    assert ChunkedBody(b"abc", (2,)).size == 3


@dataclass(frozen=True, slots=True)
class StallingBody:
    """Gives part of a big body, then waits forever (a stalled server)."""

    first: bytes
    size: int = 10 * MIB

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.first
        await asyncio.Event().wait()
        yield b""  # pragma: no cover


@pytest.mark.parametrize("first", [1000, SMALL_BODY + 1], ids=["in-memory", "streamed"])
async def test_cancelled_append_leaves_nothing(box: MaildirMailbox, first: int) -> None:
    ok = incoming(message(1))
    stalled = Incoming(frozenset(), None, ok.identity, StallingBody(message(2, b"s" * first)))
    task = asyncio.create_task(box.append([ok, stalled]))
    for _ in range(200):  # until the stalled body is being written (or held)
        await asyncio.sleep(0.005)
        if first < SMALL_BODY or files(box, "tmp"):
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert files(box, "tmp") == [] and files(box, "new") == [] and files(box, "cur") == []


async def test_cancel_while_a_worker_writes_leaves_nothing(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, finished = threading.Event(), threading.Event()
    real = Delivery.write_whole

    def slow_write(self: Delivery, items: list[tuple[Staged, list[bytes]]]) -> None:
        started.set()
        time.sleep(0.3)  # the cancellation arrives while files are being created
        try:
            real(self, items)
        finally:
            finished.set()

    monkeypatch.setattr(Delivery, "write_whole", slow_write)
    task = asyncio.create_task(box.append([incoming(message(i)) for i in range(5)]))
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert await asyncio.to_thread(finished.wait, 10)  # the worker is done either way
    assert files(box, "tmp") == [] and files(box, "new") == [] and files(box, "cur") == []
