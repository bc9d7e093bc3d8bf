"""Logging: one structlog pipeline for our events and the libraries' stdlib records.

The pipeline, in order:

1. context: the ``account`` / ``mailbox`` bound with ``log_context`` (contextvars),
   the level and a timestamp;
2. exceptions formatted to text, so the next step sees tracebacks too;
3. secret redaction: values of keys named like a password, and every
   occurrence of a registered secret anywhere in any value, become ``***``;
4. a renderer: colourful console lines on a terminal, ``key=value`` (logfmt)
   lines otherwise, or JSON on request.

Everything goes to stderr; stdout is left to command output.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
_SECRET_KEYS = ("password", "passwd", "pass", "secret", "token")
# Libraries whose debug output may carry credentials on the wire (aioimaplib logs every
# command it sends, LOGIN included): quiet unless asked for with -vv.
_CHATTY_LIBRARIES = ("aioimaplib", "asyncio")

_secrets: set[str] = set()
_handler: logging.Handler | None = None


def register_secret(secret: str) -> None:
    """Never let ``secret`` appear in a log line from now on (empty strings are ignored)."""
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


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret in it replaced; containers are walked, other objects
    are replaced by their redacted repr only when that repr shows a secret."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
        for secret in secrets:
            data = data.replace(secret.encode(), REDACTED.encode())
        return data
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_scrub(v, secrets) for v in value)
    shown = repr(value)
    scrubbed = _scrub(shown, secrets)
    return value if scrubbed == shown else scrubbed


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (for output outside logs)."""
    scrubbed: str = _scrub(text, sorted(_secrets, key=len, reverse=True))
    return scrubbed


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: see the module docstring, step 3."""
    secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
    for key, value in event_dict.items():
        event_dict[key] = REDACTED if _is_secret_key(key) else _scrub(value, secrets)
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
) -> None:
    """Configure structlog and stdlib logging; call again to reconfigure.

    ``verbosity``: -1 (``--quiet``) warnings and errors, 0 info, 1 (``-v``)
    debug, 2 (``-vv``) debug from the libraries too.  ``stream`` defaults to
    stderr; ``tty`` (default: whether ``stream`` is a terminal) picks the
    console renderer over logfmt lines.
    """
    global _handler
    out = stream if stream is not None else sys.stderr
    if tty is None:
        tty = out.isatty()
    level = _level(verbosity)
    timestamper = structlog.processors.TimeStamper(fmt="%H:%M:%S" if tty else "iso")
    context: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        timestamper,
    ]
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=context,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                _renderer(json, tty),
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(level if verbosity >= 2 else max(level, logging.WARNING))
    structlog.configure(
        processors=[*context, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
