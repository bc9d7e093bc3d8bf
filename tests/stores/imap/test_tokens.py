"""The tokenizer's values, one shape per row: the fast paths (an atom without brackets, a
quoted string without escapes) must read exactly what the byte-by-byte rules read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtide.stores.imap.parse import (
    ParseError,
    RawResponse,
    Tokens,
    Value,
    simple_fetch,
    untagged,
)


def values(line: bytes) -> list[Value]:
    t = Tokens(RawResponse([line]))
    out = []
    while not t.at_end():
        out.append(t.value())
    return out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"UID 5 FLAGS (\\Seen $Label1)", ["UID", "5", "FLAGS", ["\\Seen", "$Label1"]]),
        (b"BODY[] x", ["BODY[]", "x"]),
        (b"BODY[HEADER.FIELDS (A B)] x", ["BODY[HEADER.FIELDS (A B)]", "x"]),
        (b"BODY[1.MIME]<0> x", ["BODY[1.MIME]<0>", "x"]),
        (b"[UIDNEXT 5] text", ["[UIDNEXT 5]", "text"]),
        (b"foo] bar", ["foo]", "bar"]),  # a stray closing bracket belongs to the atom
        (b"a[b[c]d] e", ["a[b[c]d]", "e"]),  # nested brackets
        (b"a[b (c", ["a[b (c"]),  # an unclosed bracket runs to the end of the line
        (b"NIL nil Nil NILS", [None, None, None, "NILS"]),
        (b'"06-Dec-2026 13:21:25 +0000"', [b"06-Dec-2026 13:21:25 +0000"]),
        (b'"a \\"b\\" \\\\c" d', [b'a "b" \\c', "d"]),  # escaped quote and backslash
        (b'"" x', [b"", "x"]),
        (b"(a (b (c)) d)", [["a", ["b", ["c"]], "d"]]),
        (b"  spaced   out  ", ["spaced", "out"]),
        (b"caf\xc3\xa9", ["caf\ufffd\ufffd"]),  # 8-bit in an atom: replaced, not an error
    ],
)
def test_values(line: bytes, expected: list[Value]) -> None:
    assert values(line) == expected


@pytest.mark.parametrize("line", [b'"unterminated', b'"ends in a backslash\\', b"(open", b")"])
def test_broken_values_are_parse_errors(line: bytes) -> None:
    with pytest.raises(ParseError):
        values(line)


@pytest.mark.parametrize(
    ("line", "kind", "number", "rest"),
    [
        (b"* 12 FETCH (UID 7)", "FETCH", 12, [["UID", "7"]]),
        (b"* SEARCH 1 2", "SEARCH", None, ["1", "2"]),
        (b"*  3   EXISTS", "EXISTS", 3, []),
        (b"* OK [UIDNEXT 5] ready", "OK", None, ["[UIDNEXT 5]", "ready"]),
    ],
)
def test_an_untagged_response_is_read_on_after_its_kind(
    line: bytes, kind: str, number: int | None, rest: list[Value]
) -> None:
    u = untagged(RawResponse([line]))
    assert (u.kind, u.number) == (kind, number)
    t = u.tokens()
    got = []
    while not t.at_end():
        got.append(t.value())
    assert got == rest


# --- simple_fetch: the one-regex reading of a common FETCH, against the tokenizer ---------

_FETCH_PIECES = [
    b"UID",
    b"FLAGS",
    b"BODY[]",
    b"BODY[HEADER]",
    b"RFC822.SIZE",
    b"INTERNALDATE",
    b"nil",
    b"NIL",
    b"5",
    b"\\Seen",
    b"$Label",
    b'"17-Jul-1996 02:44:25 -0700"',
    b'"a\\"b"',
    b'""',
    b"(",
    b")",
    b"()",
    b" ",
    b"  ",
    b"[",
    b"]",
    b"~",
    b"{",
    b"x\tz",
    b"\xc3\xa9",
]


def _tokenized(raw: RawResponse, start: int) -> dict[str, Value] | str:
    """The attributes as ``fetch_attributes`` reads them with the tokenizer, or its error."""
    from mailtide.stores.imap.parse import pairs

    t = Tokens(raw, start)
    try:
        attrs = pairs(t.value())
        if not t.at_end():
            return "goes on"
    except ParseError as e:
        return f"ParseError: {e}"
    return attrs


_NAMES = [b"UID", b"FLAGS", b"BODY[]", b"RFC822.SIZE", b"INTERNALDATE", b"X-GM-LABELS", b"nil"]
_VALUES = [
    b"5",
    b"(\\Seen $Label)",
    b"()",
    b'"1-Jan-2024 00:00:00 +0000"',
    b"NIL",
    b"( a)",
    b"(a  b)",
]
_PAIRS = st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)).map(b" ".join)


@given(
    st.one_of(
        st.lists(st.sampled_from(_FETCH_PIECES), max_size=14),
        st.lists(st.one_of(_PAIRS, _PAIRS, st.sampled_from(_FETCH_PIECES)), max_size=6),
    ),
    st.sampled_from([None, 0, 3, 7]),
    st.sampled_from([b")", b") ", b" )", b"", b"x)"]),
)
@settings(max_examples=600)
def test_simple_fetch_reads_what_the_tokenizer_reads(
    pieces: list[bytes], literal: int | None, after: bytes
) -> None:
    """Where ``simple_fetch`` answers, the tokenizer reads the same attributes (it never
    answers for a response the tokenizer refuses)."""
    head = b"* 7 FETCH (" + b" ".join(pieces)
    if literal is None:
        raw = RawResponse([head + after])
    else:
        raw = RawResponse([head + b" BODY[] {3}", after], [bytearray(b"abc"[:literal])])
    u = untagged(raw)
    got = simple_fetch(u.raw, u.rest)
    if got is not None:
        assert got == _tokenized(u.raw, u.rest)


@pytest.mark.parametrize(
    ("lines", "literals"),
    [
        (
            [
                b"* 1 FETCH (UID 1 FLAGS (\\Seen $X) INTERNALDATE "
                b'"1-Jan-2024 00:00:00 +0000" BODY[] {3}',
                b")",
            ],
            [bytearray(b"abc")],
        ),
        ([b"* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 1234)"], []),
        ([b"* 3 FETCH (FLAGS (\\Deleted) UID 3 MODSEQ (12))"], []),
    ],
)
def test_simple_fetch_reads_the_common_responses(
    lines: list[bytes], literals: list[bytearray]
) -> None:
    raw = RawResponse(lines, list(literals))
    u = untagged(raw)
    got = simple_fetch(u.raw, u.rest)
    assert got is not None
    assert got == _tokenized(u.raw, u.rest)


@given(st.lists(_PAIRS, min_size=1, max_size=5), st.booleans())
@settings(max_examples=300)
def test_simple_fetch_reads_well_formed_attributes_as_the_tokenizer(
    pairs_: list[bytes], with_body: bool
) -> None:
    head = b"* 7 FETCH (" + b" ".join(pairs_)
    if with_body:
        raw = RawResponse([head + b" BODY[] {3}", b")"], [bytearray(b"abc")])
    else:
        raw = RawResponse([head + b")"])
    u = untagged(raw)
    got = simple_fetch(u.raw, u.rest)
    want = _tokenized(u.raw, u.rest)
    if got is not None:
        assert got == want
    else:  # it declines only what the tokenizer refuses, and lists spaced otherwise
        assert not isinstance(want, dict) or any(b"( a)" in p or b"(a  b)" in p for p in pairs_)
