"""The triggers of an account task, coalesced into sync requests.

Anything that wants an account synced (the server's push, a change in the Maildir, the
autorefresh timer, SIGUSR1, a control request, a resume from suspend) puts a ``Trigger`` into
the account's ``TriggerQueue``; the account task loops on ``await queue.next_batch()`` and
syncs what the returned ``SyncRequest`` names.

Contract of ``next_batch``:

- Changes in the Maildir are debounced: the batch is due once they stop arriving for
  ``debounce`` seconds (a trailing debounce: a mail client's burst of renames is one sync),
  but never later than ``max_delay`` seconds after the first trigger of the batch arrived,
  so a steady stream of changes still syncs.
- Every other cause is due at once, and takes the Maildir changes pending with it: the
  server batches its own news before it tells us (Dovecot holds a change about half a
  second), a signal or a control request has a user waiting, a timer or a resume has waited
  long enough.
- Triggers that arrived while nobody waited (during the previous sync) count from their
  arrival: a batch already due is returned at once.
- Merging (``merge``): the mailboxes are the union, and "all mailboxes" absorbs any list; a
  full sync wins over a quick one; every trigger's waiter is kept, so each control request
  gets the result of the sync that served it (``SyncRequest.settle`` / ``fail``).
- Cancelling ``next_batch`` loses nothing: triggers are taken only when returned.
- One consumer per queue. ``put`` never blocks and must run on the loop's thread; from
  another thread (watchdog's observer) use ``loop.call_soon_threadsafe(queue.put, trigger)``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DEBOUNCE = 0.3
DEFAULT_MAX_DELAY = 5.0


class Cause(enum.Enum):
    """What asked for a sync."""

    SERVER_PUSH = "server-push"  # IDLE or NOTIFY reported a change
    MAILDIR_PUSH = "maildir-push"  # inotify saw a change in the Maildir
    TIMER = "timer"  # the autorefresh interval ran out
    SIGNAL = "signal"  # SIGUSR1: sync every account now
    CONTROL = "control"  # a request on the control socket, which may wait for the result
    RESUME = "resume"  # the machine woke from a suspend: connections are suspect


# The causes that come in bursts a sync should wait out; the others are due at once.
DEBOUNCED = frozenset({Cause.MAILDIR_PUSH})


# The waiters' result is the engine's report, which this leaf must not import.
Waiter = asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class Trigger:
    """One reason to sync: ``mailboxes`` are canonical names, None means every mailbox."""

    cause: Cause
    mailboxes: frozenset[str] | None = None
    full: bool = False
    waiter: Waiter | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.mailboxes is not None and not self.mailboxes:
            raise ValueError("a trigger names at least one mailbox, or None for all of them")


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """One sync to run: the merge of a batch of triggers."""

    causes: frozenset[Cause]
    mailboxes: frozenset[str] | None  # None: every mailbox of the account
    full: bool
    waiters: tuple[Waiter, ...] = field(default=(), compare=False)

    def settle(self, result: object) -> None:
        """Hand ``result`` to every waiter still waiting (a cancelled one is skipped)."""
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(result)

    def fail(self, error: BaseException) -> None:
        """Hand ``error`` to every waiter still waiting."""
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(error)


def merge(triggers: Sequence[Trigger]) -> SyncRequest:
    """The one sync that serves every trigger of ``triggers`` (which must not be empty)."""
    if not triggers:
        raise ValueError("nothing to merge")
    mailboxes: frozenset[str] | None = frozenset()
    for trigger in triggers:
        if mailboxes is None or trigger.mailboxes is None:
            mailboxes = None
        else:
            mailboxes |= trigger.mailboxes
    return SyncRequest(
        causes=frozenset(t.cause for t in triggers),
        mailboxes=mailboxes,
        full=any(t.full for t in triggers),
        waiters=tuple(t.waiter for t in triggers if t.waiter is not None),
    )


class TriggerQueue:
    """Collects triggers and hands them out as debounced, merged sync requests."""

    def __init__(
        self, debounce: float = DEFAULT_DEBOUNCE, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        if debounce < 0 or max_delay < debounce:
            raise ValueError("need 0 <= debounce <= max_delay")
        self._debounce = debounce
        self._max_delay = max_delay
        self._pending: list[Trigger] = []
        self._first_at = 0.0
        self._last_at = 0.0
        self._urgent = False  # a trigger that is due at once is pending
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        """The number of triggers waiting to be taken."""
        return len(self._pending)

    def put(self, trigger: Trigger) -> None:
        # time.monotonic is the clock of asyncio's own timers.
        now = time.monotonic()
        if not self._pending:
            self._first_at = now
            self._urgent = False
        self._last_at = now
        self._urgent = self._urgent or trigger.cause not in DEBOUNCED
        self._pending.append(trigger)
        self._arrived.set()

    async def next_batch(self) -> SyncRequest:
        """The next sync request, when its batch is due (see the module's contract)."""
        while True:
            wait: float | None = None
            if self._pending:
                wait = self._due() - time.monotonic()
                if wait <= 0:
                    return self._take()
            self._arrived.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._arrived.wait()
            except TimeoutError:
                pass

    def discard(self, error: BaseException) -> None:
        """Drop every pending trigger, failing its waiter with ``error`` (on shutdown)."""
        pending, self._pending = self._pending, []
        if pending:
            merge(pending).fail(error)

    def _due(self) -> float:
        if self._urgent:
            return self._first_at
        return min(self._last_at + self._debounce, self._first_at + self._max_delay)

    def _take(self) -> SyncRequest:
        pending, self._pending = self._pending, []
        return merge(pending)
