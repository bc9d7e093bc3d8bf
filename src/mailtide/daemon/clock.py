"""Noticing that the machine slept (suspend and resume).

asyncio's timers run on CLOCK_MONOTONIC, which stops while Linux is suspended: after a night
asleep a 15-minute refresh or a 29-minute re-IDLE is still pending, and every connection is
probably dead. CLOCK_BOOTTIME goes on counting during suspend, so ``boottime - monotonic`` is
the time slept since boot; when it grows by more than a threshold between two looks, the
machine slept for that long.

Contract:

- ``ResumeDetector.check()`` returns the seconds slept since the previous check (the first
  check only takes the baseline), or None when the growth is within the threshold.
- ``watch_resumes(on_resume)`` checks every ``interval`` seconds, forever, and calls
  ``on_resume(slept)`` after each sleep; it ends only by cancellation, or with the exception
  of a callback that raised. The callback runs on the loop: it must not block (put a trigger,
  close connections, create a task). A resume is seen within ``interval`` of waking up.
- Without CLOCK_BOOTTIME (not Linux) the wall clock stands in for it; setting the clock by
  hand then reads as a sleep too, which costs no more than a reconnect.

For tests, two ways to fake a sleep: unit tests pass their own ``clock`` (seconds slept so
far); an end-to-end test of the daemon sets ``MAILTIDE_TEST_SLEPT_FILE`` to a file and writes
a number of seconds into it, which ``slept_since_boot`` adds to the real value (a missing,
empty or unreadable file adds nothing), so writing ``3600`` simulates an hour's suspend.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

SLEPT_FILE_ENV = "MAILTIDE_TEST_SLEPT_FILE"
DEFAULT_INTERVAL = 5.0
DEFAULT_THRESHOLD = 5.0

_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def slept_since_boot() -> float:
    """Seconds this machine has spent suspended since boot (plus the test offset, if set)."""
    if _BOOTTIME is None:
        counted = time.time() - time.monotonic()
    else:
        counted = time.clock_gettime(_BOOTTIME) - time.clock_gettime(time.CLOCK_MONOTONIC)
    return counted + _test_offset()


def _test_offset() -> float:
    path = os.environ.get(SLEPT_FILE_ENV)
    if not path:
        return 0.0
    try:
        with open(path, encoding="ascii") as file:
            return float(file.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


class ResumeDetector:
    """Compares the time slept at each check with the previous check."""

    def __init__(
        self,
        clock: Callable[[], float] = slept_since_boot,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._last: float | None = None

    def check(self) -> float | None:
        """Seconds slept since the last check if above the threshold, else None."""
        now = self._clock()
        last, self._last = self._last, now
        if last is None or now - last <= self._threshold:
            return None
        return now - last


async def watch_resumes(
    on_resume: Callable[[float], object],
    interval: float = DEFAULT_INTERVAL,
    detector: ResumeDetector | None = None,
) -> None:
    """Call ``on_resume(seconds_slept)`` after every suspend; runs until cancelled."""
    detector = detector or ResumeDetector()
    detector.check()  # the baseline: a sleep before the watch began is not ours to report
    while True:
        await asyncio.sleep(interval)
        slept = detector.check()
        if slept is not None:
            on_resume(slept)
