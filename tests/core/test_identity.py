"""Content identity: one answer for the server's CRLF copy and the Maildir's LF copy."""

import pytest

from mailtide.core.identity import (
    crlf_size_of_lf,
    header_section,
    identity_of,
    message_id_of,
    to_lf,
)
from mailtide.core.model import Identity

LF_MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: Bob <bob@example.org>\n"
    b"Subject: lunch\n"
    b"Message-ID: <1234@example.org>\n"
    b"\n"
    b"Shall we?\n"
    b"\n"
    b"-- Ann\n"
)
CRLF_MESSAGE = LF_MESSAGE.replace(b"\n", b"\r\n")


def identity_of_crlf(raw: bytes) -> Identity:
    return identity_of(header_section(raw), len(raw))


def identity_of_lf(raw: bytes) -> Identity:
    return identity_of(header_section(raw), crlf_size_of_lf(raw))


def test_crlf_and_lf_copies_have_one_identity() -> None:
    far = identity_of_crlf(CRLF_MESSAGE)
    near = identity_of_lf(LF_MESSAGE)
    assert far == near
    assert far.message_id == "<1234@example.org>"
    assert far.size == len(CRLF_MESSAGE)  # the size is always the CRLF size, as RFC822.SIZE


def test_identity_tells_different_headers_apart() -> None:
    other = LF_MESSAGE.replace(b"Subject: lunch", b"Subject: dinner")
    assert identity_of_lf(other) != identity_of_lf(LF_MESSAGE)


def test_identity_hashes_the_header_not_the_body() -> None:
    # Same header and size, different body: the size is what tells bodies apart cheaply.
    other = LF_MESSAGE.replace(b"Shall we?", b"Shall we!")
    assert identity_of_lf(other).header_digest == identity_of_lf(LF_MESSAGE).header_digest


def test_crlf_size_of_lf() -> None:
    assert crlf_size_of_lf(LF_MESSAGE) == len(CRLF_MESSAGE)
    assert crlf_size_of_lf(b"") == 0
    assert crlf_size_of_lf(b"no line end") == len(b"no line end")


def test_to_lf_leaves_lone_cr_alone() -> None:
    assert to_lf(b"a\r\nb\rc\n") == b"a\nb\rc\n"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(b"Message-ID: <a@b>\n\n", "<a@b>", id="plain"),
        pytest.param(b"message-id:<a@b>\n\n", "<a@b>", id="lower-case, no space"),
        pytest.param(b"Message-Id: \t<a@b>\n\n", "<a@b>", id="tab"),
        pytest.param(b"Subject: x\nMessage-ID:\n <a@b>\n\n", "<a@b>", id="folded LF"),
        pytest.param(b"Subject: x\r\nMessage-ID:\r\n\t<a@b>\r\n\r\n", "<a@b>", id="folded CRLF"),
        pytest.param(b"Message-ID: \n  <a@b>\n\n", "<a@b>", id="folded after a space"),
        pytest.param(b"Message-ID: <a b@c>\n\n", "<a b@c>", id="space inside brackets"),
        pytest.param(b"Message-ID: bare@id\n\n", "bare@id", id="no brackets"),
        pytest.param(b"From: a@b\nSubject: x\n\n", "", id="missing"),
        pytest.param(b"X-Message-ID: <no@no>\n\n", "", id="other header ending in message-id"),
        pytest.param(b"Subject: x\n Message-ID: <no@no>\n\n", "", id="inside a folded header"),
        pytest.param(
            b"In-Reply-To: <parent@x>\nMessage-ID: <child@x>\n\n", "<child@x>", id="after others"
        ),
        pytest.param(b"", "", id="empty"),
    ],
)
def test_message_id_of(header: bytes, expected: str) -> None:
    assert message_id_of(header) == expected


def test_message_id_of_a_folded_header_through_identity_of() -> None:
    crlf = b"From: a@b\r\nMessage-ID:\r\n <folded@x>\r\n\r\nbody\r\n"
    lf = to_lf(crlf)
    assert identity_of_crlf(crlf).message_id == "<folded@x>"
    assert identity_of_crlf(crlf) == identity_of_lf(lf)


def test_message_without_message_id_still_pairs_across_line_ends() -> None:
    crlf = b"From: a@b\r\nSubject: no id\r\n\r\nbody\r\n"
    assert identity_of_crlf(crlf).message_id == ""
    assert identity_of_crlf(crlf) == identity_of_lf(to_lf(crlf))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"A: 1\r\nB: 2\r\n\r\nbody\r\n", b"A: 1\r\nB: 2\r\n\r\n", id="CRLF"),
        pytest.param(b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n\n", id="LF"),
        pytest.param(
            b"A: 1\nB: 2\n\nbody with\r\n\r\nCRLF inside\n",
            b"A: 1\nB: 2\n\n",
            id="LF, CRLF in body",
        ),
        pytest.param(
            b"A: 1\r\n\r\nbody with\n\nLF inside\r\n", b"A: 1\r\n\r\n", id="CRLF, LF in body"
        ),
        pytest.param(b"A: 1\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n", id="no body: all of it"),
        pytest.param(b"\r\nbody\r\n", b"\r\nbody\r\n", id="empty header, no blank line found"),
        pytest.param(b"", b"", id="empty"),
    ],
)
def test_header_section(raw: bytes, expected: bytes) -> None:
    assert header_section(raw) == expected


def test_header_section_takes_any_buffer() -> None:
    raw = bytearray(CRLF_MESSAGE)
    assert header_section(raw) == header_section(memoryview(raw)) == header_section(CRLF_MESSAGE)


def test_header_section_of_both_forms_agrees_after_normalising() -> None:
    assert to_lf(header_section(CRLF_MESSAGE)) == header_section(LF_MESSAGE)


# ---- lines a mail client adds to a copy it writes --------------------------------------------

CLIENT_COPY = LF_MESSAGE.replace(
    b"Subject: lunch\n",
    b"Subject: lunch\nContent-Length: 20\nLines: 3\nStatus: RO\nX-Status: A\n",
)


def test_a_client_copy_with_content_length_lines_status_is_the_same_message() -> None:
    """neomutt's save adds Content-Length:, mbox tools Lines:, Status:, X-Status:: they count
    in neither the digest nor the size, as mbsync's X-TUID does not."""
    plain, copy = identity_of_lf(LF_MESSAGE), identity_of_lf(CLIENT_COPY)
    assert copy == plain
    assert copy.size + copy.marks == crlf_size_of_lf(CLIENT_COPY)


def test_the_legacy_identity_is_the_one_records_hold_from_before() -> None:
    """Records written before client lines were left out hold the digest with them in:
    ``legacy`` is exactly that, and ``forms`` gives both to look a record's message up by."""
    import hashlib

    header = header_section(CLIENT_COPY)
    old = Identity(
        "<1234@example.org>",
        crlf_size_of_lf(CLIENT_COPY),
        hashlib.sha256(header).hexdigest(),
        hashlib.sha256(b"").hexdigest()[:32],
    )
    copy = identity_of_lf(CLIENT_COPY)
    assert copy.legacy == old and copy != old
    assert copy.forms() == (copy, old)
    assert identity_of_lf(LF_MESSAGE).forms() == (identity_of_lf(LF_MESSAGE),)
