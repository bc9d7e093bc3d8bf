"""Every durable step of a sync passes through ``Steps.done``.

A step is a committed state transaction or a finished side effect on a store.
Counting them in one place lets the crash tests stop a sync dead right after
step N (``MAILTIDE_CRASH_AFTER_STEP=N``, read nowhere else) and check that
the next run converges.
"""

from __future__ import annotations

import os
import signal

import structlog

log = structlog.get_logger(__name__)

CRASH_ENV = "MAILTIDE_CRASH_AFTER_STEP"


class Steps:
    def __init__(self) -> None:
        self.count = 0
        raw = os.environ.get(CRASH_ENV, "")
        self._crash_at = int(raw) if raw.isdigit() else None

    def done(self, what: str) -> None:
        self.count += 1
        log.debug("step.done", step=self.count, what=what)
        if self._crash_at is not None and self.count >= self._crash_at:
            log.warning("crash.injected", step=self.count, what=what)
            os.kill(os.getpid(), signal.SIGKILL)
