"""How the IMAP conversation is shown at -vv: secrets and message contents never, the rest as
it went over the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailtide.stores.imap.parse import RawResponse
from mailtide.stores.imap.wire import (
    MAX_SHOWN,
    SECRET_MARKER,
    Secret,
    command_line,
    response_line,
    shown_line,
)


async def _chunks() -> AsyncIterator[bytes]:
    yield b"Subject: the body\r\n\r\nSecret body text\r\n"


def test_a_command_hides_its_secrets_and_literals() -> None:
    login = command_line(b"A1", ["LOGIN", '"me"', Secret('"pa ss"')])
    assert login == f'A1 LOGIN "me" {SECRET_MARKER}'
    append = command_line(b"A2", ["APPEND", '"INBOX"', "(\\Seen)", (4242, _chunks())])
    assert append == 'A2 APPEND "INBOX" (\\Seen) {4242 bytes}'
    assert "pa ss" not in repr(Secret("pa ss"))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            RawResponse(
                [b"* 1 FETCH (UID 7 BODY[HEADER] {11}", b" BODY[TEXT]<0> {4}", b")"],
                [bytearray(b"Subject: x\n"), bytearray(b"body")],
            ),
            "* 1 FETCH (UID 7 BODY[HEADER] {11 bytes} BODY[TEXT]<0> {4 bytes})",
        ),
        (
            RawResponse([b"* 2 FETCH (BINARY[1] ~{3}", b")"], [bytearray(b"\0\1\2")]),
            "* 2 FETCH (BINARY[1] {3 bytes})",
        ),
        (
            RawResponse([b'* 3 FETCH (UID 9 BODY[TEXT] "Secret body \\"text\\"" FLAGS ())']),
            "* 3 FETCH (UID 9 BODY[TEXT] {18 bytes} FLAGS ())",
        ),
        (
            RawResponse([b'* 4 FETCH (RFC822.HEADER "From: a" RFC822.SIZE 12)']),
            "* 4 FETCH (RFC822.HEADER {7 bytes} RFC822.SIZE 12)",
        ),
        (
            RawResponse([b'* LIST () "/" {5}', b""], [bytearray(b"Tata\x1b")]),
            '* LIST () "/" {5 bytes}',
        ),
        (
            RawResponse([b"* OK ready\x1b[31m \xc3\xa4"]),
            "* OK ready\\x1b[31m ä",
        ),
    ],
    ids=["literals", "binary literal", "quoted body", "quoted header", "folder literal", "escapes"],
)
def test_a_response_shows_no_message_contents(raw: RawResponse, shown: str) -> None:
    assert response_line(raw) == shown


def test_a_long_line_is_cut_and_says_how_long_it_was() -> None:
    line = b"* SEARCH " + b" ".join(b"%d" % i for i in range(10_000))
    shown = shown_line(line)
    assert len(shown) < MAX_SHOWN + 40
    assert shown.endswith(f"… ({len(line):,} characters)")
