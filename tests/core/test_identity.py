"""Content identity: one answer for the server's CRLF copy and the Maildir's LF copy."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailtide.core.identity import (
    _MESSAGE_ID,
    crlf_size_of_lf,
    header_end,
    header_section,
    identity_of,
    identity_of_message,
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


# --- the identity's searches, against the plain regexes they stand in for -----------------

_LINE_WORDS = [
    b"Message-ID:",
    b"message-id: ",
    b"MESSAGE-ID:\r\n\t",
    b"X-TUID:",
    b"x-offlineimap:",
    b"Content-Length:",
    b"Lines:",
    b"Status:",
    b"X-Status:",
    b"Subject:",
    b"X-Message-ID:",
    b" Status:",
    b"<a@b>",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"x",
    b"<",
    b">",
]


def _reference_identity(header: bytes, crlf_size: int, prefix: bytes) -> Identity:
    """``identity_of`` as it was written before its searches were made to skip to the lines
    they concern: every pattern run over the whole header."""
    import hashlib

    from mailtide.core import identity as mod

    lf = to_lf(header)
    found = mod._COPY_MARK.findall(lf)
    if found:
        lf = mod._COPY_MARK.sub(b"", lf)
    body = hashlib.sha256(prefix[: mod.BODY_PREFIX]).hexdigest()[:32]
    m = mod._MESSAGE_ID.search(lf)
    mid = m.group(1).decode("ascii", "replace") if m else ""
    marks = sum(len(x) + 1 for x in found)
    client = mod._CLIENT_MARK.findall(lf)
    legacy = None
    if client:
        legacy = Identity(mid, crlf_size - marks, hashlib.sha256(lf).hexdigest(), body, marks)
        lf = mod._CLIENT_MARK.sub(b"", lf)
        marks += sum(len(x) + 1 for x in client)
    return Identity(mid, crlf_size - marks, hashlib.sha256(lf).hexdigest(), body, marks, legacy)


def _reference_header_end(data: bytes) -> int | None:
    ends = [at + n for at, n in ((data.find(b"\r\n\r\n"), 4), (data.find(b"\n\n"), 2)) if at >= 0]
    return min(ends) if ends else None


@given(st.lists(st.sampled_from(_LINE_WORDS), max_size=40))
@settings(max_examples=400)
# message_id_of reads the header as it is, copy marks and all: here X-TUID stands between
# an empty Message-ID: and the line that would continue it once the mark is left out
@example([b"Message-ID:", b"\r\n", b"X-TUID:", b"\r\n", b" ", b"Message-ID:"])
def test_identity_searches_find_what_the_plain_patterns_find(words: list[bytes]) -> None:
    header = b"".join(words)
    assert identity_of(header, 5000, b"body") == _reference_identity(header, 5000, b"body")
    plain = _MESSAGE_ID.search(to_lf(header))
    assert message_id_of(to_lf(header)) == (
        plain.group(1).decode("ascii", "replace") if plain else ""
    )


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"a", b" "]), max_size=30))
def test_header_end_is_where_the_first_blank_line_ends(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert header_end(data) == header_end(bytearray(data)) == _reference_header_end(data)
    for stop in range(len(data) + 1):
        assert header_end(data, stop) == _reference_header_end(data[:stop])


def test_identity_of_a_message_held_any_way_is_one() -> None:
    message = CRLF_MESSAGE.replace(b"Shall we?", b"x" * 70_000)
    long_header = b"X-Long: " + b"y" * 70_000 + b"\r\n" + CRLF_MESSAGE
    for raw in (CRLF_MESSAGE, message, long_header, b"no blank line at all\r\n"):
        cut = _reference_header_end(raw) or len(raw)
        want = identity_of(raw[:cut], len(raw), raw[cut : cut + 4096])
        for held in (raw, bytearray(raw), memoryview(raw)):
            assert identity_of_message(held) == want
