"""IMAP push tests: settings for a test account, and a recorder of what a push source reports."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Any

from dovecot import ImapAccount
from mailtide.stores.imap.client import ImapSettings
from stores.imap.imap_store_helpers import login

Changed = frozenset[str] | None


def settings_of(account: ImapAccount, **changes: Any) -> ImapSettings:
    """Plain IMAP on 127.0.0.1 to ``account`` (a short timeout: a test must not wait long)."""
    base = ImapSettings(account.host, account.port, login(account.user, account.password), "none")
    return replace(base, **{"timeout": 10.0, **changes})


class Reports:
    """What a push source called ``changed`` with, and when (monotonic seconds)."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, Changed]] = []
        self._arrived = asyncio.Event()

    def __call__(self, mailboxes: Changed) -> None:
        self.seen.append((time.monotonic(), mailboxes))
        self._arrived.set()

    def clear(self) -> None:
        self.seen.clear()
        self._arrived.clear()

    async def next(self, within: float, matching: Callable[[Changed], bool]) -> float:
        """The time of the first report ``matching`` (kept or yet to come) within ``within``
        seconds; AssertionError naming what came instead."""
        deadline = time.monotonic() + within
        while True:
            for when, mailboxes in self.seen:
                if matching(mailboxes):
                    return when
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching report within {within} s; got {self.seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)


def names(*folders: str) -> Callable[[Changed], bool]:
    """Matches a report that names each of ``folders``."""
    return lambda mailboxes: mailboxes is not None and set(folders) <= mailboxes


def any_mailbox(mailboxes: Changed) -> bool:
    """Matches a report of None (any mailbox may have changed)."""
    return mailboxes is None


# Seconds a cancelled source may take to end: its LOGOUT waits 0.5 s, an IDLE's DONE 2 s.
ENDS_WITHIN = 10.0


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, object]) -> AsyncIterator[asyncio.Task[object]]:
    """``work`` as a task for the block; cancelled and awaited after it (its error re-raised
    unless it was the cancellation).  A task still running ``ENDS_WITHIN`` seconds after its
    cancellation fails the test with its stack (as it would hang a daemon's shutdown)."""
    task = asyncio.ensure_future(work)
    try:
        yield task
    finally:
        task.cancel()
        await ended(task)
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ended(task: asyncio.Task[Any], within: float = ENDS_WITHIN) -> float:
    """Seconds ``task`` (cancelled) took to end; AssertionError with where it waits if it
    has not ended within ``within`` seconds."""
    start = time.monotonic()
    await asyncio.wait({task}, timeout=within)
    if not task.done():
        where = io.StringIO()
        task.print_stack(file=where)
        raise AssertionError(
            f"still running {within} s after it was cancelled:\n{where.getvalue()}"
        )
    return time.monotonic() - start


async def in_thread(fn: Callable[..., object], *args: object) -> float:
    """Run a blocking helper (``imap_helpers``) off the loop; the monotonic time it returned."""
    await asyncio.to_thread(fn, *args)
    return time.monotonic()
