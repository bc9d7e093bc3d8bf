"""Line-end conversion in chunks: any split of the input gives the same output."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailtide.stores.maildir.crlf import CrlfToLf, LfToCrlf, bare_lf_count, lf_form

# bytes rich in line ends, so CR and LF fall on chunk boundaries often
DATA = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"xyz"]), max_size=60).map(b"".join)
CUTS = st.lists(st.integers(min_value=0, max_value=200), max_size=8)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


def _to_lf(chunks: list[bytes]) -> bytes:
    conv = CrlfToLf()
    return b"".join(conv.feed(c) for c in chunks) + conv.end()


def _to_crlf(chunks: list[bytes]) -> bytes:
    conv = LfToCrlf()
    return b"".join(conv.feed(c) for c in chunks)


@given(DATA, CUTS)
def test_crlf_to_lf_ignores_chunking(data: bytes, cuts: list[int]) -> None:
    assert _to_lf(_split(data, cuts)) == data.replace(b"\r\n", b"\n")


@given(DATA, CUTS)
def test_lf_to_crlf_ignores_chunking_and_matches_the_count(data: bytes, cuts: list[int]) -> None:
    whole = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    chunks = _split(data, cuts)
    assert _to_crlf(chunks) == whole
    extra, after_cr = 0, False
    for c in chunks:
        extra += bare_lf_count(c, after_cr)
        after_cr = c.endswith(b"\r") if c else after_cr
    assert len(data) + extra == len(whole)


@given(DATA, CUTS, CUTS)
def test_canonical_crlf_round_trips(data: bytes, cuts_in: list[int], cuts_out: list[int]) -> None:
    # canonical CRLF text: every LF is part of a CRLF and no CR precedes a CRLF
    canonical = data.replace(b"\r", b"").replace(b"\n", b"\r\n")
    lf = _to_lf(_split(canonical, cuts_in))
    assert _to_crlf(_split(lf, cuts_out)) == canonical


def test_known_limit_cr_before_crlf() -> None:
    # documented in crlf.py: not canonical, so not preserved
    assert _to_crlf([_to_lf([b"a\r\r\nb"])]) == b"a\r\nb"


@given(DATA)
def test_lf_form_is_crlf_made_lf_with_lone_crs_kept(data: bytes) -> None:
    want = data.replace(b"\r\n", b"\n")
    assert lf_form(data) == lf_form(bytearray(data)) == want
    assert lf_form(data + b"\r") == want + b"\r"  # a CR at the very end stands alone


def test_lf_form_of_a_message_with_and_without_a_lone_cr() -> None:
    message = b"Subject: x\r\n\r\nline\r\nend"
    assert lf_form(message) == b"Subject: x\n\nline\nend"
    assert lf_form(message.replace(b"line", b"li\rne")) == b"Subject: x\n\nli\rne\nend"
