"""Capture what mailtide's log pipeline writes, and put logging back as it was afterwards."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import structlog

from mailtide.ui import log as ui_log
from mailtide.ui.log import setup_logging

# The loggers whose levels setup_logging sets, from its own lists: a level left behind (watchdog
# at debug after a -vv test) would slow and flood every later test in the process.
_LEVELLED = (*ui_log._CHATTY_LIBRARIES, *ui_log._RAW_LIBRARIES, ui_log.WIRE_LOGGER)


@contextlib.contextmanager
def pristine_logging() -> Iterator[None]:
    """Inside: no secret registered (other tests' passwords must not mask these lines).
    Afterwards: the secrets, the handlers and the levels as they were before."""
    secrets = set(ui_log._secrets)
    levels = {name: logging.getLogger(name).level for name in (*_LEVELLED, "")}
    ui_log._secrets.clear()
    try:
        yield
    finally:
        ui_log._secrets.clear()
        ui_log._secrets.update(secrets)
        structlog.reset_defaults()
        if ui_log._handler is not None:
            logging.getLogger().removeHandler(ui_log._handler)
            ui_log._handler = None
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def capture(verbosity: int = 0, *, json_lines: bool = False, tty: bool = False) -> io.StringIO:
    """Log at ``verbosity`` into the returned buffer (inside ``pristine_logging``)."""
    out = io.StringIO()
    setup_logging(verbosity, json_lines, stream=out, tty=tty)
    return out


def one_error_line(output: str) -> str:
    """The error of a failed ``mailtide`` run at the default verbosity: its one
    ``mailtide:`` line, and no other line but the log's ``account.failed`` (no lost
    connection, no retry, no traceback before it)."""
    lines = [line for line in output.splitlines() if line.strip()]
    (error,) = [line for line in lines if line.startswith("mailtide: ")]
    others = [line for line in lines if line != error and "event=account.failed" not in line]
    assert others == [], output
    return error
