"""What the daemon is handed for each account: the daemon decides *when*, never *how*.

The daemon does not read the configuration (``mailtide.wiring`` does) and does not build stores;
it gets, per account, an ``AccountRunner``: a name, its ``Schedule`` (plain values), a way to
run one sync of some or all mailboxes, and the sources of push events.  Anything that has these
attributes serves (the configuration's own value type does, structurally).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mailtide.engine.account import AccountReport


class Schedule(Protocol):
    """When an account syncs.  Durations are seconds."""

    @property
    def autorefresh(self) -> float: ...  # 0: push and signals only

    @property
    def quick(self) -> int: ...  # N quick syncs between full ones; -1 always quick; 0 never

    @property
    def debounce(self) -> float: ...

    @property
    def max_delay(self) -> float: ...

    @property
    def watch_maildir(self) -> bool: ...

    @property
    def rescan(self) -> float: ...

    @property
    def hold_connection_open(self) -> bool: ...

    @property
    def keepalive(self) -> float: ...


# A push source calls back with the canonical names of the mailboxes that changed (None:
# possibly any) and returns a coroutine that runs until cancelled.
PushCallback = Callable[[frozenset[str] | None], None]


class PushSource(Protocol):
    """Something that reports changes as they happen (a Maildir watcher, an IDLE connection)."""

    name: str  # for the status: "inotify", "IDLE on INBOX", ...

    async def run(self, changed: PushCallback) -> None:
        """Report changes through ``changed`` until cancelled; raise on a failure the account
        task should see (it restarts the source after a backoff)."""
        ...


class AccountRunner(Protocol):
    """One account as the daemon drives it."""

    @property
    def name(self) -> str: ...

    @property
    def schedule(self) -> Schedule: ...

    @property
    def key(self) -> object:
        """Equal for two runners of the same account with the same settings: a reload that
        leaves it equal leaves the account's task undisturbed."""
        ...

    async def sync(
        self,
        mailboxes: frozenset[str] | None,
        full: bool,
        stop: asyncio.Event,
        allow_mass_delete: bool = False,
        restore_deleted: bool = False,
        progress: Callable[[], None] | None = None,
        pushed: Mapping[str, Mapping[str, int]] | None = None,
    ) -> AccountReport:
        """One run of the engine over ``mailboxes`` (None: all), ending early (after a durable
        step) when ``stop`` is set; ``progress`` is told of every durable step.  ``pushed``:
        the run is for the server's push news of ``mailboxes`` only, and these are their
        counters as the push told them (canonical name -> STATUS items)."""
        ...

    async def start(self) -> None:
        """Take hold of the account (its state's lock) before the first sync; raises an
        exception whose message says who holds it."""
        ...

    def push_sources(self) -> Sequence[PushSource]:
        """The account's push sources (may be empty: then only timers and signals)."""
        ...

    async def keepalive(self) -> None:
        """Prove the connections held between syncs alive (dropping a dead one)."""
        ...

    async def holds(self, told: Mapping[str, Mapping[str, int]]) -> bool:
        """Whether the state already holds each mailbox as the server last told its counters
        (canonical name -> STATUS items): the news was the echo of the account's own sync."""
        ...

    async def drop_connections(self) -> None:
        """Close the connections held between syncs (after a suspend they are suspect)."""
        ...

    async def close(self) -> None:
        """Give back what the runner holds between syncs (connections, the state's lock)."""
        ...
