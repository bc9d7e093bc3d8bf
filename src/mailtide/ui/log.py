"""Logging: one structlog pipeline for our events and the libraries' stdlib records.

The pipeline, in order:

1. context: the ``account`` / ``mailbox`` bound with ``log_context`` (contextvars),
   the level and a timestamp;
2. exceptions formatted to text, so the next step sees tracebacks too;
3. secret redaction, a last resort: values of keys named like a password become
   ``***``, and so does every *whole* occurrence of a registered secret of at
   least ``MIN_MASKED`` characters (see ``register_secret``).  Secrets are kept
   out of log events where they are handled (the IMAP conversation log shows
   ``LOGIN "me" <redacted>``); masking every occurrence of every secret would turn
   ``account.failed`` into ``accoun***.failed`` for the password "t", and the stars
   would give the password away;
4. a renderer: colourful console lines on a terminal, ``key=value`` (logfmt)
   lines otherwise, or JSON on request.

Everything goes to stderr; stdout is left to command output.  Loggers under
``mailtide.wire`` (the IMAP conversation, one event per line) speak only at -vv;
aioimaplib's own logger never speaks below a warning, since its debug lines are
raw bytes on the wire (message bodies, the LOGIN command).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
# A shorter secret is never masked in text: its letters are everywhere (see the docstring).
MIN_MASKED = 8
_SECRET_KEYS = ("password", "passwd", "pass", "secret", "token")
# The parent of the loggers that speak only at -vv: protocol conversations (already without
# secrets or bodies), e.g. "mailtide.wire.imap".
WIRE_LOGGER = "mailtide.wire"
# Libraries whose debug output is raw bytes on the wire, bodies and LOGIN included.
_RAW_LIBRARIES = ("aioimaplib",)
# Libraries whose debug output is shown only at -vv.
_CHATTY_LIBRARIES = ("asyncio", "watchdog")  # each inotify event at debug

_secrets: set[str] = set()
_handler: logging.Handler | None = None


def register_secret(secret: str) -> None:
    """Mask ``secret`` in every later log line and ``redact`` call, as a last resort.

    Only a secret of at least ``MIN_MASKED`` characters is masked, and only where it
    stands whole: where it starts (ends) with a letter, digit or underscore, the
    character before (after) it must not be one, so "hunter2pw" is masked in
    ``pw=hunter2pw`` and ``"hunter2pw"`` but not inside ``xhunter2pwy``; a secret
    that starts or ends with punctuation (``%pa$$word!``) needs no boundary there,
    the punctuation is one.  Code that handles a secret must keep it out of log
    events itself: this is only the net under it.
    """
    if secret:
        _secrets.add(secret)


def log_context(
    account: str | None = None, mailbox: str | None = None
) -> AbstractContextManager[None]:
    """Bind ``account`` / ``mailbox`` to every event logged inside the ``with`` block."""
    bound = {k: v for k, v in (("account", account), ("mailbox", mailbox)) if v is not None}
    return structlog.contextvars.bound_contextvars(**bound)


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lower = key.lower()
    return any(lower == word or lower.endswith("_" + word) for word in _SECRET_KEYS)


@dataclass(frozen=True, slots=True)
class _Masks:
    """The registered secrets as patterns that match whole occurrences, longest first."""

    text: re.Pattern[str] | None
    data: re.Pattern[bytes] | None

    @staticmethod
    def of(secrets: frozenset[str]) -> _Masks:
        long_enough = (s for s in secrets if len(s) >= MIN_MASKED)
        masked = sorted({form for s in long_enough for form in _forms(s)}, key=len, reverse=True)
        if not masked:
            return _Masks(None, None)
        text = "|".join(_whole(s) for s in masked)
        data = b"|".join(_whole_bytes(s) for s in masked)
        return _Masks(re.compile(text), re.compile(data))

    def scrub_text(self, text: str) -> str:
        return text if self.text is None else self.text.sub(REDACTED, text)

    def scrub_data(self, data: bytes) -> bytes:
        return data if self.data is None else self.data.sub(REDACTED.encode(), data)


def _forms(secret: str) -> set[str]:
    """How ``secret`` may be written: as is, escaped in a Python repr (an exception's repr),
    escaped in a JSON or IMAP quoted string."""
    return {secret, repr(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}


_WORD = re.compile(r"\w")
_ASCII_WORD = re.compile(r"\w", re.ASCII)  # what \w means in a bytes pattern


def _whole(secret: str) -> str:
    """A pattern for ``secret`` where it does not stand inside a longer word."""
    before = r"(?<!\w)" if _WORD.match(secret[0]) else ""
    after = r"(?!\w)" if _WORD.match(secret[-1]) else ""
    return before + re.escape(secret) + after


def _whole_bytes(secret: str) -> bytes:
    """``_whole`` for the secret's UTF-8 bytes."""
    before = rb"(?<!\w)" if _ASCII_WORD.match(secret[0]) else b""
    after = rb"(?!\w)" if _ASCII_WORD.match(secret[-1]) else b""
    return before + re.escape(secret.encode()) + after


_masks_cache: dict[frozenset[str], _Masks] = {}


def _masks() -> _Masks:
    key = frozenset(_secrets)
    masks = _masks_cache.get(key)
    if masks is None:
        _masks_cache.clear()  # only the current set is ever asked for again
        masks = _masks_cache[key] = _Masks.of(key)
    return masks


def _scrub(value: Any, masks: _Masks) -> Any:
    """``value`` with every whole secret in it masked; containers are walked, other objects
    are replaced by their masked repr only when that repr shows a secret."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return masks.scrub_text(value)
    if isinstance(value, bytes | bytearray):
        return masks.scrub_data(bytes(value))
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _scrub(v, masks) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_scrub(v, masks) for v in value)
    shown = repr(value)
    scrubbed = masks.scrub_text(shown)
    return value if scrubbed == shown else scrubbed


def redact(text: str) -> str:
    """``text`` with every whole registered secret masked (for output outside logs)."""
    return _masks().scrub_text(text)


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: see the module docstring, step 3."""
    masks = _masks()
    for key, value in event_dict.items():
        event_dict[key] = REDACTED if _is_secret_key(key) else _scrub(value, masks)
    return event_dict


def _renderer(json: bool, tty: bool) -> Processor:
    if json:
        return structlog.processors.JSONRenderer()
    if tty:
        return structlog.dev.ConsoleRenderer()
    return structlog.processors.LogfmtRenderer(
        key_order=["timestamp", "level", "event", "account", "mailbox"],
        drop_missing=True,
        bool_as_flag=False,
    )


# syslog priorities by level, as journald reads them from a "<N>" at the start of a line
_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}


def under_journald(stream: TextIO) -> bool:
    """True when ``stream`` is connected to the journal: systemd sets ``JOURNAL_STREAM`` to the
    device and inode of the stream it gave the service (``man systemd.exec``)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def _with_priority(render: Processor) -> Processor:
    """``render``, with the line's syslog priority in front of it for journald."""

    def prefixed(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
        level = str(event_dict.get("level", "info"))
        line = render(logger, method, event_dict)
        text = line.decode() if isinstance(line, bytes) else str(line)
        return f"<{_PRIORITY.get(level, 6)}>{text}"

    return prefixed


def _level(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    return logging.INFO if verbosity == 0 else logging.DEBUG


def setup_logging(
    verbosity: int,
    json: bool = False,
    *,
    stream: TextIO | None = None,
    tty: bool | None = None,
    journal: bool | None = None,
) -> None:
    """Configure structlog and stdlib logging; call again to reconfigure.

    ``verbosity``: -1 (``--quiet``) warnings and errors, 0 info, 1 (``-v``)
    debug, 2 (``-vv``) also the IMAP conversation and asyncio's debug (never
    aioimaplib's, which is raw bytes).  ``stream`` defaults to stderr; ``tty``
    (default: whether ``stream`` is a terminal) picks the console renderer over
    logfmt lines.  ``journal`` (default: whether ``stream`` is connected to the journal,
    as under a systemd service) puts each line's syslog priority in front of it (``<3>`` for
    an error, ...) and leaves the timestamp to journald.
    """
    global _handler
    out = stream if stream is not None else sys.stderr
    if tty is None:
        tty = out.isatty()
    if journal is None:
        journal = under_journald(out)
    level = _level(verbosity)
    context: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
    ]
    if not journal:
        context.append(structlog.processors.TimeStamper(fmt="%H:%M:%S" if tty else "iso"))
    render = _renderer(json, tty and not journal)
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=context,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                _with_priority(render) if journal else render,
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    quiet = max(level, logging.WARNING)
    for name in (*_CHATTY_LIBRARIES, WIRE_LOGGER):
        logging.getLogger(name).setLevel(level if verbosity >= 2 else quiet)
    for name in _RAW_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    structlog.configure(
        processors=[*context, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
