"""Every durable step of a sync passes through ``Steps.done``.

A step is a committed state transaction or a finished side effect on a store.
Counting them in one place lets the crash tests stop a sync dead right after
step N (``MAILTIDE_CRASH_AFTER_STEP=N``, read nowhere else) and check that
the next run converges.

It is also where a sync stops when asked to (the daemon's SIGTERM): right after
a step, never inside one, so what is written is whole and recorded, and the
next run starts from there exactly as after a crash at that step.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

CRASH_ENV = "MAILTIDE_CRASH_AFTER_STEP"


class StopRequested(Exception):
    """A stop was asked for; raised between durable steps only."""


class Steps:
    """``stop``: when set, the sync ends after the step in flight (``StopRequested``).
    ``progress``: told after every step and at every mailbox (a sign of life for a watchdog)."""

    def __init__(
        self, stop: asyncio.Event | None = None, progress: Callable[[], None] | None = None
    ) -> None:
        self.count = 0
        self.stop = stop
        self.progress = progress
        raw = os.environ.get(CRASH_ENV, "")
        self._crash_at = int(raw) if raw.isdigit() else None

    def done(self, what: str) -> None:
        self.count += 1
        log.debug("step.done", step=self.count, what=what)
        if self._crash_at is not None and self.count >= self._crash_at:
            log.warning("crash.injected", step=self.count, what=what)
            os.kill(os.getpid(), signal.SIGKILL)
        self.check()

    def check(self) -> None:
        """Raise ``StopRequested`` if a stop was asked for (call only between steps)."""
        if self.progress is not None:
            self.progress()
        if self.stop is not None and self.stop.is_set():
            raise StopRequested
