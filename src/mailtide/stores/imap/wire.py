"""The IMAP conversation as log events: what a user attaches to a bug report.

At -vv (the ``mailtide.wire`` loggers, see ``mailtide.ui.log``) every command sent
is one ``imap.sent`` event and every response received one ``imap.received``
event, each with ``conn`` (which connection of the run) and ``line``, the text
as it went over the wire except for what must never be in a log:

- a command part marked ``Secret`` (the LOGIN password, an AUTHENTICATE
  payload) is shown as ``<redacted>``;
- a literal, sent or received, is shown as ``{N bytes}`` in place of its
  announcement and its contents, so no message body is shown;
- a message part that a server sends as a quoted string instead of a literal
  (``BODY[TEXT] "..."``) is shown the same way;
- control characters are escaped, and a line longer than ``MAX_SHOWN``
  characters is cut, saying how long it was.

The text is built only when the logger is enabled: below -vv a line costs one
level check.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from mailtide.stores.base import StoreError
from mailtide.stores.imap.parse import RawResponse

SECRET_MARKER = "<redacted>"
MAX_SHOWN = 2000

_wire = logging.getLogger("mailtide.wire.imap")

# A message part sent as a quoted string: the item name, then the string.
_QUOTED_PART = re.compile(
    rb"((?:BODY|BINARY)(?:\.PEEK)?\[[^\]]*\](?:<\d+>)?|RFC822(?:\.HEADER|\.TEXT)?) "
    rb'"((?:[^"\\]|\\.)*)"',
    re.IGNORECASE,
)
_ESCAPE = re.compile(rb"\\(.)")  # inside a quoted string
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Secret:
    """A command part that is sent as it is and never shown (not even by ``repr``)."""

    text: str = field(repr=False)


# What a command sends: text pieces, secrets, and literals as async byte streams with their size.
Literal = tuple[int, AsyncIterator[bytes]]
Part = str | bytes | Secret | Literal


def enabled() -> bool:
    """Whether the conversation is logged (-vv): build no text when it is not."""
    return _wire.isEnabledFor(logging.DEBUG)


def sent(conn: int, line: str) -> None:
    """Log one command (already shown safely, see ``command_line``)."""
    _log().debug("imap.sent", conn=conn, line=line)


def received(conn: int, raw: RawResponse, context: Mapping[str, Any]) -> None:
    """Log one response; ``context`` is the account / mailbox of the command it answers
    (a response arrives in the event loop's context, not in the command's)."""
    _log().debug("imap.received", **{**context, "conn": conn, "line": response_line(raw)})


@functools.cache
def _log() -> Any:
    """The conversation's structlog logger, made when the first line is logged: a module that
    only builds commands (the quiet check's session, begun before structlog has loaded:
    quiet/early.py) does not load structlog."""
    return structlog.get_logger("mailtide.wire.imap")


def command_line(tag: bytes, parts: Sequence[Part]) -> str:
    """How ``tag`` + ``parts`` are shown: parts joined by spaces, secrets and literals hidden."""
    shown = [_text(tag)]
    for part in parts:
        if isinstance(part, Secret):
            shown.append(SECRET_MARKER)
        elif isinstance(part, tuple):
            shown.append(f"{{{part[0]} bytes}}")
        else:
            shown.append(_text(part if isinstance(part, bytes) else part.encode()))
    return _cut(" ".join(shown))


def response_line(raw: RawResponse) -> str:
    """How one response is shown: each literal as ``{N bytes}``, quoted message parts too."""
    pieces: list[bytes] = []
    for i, line in enumerate(raw.lines):
        if i < len(raw.literals):
            marker = line.rfind(b"{")
            if marker > 0 and line[marker - 1 : marker] == b"~":
                marker -= 1  # a binary literal, ~{N}
            line = line[:marker] + b"{%d bytes}" % len(raw.literals[i])
        pieces.append(line)
    return shown_line(b"".join(pieces))


def shown_line(line: bytes) -> str:
    """A response line as text for a log, quoted message parts hidden (see the docstring)."""
    return _cut(_text(_QUOTED_PART.sub(_hide_quoted, line)))


def _hide_quoted(match: re.Match[bytes]) -> bytes:
    size = len(_ESCAPE.sub(rb"\1", match.group(2)))
    return match.group(1) + b" {%d bytes}" % size


def _text(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cut(text: str) -> str:
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}… ({len(text):,} characters)"


def quote_astring(text: str) -> str:
    """An IMAP quoted string (the text must not hold CR, LF or NUL)."""
    if any(c in text for c in "\r\n\0"):
        raise StoreError("CR, LF or NUL in an IMAP string argument")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
