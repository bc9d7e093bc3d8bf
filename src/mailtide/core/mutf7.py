"""Modified UTF-7 (RFC 3501 §5.1.3), the encoding of IMAP mailbox names.

Printable ASCII (0x20-0x7E) stands for itself, except "&", written "&-".
Anything else is written as "&" + base64 of its UTF-16BE form (with "," in
place of "/", no "=" padding) + "-".  ``decode`` is strict: a name that a
conforming server could not have sent raises ValueError, so a garbled name is
refused instead of silently mapped to a different folder.

Both take the rule of which characters stand for themselves (``Literal``), so that
another spelling built the same way (Gmail labels as IMAP keywords, which must be
atoms) is this codec with a narrower rule, not a second codec.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Callable

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")

# Whether the character at this position of the (Unicode) name is written as itself.
Literal = Callable[[int, str], bool]


def _is_direct(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def _printable(_at: int, ch: str) -> bool:
    return _is_direct(ch)


def encode(name: str, literal: Literal = _printable) -> str:
    """The modified UTF-7 form of a Unicode mailbox name (ValueError for a lone surrogate):
    "&" is "&-", a character ``literal`` allows is itself, any other is base64-encoded."""
    out: list[str] = []
    run: list[str] = []  # characters waiting to be base64-encoded together

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")  # a lone surrogate raises ValueError
            out.append("&" + b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            run.clear()

    for at, ch in enumerate(name):
        if ch == "&":
            flush()
            out.append("&-")
        elif literal(at, ch):
            flush()
            out.append(ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(name: str, literal: Literal = _printable) -> str:
    """The Unicode form of a modified UTF-7 mailbox name; ValueError if it is malformed or
    not as ``encode`` with the same ``literal`` would have written it."""
    out: list[str] = []
    at = 0  # characters decoded so far
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ch != "&" and not literal(at, ch):
            raise ValueError(f"character U+{ord(ch):04X} not allowed in modified UTF-7")
        if ch != "&":
            out.append(ch)
            at += 1
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' shift in {name!r}")
        chunk = name[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            at += 1
            continue
        text = _decode_run(chunk, name)
        if any(c == "&" or literal(at + k, c) for k, c in enumerate(text)):
            raise ValueError(f"a character encoded in base64 that stands for itself in {name!r}")
        out.append(text)
        at += len(text)
        # Two adjacent encoded runs would have been written as one: not canonical.
        if i < n and name[i] == "&" and name[i + 1 : i + 2] != "-":
            raise ValueError(f"adjacent encoded runs in {name!r}")
    return "".join(out)


def _decode_run(chunk: str, name: str) -> str:
    if not set(chunk) <= _B64_CHARS:
        raise ValueError(f"bad base64 in {name!r}")
    if len(chunk) % 4 == 1:
        raise ValueError(f"truncated base64 in {name!r}")
    b64 = chunk.replace(",", "/")
    try:
        raw = b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except binascii.Error as e:
        raise ValueError(f"bad base64 in {name!r}") from e
    if len(raw) % 2:
        raise ValueError(f"odd number of UTF-16 bytes in {name!r}")
    # The unused low bits of the last base64 character must be zero (canonical form).
    if b64encode(raw).decode("ascii").rstrip("=") != b64:
        raise ValueError(f"non-canonical base64 in {name!r}")
    try:
        return raw.decode("utf-16-be")
    except UnicodeDecodeError as e:
        raise ValueError(f"invalid UTF-16 in {name!r}") from e


def raw_name(name: str) -> str | None:
    """The Unicode name that ``name`` spells in raw modified UTF-7, as OfflineIMAP and mbsync
    leave a server's folder name on disk ("Entw&APw-rfe" -> "Entwürfe"); None when ``name`` is
    an ordinary name: not valid modified UTF-7 ("A&B", "Entwürfe"), or without an encoded run
    ("R&-D": "&-" alone is "&", nothing says the name was ever encoded)."""
    try:
        text = decode(name)
    except ValueError:
        return None
    return text if any(not _is_direct(ch) for ch in text) else None
