"""Our response reader against aioimaplib 2.0.3's: each known defect pinned by a test.

Each test runs on the stock ``IMAP4ClientProtocol`` (expected to fail: that
is the defect) and on our ``ImapProtocol`` (must pass), through aioimaplib's
own command methods, with a fake server answering through ``data_received``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from aioimaplib import aioimaplib as aio

import imap_helpers as srv
from log_helpers import capture, pristine_logging
from mailtide.stores.imap.parse import RawResponse, Tokens, pairs
from mailtide.stores.imap.protocol import ImapProtocol, ProtocolError, ResponseReader

Reply = Callable[[bytes], list[bytes]]  # tag -> chunks the server sends


class FakeServer(srv.NullTransport):
    """Answers each command line with scripted chunks, one chunk per loop iteration."""

    def __init__(self, protocol: asyncio.Protocol, reply: Reply) -> None:
        super().__init__()
        self.protocol = protocol
        self.reply = reply
        self.received = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.received += bytes(data)
        while b"\r\n" in self.received:
            line, _, self.received = self.received.partition(b"\r\n")
            self._feed(self.reply(line.split(b" ", 1)[0]))

    def _feed(self, chunks: list[bytes]) -> None:
        # Chained, not all queued at once: timers (the hang guard) run in between.
        def step(i: int) -> None:
            if i < len(chunks) and not self.closed:
                if not self._deliver(chunks[i]):
                    self.closed = True  # like a real transport: the connection is dropped
                    return
                asyncio.get_running_loop().call_soon(step, i + 1)

        asyncio.get_running_loop().call_soon(step, 0)

    def _deliver(self, chunk: bytes) -> bool:
        # In a short-lived thread, joined at once: CPython 3.11 misbehaves later in the
        # same thread after a RecursionError (which the stock reader raises here).
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self.protocol.data_received(chunk)
            except RecursionError as e:
                failed.append(e)

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        return not failed


def stock(loop: asyncio.AbstractEventLoop) -> aio.IMAP4ClientProtocol:
    return aio.IMAP4ClientProtocol(loop)


def ours(loop: asyncio.AbstractEventLoop) -> aio.IMAP4ClientProtocol:
    return ImapProtocol(loop, timeout=60)


def protocols(*, slow_stock: bool = False) -> list[object]:
    marks = [pytest.mark.xfail(strict=True, reason="the aioimaplib 2.0.3 defect")]
    if slow_stock:
        marks.append(pytest.mark.slow)
    return [pytest.param(stock, id="stock", marks=marks), pytest.param(ours, id="ours")]


def connect(make: Callable[[asyncio.AbstractEventLoop], aio.IMAP4ClientProtocol], reply: Reply):
    proto = make(asyncio.get_running_loop())
    proto.connection_made(FakeServer(proto, reply))
    proto.state = aio.SELECTED  # skip the greeting and login: not what is tested
    return proto


def fetch_lines(n: int) -> list[bytes]:
    return [
        b"* %d FETCH (UID %d FLAGS (\\Seen $Forwarded) RFC822.SIZE 1234)\r\n" % (i, i)
        for i in range(1, n + 1)
    ]


@pytest.mark.parametrize("make", protocols())
async def test_many_responses_in_one_read_do_not_recurse(make) -> None:
    # Defect 1: one frame of recursion per line; 3,000 lines in one read -> RecursionError, hang.
    lines = fetch_lines(3000)
    proto = connect(make, lambda tag: [b"".join(lines) + tag + b" OK done\r\n"])
    response = await asyncio.wait_for(proto.fetch("1:*", "(UID FLAGS)", by_uid=True), 3)
    assert response.result == "OK"
    assert sum(1 for x in response.lines if b" FETCH (" in x) == 3000


@pytest.mark.parametrize("make", protocols(slow_stock=True))
async def test_big_fetch_is_linear(make) -> None:
    # Defect 2: FetchCommand.wait_data rescans every line after each line: O(n^2).
    # 60,000 responses in reads of 200 lines (below the recursion limit); the hang
    # guard is generous (ours needs well under a second), the stock needs many minutes.
    lines = fetch_lines(60000)
    chunks = [b"".join(lines[i : i + 200]) for i in range(0, len(lines), 200)]
    proto = connect(make, lambda tag: [*chunks, tag + b" OK done\r\n"])
    response = await asyncio.wait_for(proto.fetch("1:*", "(UID FLAGS)", by_uid=True), 30)
    assert sum(1 for x in response.lines if b" FETCH (" in x) == 60000


@pytest.mark.parametrize("make", protocols())
async def test_untagged_news_during_other_commands_is_kept(make) -> None:
    # Defect 3: EXPUNGE / VANISHED / EXISTS arriving during a STORE were logged and dropped.
    news = b"* 3 EXPUNGE\r\n* VANISHED 5:7\r\n* 4 EXISTS\r\n* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n"
    proto = connect(make, lambda tag: [news + tag + b" OK stored\r\n"])
    response = await asyncio.wait_for(proto.store("1", "+FLAGS", "(\\Seen)", by_uid=True), 10)
    kept = b"\n".join(x for x in response.lines if isinstance(x, bytes))
    assert b"3 EXPUNGE" in kept and b"VANISHED 5:7" in kept and b"4 EXISTS" in kept
    if isinstance(proto, ImapProtocol):
        assert [(u.kind, u.number) for u in proto.unsolicited] == [
            ("EXPUNGE", 3),
            ("VANISHED", None),
            ("EXISTS", 4),
        ]


@pytest.mark.parametrize("make", protocols())
async def test_star_space_inside_a_line_is_kept(make) -> None:
    # Defect 4: line.replace(b"* ", b"") also removed "* " inside quoted strings.
    line = b'* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] "Subject: 2 * 3 = 6")\r\n'
    proto = connect(make, lambda tag: [line + tag + b" OK done\r\n"])
    response = await asyncio.wait_for(proto.fetch("1", "(UID BODY[])", by_uid=True), 10)
    assert any(b'"Subject: 2 * 3 = 6"' in x for x in response.lines if isinstance(x, bytes))


async def test_bad_literal_size_fails_the_command_instead_of_hanging() -> None:
    proto = connect(ours, lambda tag: [b"* 1 FETCH (UID 1 BODY[] {12x}\r\nabc\r\n"])
    with pytest.raises(ProtocolError, match="bad literal size"):
        await asyncio.wait_for(proto.fetch("1", "(BODY[])", by_uid=True), 10)


async def test_a_literal_of_the_wrong_length_quotes_no_body_text() -> None:
    """The line after a too-short literal is a piece of the body: the error says it is out of
    step, and neither the error nor the -vv conversation quotes it."""
    body = b"Subject: hi\r\nPrivate words of the body\r\n"
    with pristine_logging():
        log = capture(2)
        proto = connect(ours, lambda tag: [b"* 1 FETCH (UID 1 BODY[] {10}\r\n" + body])
        with pytest.raises(ProtocolError, match="out of step") as error:
            await asyncio.wait_for(proto.run("UID FETCH 1 (BODY[])"), 10)
    assert "Private" not in str(error.value)
    assert "BODY[] {10 bytes}" in log.getvalue() and "Private" not in log.getvalue()


async def test_silent_server_times_out() -> None:
    proto = ImapProtocol(asyncio.get_running_loop(), timeout=0.3)
    proto.connection_made(FakeServer(proto, lambda tag: []))
    proto.state = aio.SELECTED
    with pytest.raises(Exception, match="no answer from server"):
        await asyncio.wait_for(proto.run("NOOP"), 10)


@pytest.mark.parametrize("split", [1, 2, 3, 7, 1000])
def test_reader_handles_any_split(split: int) -> None:
    stream = (
        b"* 1 FETCH (UID 9 BODY[] {12}\r\nhello\r\nworld FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 10 BODY[] ~{0}\r\n)\r\n"
        b"A1 OK done\r\n"
    )
    reader = ResponseReader()
    out: list[RawResponse] = []
    for i in range(0, len(stream), split):
        out += reader.feed(stream[i : i + split])
    assert [r.lines for r in out] == [
        [b"* 1 FETCH (UID 9 BODY[] {12}", b" FLAGS (\\Seen))"],
        [b"* 2 FETCH (UID 10 BODY[] ~{0}", b")"],
        [b"A1 OK done"],
    ]
    attrs = pairs(Tokens(out[0], 10).value())
    assert attrs == {"UID": "9", "BODY[]": bytearray(b"hello\r\nworld"), "FLAGS": ["\\Seen"]}
    assert reader.idle
