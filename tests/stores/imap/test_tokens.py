"""The tokenizer's values, one shape per row: the fast paths (an atom without brackets, a
quoted string without escapes) must read exactly what the byte-by-byte rules read."""

from __future__ import annotations

import pytest

from mailtide.stores.imap.parse import ParseError, RawResponse, Tokens, Value, untagged


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
