"""Content identity: what makes two stored copies "the same message".

Computed the same way from either side's form: the server speaks CRLF, a
Maildir file holds LF.  Both are normalised to LF for hashing and to CRLF for
the size, so ``identity_of`` gives one answer for both copies.
"""

from __future__ import annotations

import re

from mailtide.core.model import Identity

_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>|[^\s]+)")


def header_end(data: bytes | bytearray, stop: int | None = None) -> int | None:
    """Where the header section of ``data`` (up to ``stop``) ends: just past its empty line
    (CRLF or LF form, whichever comes first), or None when it holds no empty line.  Nothing
    is copied, and the LF form is looked for only before the CRLF one (a body is not read
    twice to its end: in a CRLF message "\\n\\n" never occurs)."""
    end = len(data) if stop is None else min(stop, len(data))
    crlf = data.find(b"\r\n\r\n", 0, end)
    # An LF blank line comes first only if it starts before crlf + 2 (it cannot start there).
    lf = data.find(b"\n\n", 0, end if crlf < 0 else crlf + 3)
    if lf >= 0:
        return lf + 2
    return crlf + 4 if crlf >= 0 else None


def header_section(data: bytes | bytearray | memoryview) -> bytes:
    """The header section of a message, up to and including the empty line (or all of it)."""
    raw = bytes(data)
    return raw[: header_end(raw) or len(raw)]


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def crlf_size_of_lf(data: bytes | bytearray) -> int:
    """Size of ``data`` (LF line ends) once every LF becomes CRLF."""
    return len(data) + data.count(b"\n")


def message_id_of(header: bytes) -> str:
    return _message_id_in(header, _lowered(header))


def _lowered(header: bytes) -> bytes:
    """The header in lower case after a line end: where every line, the first too, follows
    b"\\n" (so ``_first_line`` finds a line by one ``find``, its position the same in
    ``header``)."""
    return b"\n" + header.lower()


_MESSAGE_ID_NAMES = (b"\nmessage-id:",)


def _message_id_in(header: bytes, lowered: bytes) -> str:
    """``message_id_of``, the header's ``_lowered`` form given (made once per message)."""
    at = _first_line(lowered, _MESSAGE_ID_NAMES)
    m = _MESSAGE_ID.search(header, at) if at >= 0 else None
    return m.group(1).decode("ascii", "replace") if m else ""


def _first_line(lowered: bytes, names: tuple[bytes, ...]) -> int:
    """Where in the header the first line that starts with one of ``names`` (b"\\nname:",
    lower case) begins, or -1; ``lowered`` is the header's ``_lowered`` form.  Every match of
    the line patterns here begins there or later, so a pattern is run from there, or not at
    all: a regex anchored at every line start (``(?im)^``) tries each byte of the header,
    which made these searches most of an identity's cost."""
    found = [at for at in map(lowered.find, names) if at >= 0]
    return min(found) if found else -1


# hashlib lets go of the GIL for data of 2 KiB or more; the event loop's thread then waits to
# get it back from the worker threads writing files (up to a switch interval, 5 ms), which
# made a 4 KiB digest cost it some hundred microseconds instead of four.  Fed in smaller
# pieces, the digest keeps the GIL for the few microseconds it takes.
_GIL_KEPT = 2047


def _sha256(data: bytes | bytearray) -> str:
    """The hex SHA-256 of ``data``, computed without letting go of the GIL."""
    import hashlib  # here: a start that digests nothing does not load it (issue 12)

    h = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), _GIL_KEPT):
        h.update(view[start : start + _GIL_KEPT])
    return h.hexdigest()


BODY_PREFIX = 4096  # bytes of the body (CRLF form) in an identity: IMAP BODY.PEEK[TEXT]<0.N>


# A header another synchroniser adds to its own copy only, so the same message carries it on one
# side and not the other: mbsync's X-TUID (its temporary id for finding an upload again; in every
# message mbsync copied, either way) and OfflineIMAP's X-OfflineIMAP (in the server's copy of
# what it uploaded to a server without UIDPLUS).
_COPY_MARK = re.compile(rb"(?im)^(?:x-tuid|x-offlineimap):[^\n]*\n")
# Lines a mail client adds to a copy it writes: neomutt's "s" (save) into a Maildir adds
# Content-Length:, mbox tools Lines:, Status: and X-Status:.  A message saved that way is still
# the same message (a move made with them is a move).  Left out since identity version 2.
CLIENT_LINES = ("content-length", "lines", "status", "x-status")
_CLIENT_MARK = re.compile(rb"(?im)^(?:" + "|".join(CLIENT_LINES).encode() + rb"):[^\n]*\n")
_COPY_NAMES = (b"\nx-tuid:", b"\nx-offlineimap:")
_CLIENT_NAMES = tuple(f"\n{name}:".encode() for name in CLIENT_LINES)


def _lines(
    pattern: re.Pattern[bytes], names: tuple[bytes, ...], lf: bytes, lower: bytes
) -> list[bytes]:
    """``pattern.findall(lf)`` for a pattern of whole lines that start with one of ``names``."""
    at = _first_line(lower, names)
    return pattern.findall(lf, at) if at >= 0 else []


def identity_of(header: bytes, crlf_size: int, body_prefix: bytes = b"") -> Identity:
    """Identity from a message's header section (either line-end form), its CRLF size and the
    start of its body in CRLF form (at least ``BODY_PREFIX`` bytes, or all of a shorter body).
    Other synchronisers' lines (X-TUID, X-OfflineIMAP) and mail clients' copy lines
    (``CLIENT_LINES``) count in neither the header nor the size (``marks`` says how long they
    were); ``legacy`` is the identity as computed before client lines were left out."""
    lf = to_lf(header)
    lowered = _lowered(lf)
    found = _lines(_COPY_MARK, _COPY_NAMES, lf, lowered)
    if found:
        lf = _COPY_MARK.sub(b"", lf)
        lowered = _lowered(lf)
    body = _sha256(body_prefix[:BODY_PREFIX])[:32]
    mid = _message_id_in(lf, lowered)
    marks = sum(len(m) + 1 for m in found)  # each line's CRLF form
    client = _lines(_CLIENT_MARK, _CLIENT_NAMES, lf, lowered)
    legacy = None
    if client:
        legacy = Identity(mid, crlf_size - marks, _sha256(lf), body, marks)
        lf = _CLIENT_MARK.sub(b"", lf)
        marks += sum(len(m) + 1 for m in client)
    return Identity(
        message_id=mid,
        size=crlf_size - marks,
        marks=marks,
        header_digest=_sha256(lf),
        body_digest=body,
        legacy=legacy,
    )


def identity_of_message(data: bytes | bytearray | memoryview) -> Identity:
    """Identity of a whole message in CRLF form held in memory (it is not copied: a 25 MB body
    is only looked at, up to the end of its header and BODY_PREFIX bytes beyond)."""
    view = memoryview(data)
    held = data if isinstance(data, bytes | bytearray) else view.tobytes()
    cut = header_end(held, 65536)
    if cut is None and len(view) > 65536:  # a header over 64 KiB: look further
        cut = header_end(held)
    if cut is None:
        cut = len(view)
    return identity_of(bytes(view[:cut]), len(view), bytes(view[cut : cut + BODY_PREFIX]))
