"""Hypothesis against the IMAP response reader and the FETCH parser.

(a) Any byte stream, cut into reads anywhere: the reader gives responses or raises
    ``ProtocolError`` (nothing else), each read ends, and what it holds in memory never
    exceeds its caps (run with caps shrunk to a few bytes, so the caps are what is tested);
    the whole protocol object never lets an error escape ``data_received`` and never
    hits its "internal error" path.
(b) Well-formed responses (lines joined by literals of any size, 0 included, CRLF and
    literal markers inside literals) come out exactly as they went in, whatever the
    reads, with the big literals spooled to files.
(c) The FETCH parser (tokens, attribute pairs, UID / FLAGS / sizes / dates, a whole
    message) given garbage raises ``ParseError`` and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imap_helpers as srv
from mailtide.stores.imap import protocol
from mailtide.stores.imap.mailbox import (
    fetch_attributes,
    fetched_of,
    flags_of,
    message_info,
    parse_internaldate,
    uid_of,
)
from mailtide.stores.imap.parse import (
    ParseError,
    RawResponse,
    SpooledLiteral,
    Tokens,
    text_of,
    untagged,
)
from mailtide.stores.imap.protocol import ImapProtocol, ProtocolError, ResponseReader

FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Pieces that steer random bytes into the reader's interesting states.
MARKERS = [
    b"\r\n",
    b"\r",
    b"\n",
    b"* ",
    b"* 1 FETCH (",
    b"A1 OK done\r\n",
    b"+ go\r\n",
    b"(",
    b")",
    b"{0}\r\n",
    b"{3}\r\n",
    b"{20}\r\n",
    b"{7+}\r\n",
    b"~{4}\r\n",
    b"{x}\r\n",
    b"{99999999999999}\r\n",
    b"{2147483649}\r\n",
    b'"quoted \\" str"',
    b"NIL",
    b"* BYE bye\r\n",
]

# a line that announces a literal: a response of many of them must still be bounded
literal_line = st.tuples(st.binary(max_size=40), st.sampled_from([b"{0}", b"{1}", b"{9}"])).map(
    lambda t: t[0].replace(b"\r", b"") + t[1] + b"\r\n"
)
stream = st.lists(
    st.one_of(
        st.sampled_from(MARKERS),
        st.binary(max_size=40),
        st.lists(literal_line, max_size=15).map(b"".join),
    ),
    max_size=40,
).map(b"".join)


def cut(data: bytes, points: list[int]) -> Iterator[bytes]:
    """``data`` in reads cut at ``points`` (any positions, empty reads included)."""
    last = 0
    for p in sorted(q % (len(data) + 1) for q in points):
        yield data[last:p]
        last = p
    yield data[last:]


def literal_bytes(lit: bytearray | SpooledLiteral) -> bytes:
    return lit.read(0, lit.size) if isinstance(lit, SpooledLiteral) else bytes(lit)


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caps of a few bytes, so random streams run into every one of them."""
    monkeypatch.setattr(protocol, "MAX_LINE", 64)
    monkeypatch.setattr(protocol, "MAX_HELD", 32)
    monkeypatch.setattr(protocol, "MAX_LITERALS", 10)


# ---- (a) any bytes ---------------------------------------------------------------------------


@FAST
@given(data=stream, points=st.lists(st.integers(min_value=0), max_size=12))
def test_any_bytes_give_responses_or_a_protocol_error(
    small_caps: None, data: bytes, points: list[int]
) -> None:
    reader = ResponseReader(max_literal=1 << 20, spool_above=8)
    try:
        for piece in cut(data, points):
            for response in reader.feed(piece):
                assert len(response.lines) == len(response.literals) + 1
                response.close()
            # in memory: the lines and small literals of one response, and a partial line
            assert reader.held <= protocol.MAX_HELD + protocol.MAX_LINE
    except ProtocolError:
        pass
    finally:
        reader.close()


@FAST
@given(data=stream, points=st.lists(st.integers(min_value=0), max_size=12))
def test_the_protocol_survives_any_bytes(data: bytes, points: list[int]) -> None:
    """Greeting, then garbage, as the answer to a FETCH whose handler parses messages."""
    loop = asyncio.new_event_loop()
    try:
        proto = ImapProtocol(loop, timeout=5)
        proto.transport = srv.NullTransport()
        proto.data_received(b"* OK hi\r\n")
        assert proto.state != "CONNECTED"

        def on_untagged(u: object) -> bool:
            try:
                fetched_of(fetch_attributes(u))  # type: ignore[arg-type]
            except ParseError:
                pass
            return True

        proto._current = protocol._InFlight(b"A1", "FETCH", on_untagged, loop.create_future())
        for piece in cut(data, points):
            proto.data_received(piece)  # must not raise
        broken = proto._broken
        assert broken is None or isinstance(broken, ProtocolError)
        assert broken is None or "internal error" not in str(broken), broken
    finally:
        loop.close()


# ---- (b) well-formed responses round-trip ----------------------------------------------------

line_text = st.binary(max_size=30).filter(lambda b: b"\r\n" not in b and not b.endswith(b"\r"))
last_line = line_text.filter(lambda b: not b.endswith(b"}"))
literal = st.one_of(
    st.binary(max_size=40),
    st.lists(
        st.sampled_from([b"\r\n", b"{5}\r\n", b"* 1 FETCH", b"x" * 50, b"\r"]), max_size=8
    ).map(b"".join),
)
response = st.tuples(
    st.lists(
        st.tuples(line_text, literal, st.sampled_from([b"{%d}", b"{%d+}", b"~{%d}"])), max_size=4
    ),
    last_line,
)


def wire(parts: list[tuple[bytes, bytes, bytes]], last: bytes) -> tuple[bytes, RawResponse]:
    out = b""
    lines = []
    literals: list[bytearray | SpooledLiteral] = []
    for text, lit, marker in parts:
        line = text + marker % len(lit)
        out += line + b"\r\n" + lit
        lines.append(line)
        literals.append(bytearray(lit))
    lines.append(last)
    return out + last + b"\r\n", RawResponse(lines, literals)


@FAST
@given(
    responses=st.lists(response, min_size=1, max_size=6),
    points=st.lists(st.integers(min_value=0), max_size=20),
)
def test_well_formed_responses_round_trip_whatever_the_reads(
    responses: list[tuple[list[tuple[bytes, bytes, bytes]], bytes]], points: list[int]
) -> None:
    sent = [wire(parts, last) for parts, last in responses]
    data = b"".join(w for w, _ in sent)
    reader = ResponseReader(spool_above=16)  # literals above 16 bytes go through a file
    got: list[RawResponse] = []
    for piece in cut(data, points):
        got.extend(reader.feed(piece))
    assert reader.idle
    assert [r.lines for r in got] == [r.lines for _, r in sent]
    assert [[literal_bytes(x) for x in r.literals] for r in got] == [
        [bytes(x) for x in r.literals] for _, r in sent
    ]
    spooled = [x for r in got for x in r.literals if isinstance(x, SpooledLiteral)]
    assert all(x.size > 16 for x in spooled)
    for r in got:
        r.close()


def test_a_literal_above_the_limit_is_refused_before_any_byte_is_held() -> None:
    reader = ResponseReader()
    with pytest.raises(ProtocolError, match="limit"):
        reader.feed(b"* 1 FETCH (BODY[] {%d}\r\n" % (protocol.MAX_LITERAL + 1))
    reader.close()


def test_a_big_literal_is_spooled_not_held() -> None:
    reader = ResponseReader()
    assert reader.feed(b"* 1 FETCH (UID 1 BODY[] {1000000000}\r\n" + b"x" * (3 << 20)) == []
    assert reader.held < 1 << 10  # the 3 MiB received so far are on disk
    reader.close()


# ---- (c) the FETCH parser on garbage ---------------------------------------------------------

ITEM_NAMES = ["UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "BODY[]", "BODY[HEADER]", "X-JUNK"]
token = st.recursive(
    st.one_of(
        st.sampled_from([*ITEM_NAMES, "NIL", "0", "7", "99999999999999999999999", "\\Seen", "two"]),
        st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8
        ),
        st.binary(max_size=10).map(
            lambda b: b'"' + b.replace(b"\\", b"").replace(b'"', b"") + b'"'
        ),
        st.sampled_from(
            ['"17-Jul-1996 02:44:25 -0700"', '" 1-Feb-2024 00:00:00 +0000"', '"bad date"']
        ),
        st.binary(max_size=12).map(lambda b: ("LIT", b)),
        st.sampled_from(["(", ")", "[", "]", "{", "{3}", "\\", "\x01", "\xff"]),
    ),
    lambda children: st.lists(children, max_size=5),
    max_leaves=20,
)


def fetch_wire(items: list[object]) -> bytes:
    out = b"* 1 FETCH ("

    def emit(item: object) -> None:
        nonlocal out
        if isinstance(item, list):
            out += b"("
            for x in item:
                emit(x)
            out += b") "
        elif isinstance(item, tuple):
            out += b"{%d}\r\n" % len(item[1]) + item[1] + b" "
        elif isinstance(item, bytes):
            out += item + b" "
        else:
            out += str(item).encode("latin-1", "replace") + b" "

    for item in items:
        emit(item)
    return out + b")\r\n"


@FAST
@given(items=st.lists(token, max_size=12), spool=st.booleans())
def test_the_fetch_parser_raises_parse_error_only(items: list[object], spool: bool) -> None:
    reader = ResponseReader(spool_above=4 if spool else 1 << 20)
    try:
        responses = reader.feed(fetch_wire(items))
    except ProtocolError:
        return  # the reader refused it (e.g. a "{3}" atom ending the line): not the parser's
    for raw in responses:
        u = untagged(raw)
        t = Tokens(raw)
        try:
            while not t.at_end():
                text_of(t.value())
        except ParseError:
            pass
        try:
            attrs = fetch_attributes(u)
        except ParseError:
            continue
        for parse in (message_info, fetched_of, uid_of):
            try:
                parse(attrs)
            except ParseError:
                pass
        for value in attrs.values():
            for check in (flags_of, parse_internaldate):
                try:
                    check(value if check is flags_of else text_of(value))  # type: ignore[operator]
                except ParseError:
                    pass
        raw.close()


def test_deep_nesting_is_a_parse_error_not_a_recursion_error() -> None:
    (raw,) = ResponseReader().feed(b"* 1 FETCH " + b"(" * 100_000 + b"\r\n")
    with pytest.raises(ParseError, match="nested"):
        fetch_attributes(untagged(raw))
