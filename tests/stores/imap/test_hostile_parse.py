"""Odd server input, one rule at a time: FLAGS, UIDs, untagged kinds, spooled bodies."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imap_helpers as srv
from mailtide.core.identity import identity_of_message
from mailtide.stores.imap import protocol
from mailtide.stores.imap.mailbox import (
    fetch_attributes,
    fetched_of,
    identity_of_spooled,
    message_info,
)
from mailtide.stores.imap.parse import ParseError, SpooledLiteral, untagged
from mailtide.stores.imap.protocol import ResponseReader


def one(wire: bytes, spool_above: int = 1 << 20) -> object:
    (raw,) = ResponseReader(spool_above=spool_above).feed(wire)
    return raw


def attrs_of(wire: bytes, spool_above: int = 1 << 20) -> dict[str, object]:
    return fetch_attributes(untagged(one(wire, spool_above)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (b"()", frozenset()),
        (b"(\\Seen \\Recent $Forwarded Work)", frozenset({"\\Seen", "$Forwarded", "Work"})),
        (b"(\\Seen foo])", frozenset({"\\Seen", "foo]"})),  # an odd but printable atom: kept
    ],
)
def test_flags_that_are_atoms_are_read(flags: bytes, expected: frozenset[str]) -> None:
    attrs = attrs_of(b"* 1 FETCH (UID 5 FLAGS " + flags + b" RFC822.SIZE 10)\r\n")
    assert message_info(attrs).flags == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "flags",
    [
        b"(\\Seen (nested))",  # a list inside
        b'(\\Seen "quoted")',  # a quoted string is not a flag
        b"(\\Seen NIL)",
        b"(\\Seen a\x01b)",  # a control character
        b"(\\Seen caf\xc3\xa9)",  # 8-bit
        b"\\Seen",  # not a list at all
        b'(\\Seen foo] (bar "quoted" NIL)',  # the example: unbalanced too
    ],
)
def test_flags_that_are_not_atoms_make_the_response_unparsable(flags: bytes) -> None:
    """Dropping only the odd item would read as the user removing a flag."""
    with pytest.raises(ParseError):
        attrs = attrs_of(b"* 1 FETCH (UID 5 FLAGS " + flags + b" RFC822.SIZE 10)\r\n")
        message_info(attrs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "uid", [b"0", b"two", b"+5", b"5_0", b'"\xd9\xa1"', b"99999999999999999999999", b"NIL"]
)
def test_a_uid_is_ascii_digits_and_not_zero(uid: bytes) -> None:
    with pytest.raises(ParseError):
        message_info(attrs_of(b"* 1 FETCH (UID " + uid + b" FLAGS ())\r\n"))  # type: ignore[arg-type]


def test_an_attribute_twice_does_not_parse() -> None:
    with pytest.raises(ParseError, match="twice"):
        attrs_of(b"* 1 FETCH (UID 5 FLAGS () UID 6)\r\n")


@pytest.mark.parametrize(
    ("wire", "kind", "number"),
    [
        (b"* 3 EXISTS\r\n", "EXISTS", 3),
        (b"* XYZZY plugh\r\n", "XYZZY", None),
        (b"* \r\n", "", None),
        (b"* 12\r\n", "", None),
        (b"* (a b)\r\n", "", None),
        (b"* 7 (weird\r\n", "", None),
    ],
)
def test_untagged_kinds_never_raise(wire: bytes, kind: str, number: int | None) -> None:
    u = untagged(one(wire))  # type: ignore[arg-type]
    assert (u.kind, u.number if kind else None) == (kind, number)


MESSAGE = st.builds(
    lambda header, sep, body: header + sep + body,
    st.binary(max_size=300).map(lambda b: b.replace(b"\n\n", b"\n").replace(b"\r\n\r\n", b"")),
    st.sampled_from([b"\r\n\r\n", b"\n\n", b""]),
    st.binary(max_size=6000),
)


@settings(max_examples=150, deadline=None)
@given(message=MESSAGE)
def test_a_spooled_body_has_the_identity_and_bytes_of_the_same_body_in_memory(
    message: bytes,
) -> None:
    wire = b"* 1 FETCH (UID 9 FLAGS (\\Seen) BODY[] {%d}\r\n%s)\r\n" % (len(message), message)
    in_memory = fetched_of(attrs_of(wire))  # type: ignore[arg-type]
    spooled = fetched_of(attrs_of(wire, spool_above=0))  # type: ignore[arg-type]
    assert isinstance(spooled.body, SpooledLiteral) or not message
    assert spooled.identity == in_memory.identity == identity_of_message(message)

    async def read(body: object) -> bytes:
        return b"".join([c async for c in body.chunks()])  # type: ignore[attr-defined]

    assert asyncio.run(read(spooled.body)) == message
    assert asyncio.run(read(spooled.body)) == message  # a body may be read again (a retry)
    assert spooled.body.size == len(message)


def test_identity_of_a_big_spooled_body_reads_only_its_start() -> None:
    message = b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\n" + b"z" * (5 << 20)
    reader = ResponseReader()
    (raw,) = reader.feed(b"* 1 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(message), message))
    body = raw.literals[0]
    assert isinstance(body, SpooledLiteral)
    assert identity_of_spooled(body) == identity_of_message(message)
    tracemalloc.start()
    identity_of_spooled(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # its start, not the 8 MiB a header may run to


@pytest.mark.parametrize("header_kib", [63, 64, 65, 700, 5000])
def test_identity_of_a_spooled_body_with_a_long_header(header_kib: int) -> None:
    """A header longer than the first read is read on to its end (up to HEADER_SCAN)."""
    filler = b"X-Filler: " + b"f" * 1000 + b"\r\n"
    header = b"Message-ID: <a@b>\r\n" + filler * header_kib + b"\r\n"
    message = header + b"body\r\n" * 3000
    (raw,) = ResponseReader(spool_above=0).feed(
        b"* 1 FETCH (BODY[] {%d}\r\n%s)\r\n" % (len(message), message)
    )
    body = raw.literals[0]
    assert isinstance(body, SpooledLiteral)
    assert identity_of_spooled(body) == identity_of_message(message)


@pytest.mark.parametrize(
    ("name", "line", "says"),
    [
        ("SELECT", b"* XYZZY %d plugh plugh plugh\r\n", "untagged responses to one SELECT"),
        (None, b"* %d EXPUNGE\r\n", "unsolicited"),  # between commands
    ],
)
def test_a_flood_of_responses_is_cut_off(
    monkeypatch: pytest.MonkeyPatch, name: str | None, line: bytes, says: str
) -> None:
    """Responses a command keeps (unknown ones, news like EXPUNGE) cost memory: past a cap the
    connection is dropped instead of growing without end."""
    monkeypatch.setattr(protocol, "MAX_KEPT", 64 << 10)
    loop = asyncio.new_event_loop()
    try:
        proto = protocol.ImapProtocol(loop, timeout=5)
        proto.transport = srv.NullTransport()
        proto.data_received(b"* OK hi\r\n")
        if name is not None:
            proto._current = protocol._InFlight(b"A1", name, None, loop.create_future())
        for i in range(20_000):
            proto.data_received(line % i)
            if proto._broken is not None:
                break
        assert isinstance(proto._broken, protocol.ProtocolError)
        assert says in str(proto._broken)
        assert i < 10_000  # cut off near the cap, not at the end
    finally:
        loop.close()


def test_a_listing_shares_its_flag_sets() -> None:
    """A listing of 100k messages held one frozenset of flags a message (21 MB); messages
    with the same flags share one."""
    wire = b"".join(
        b"* %d FETCH (UID %d FLAGS (\\Seen%s) RFC822.SIZE 900)\r\n"
        % (i, i, b" $Work" if i % 3 else b"")
        for i in range(1, 5001)
    )
    tracemalloc.start()
    listed = [message_info(fetch_attributes(untagged(r))) for r in ResponseReader().feed(wire)]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(listed) == 5000
    assert {m.flags for m in listed} == {frozenset({"\\Seen"}), frozenset({"\\Seen", "$Work"})}
    assert held / len(listed) < 250, held  # the message, its id, the list: not its own set
