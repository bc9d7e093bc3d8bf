"""How long to wait before trying again after a failure (a login, a connection, an IDLE).

Contract:

- ``failed()`` counts a failure and returns the delay before the next attempt (for a status
  line such as "offline, retry in 40 s"); ``await wait()`` then waits it out.
- Delays use full jitter above a floor: the n-th failure in a row waits
  ``uniform(first, min(cap, first * 2 ** (n - 1)))``, from ``first`` (default 1 s) to ``cap``
  (default 5 min). Full jitter spreads daemons that failed together (a server restart, a
  shared resume) the most and reaches the cap in ten failures (decorrelated jitter is a
  random walk that may take sixty); the floor keeps a refused login from being hammered.
- ``retry_now()`` ends the current wait at once, or the next one if the failure is counted but
  not yet waited for (SIGUSR1, a resume, the network coming back). ``wait()`` returns True
  when it was cut short. Without a failure outstanding, ``retry_now()`` does nothing: a
  signal while all is well must not skip the wait after some later failure. The sequence of
  delays goes on: an early retry that fails waits as long as it would have.
- ``succeeded()`` starts the sequence over.
- ``wait()`` without a failure outstanding returns False at once.
"""

from __future__ import annotations

import asyncio
import random

DEFAULT_FIRST = 1.0
DEFAULT_CAP = 300.0


class Backoff:
    """The retry schedule of one thing that can fail (an account's connection, say)."""

    def __init__(
        self,
        first: float = DEFAULT_FIRST,
        cap: float = DEFAULT_CAP,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError("need 0 < first <= cap")
        self._first = first
        self._cap = cap
        self._rng = rng or random.Random()
        self._ceiling = first
        self._failures = 0
        self._due: float | None = None  # the delay of a failure not yet waited out
        self._wake = asyncio.Event()

    @property
    def failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next attempt."""
        delay = self._rng.uniform(self._first, self._ceiling)
        self._ceiling = min(self._cap, self._ceiling * 2)
        self._failures += 1
        self._due = delay
        return delay

    def succeeded(self) -> None:
        self._ceiling = self._first
        self._failures = 0
        self._due = None
        self._wake.clear()

    def retry_now(self) -> None:
        if self._due is not None:
            self._wake.set()

    async def wait(self) -> bool:
        """Wait out the last failure's delay; True if ``retry_now`` cut it short."""
        if self._due is None:
            return False
        try:
            async with asyncio.timeout(self._due):
                await self._wake.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._due = None
            self._wake.clear()
