"""An await with a deadline that a cancellation always gets through.

Python 3.11's ``asyncio.wait_for`` loses a cancellation that comes in the same loop step as
the awaited result: it returns the result, and the task goes on as if nobody had cancelled
it (python/cpython#86296, fixed in 3.12 by building ``wait_for`` on ``asyncio.timeout``).  A
push source cancelled just as an answer arrived then ran for ever, and whoever waited for it
to end (the daemon's shutdown, a restart after a suspend) waited for ever too.  So every
timed await in mailtide goes through ``within`` (ruff bans ``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``awaitable``'s result, or ``TimeoutError`` once ``seconds`` have passed (None: no
    limit), ``awaitable`` then cancelled (wrap it in ``asyncio.shield`` to keep it).  A
    cancellation of the caller always propagates, also when the result is in already.

    ``awaitable`` runs in the caller's task (not a task of its own, as with ``wait_for``)."""
    async with asyncio.timeout(seconds):
        return await awaitable
