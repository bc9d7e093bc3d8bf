"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtide.core import mutf7

VECTORS = [
    ("INBOX", "INBOX"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("日本語", "&ZeVnLIqe-"),
    ("&", "&-"),
    ("R&D", "R&-D"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("", ""),
    ("😀", "&2D3eAA-"),
    ("a\tb", "a&AAk-b"),
]


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_known_vectors(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&ZeVnLIqe",  # no closing "-"
        "&Ze*-",  # not base64
        "&A-",  # truncated
        "&AP-",  # odd number of UTF-16 bytes... or non-zero padding bits
        "&AGE-",  # "a" encoded in base64: not canonical
        "&APw-&APw-",  # two adjacent runs: canonical form is one
        "&2D0-",  # a lone high surrogate
        "ü",  # raw 8-bit character
        "a\x00b",  # control character sent raw
        "&APx-",  # non-zero unused bits
    ],
)
def test_malformed_names_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(bad)


names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(names)
def test_round_trip(text: str) -> None:
    wire = mutf7.encode(text)
    assert wire.isascii() and all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert mutf7.decode(wire) == text


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
def test_decode_is_exact_inverse_where_it_succeeds(wire: str) -> None:
    # A name the server sends maps back to exactly the same wire form, so we
    # never address a different folder than the one listed.
    try:
        text = mutf7.decode(wire)
    except ValueError:
        return
    assert mutf7.encode(text) == wire


@pytest.mark.parametrize(
    ("name", "unicode"),
    [
        ("Entw&APw-rfe", "Entwürfe"),
        ("Archiv/Entw&APw-rfe", "Archiv/Entwürfe"),
        ("&ZeVnLIqe-", "日本語"),
        ("R&-D &APw-", "R&D ü"),  # "&-" beside an encoded run
        # ordinary names: no encoded run, or not valid modified UTF-7
        ("INBOX", None),
        ("&-", None),
        ("R&-D", None),
        ("A&B", None),
        ("Entw&APw", None),
        ("Entwürfe", None),
        ("&AGE-", None),
        ("", None),
    ],
)
def test_raw_name_is_the_decoded_name_only_where_something_was_encoded(
    name: str, unicode: str | None
) -> None:
    assert mutf7.raw_name(name) == unicode
