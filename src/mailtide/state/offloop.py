"""The state database as the event loop uses it: every call runs on one worker thread.

A commit with ``synchronous=FULL`` waits for an fsync (milliseconds on a good disk, seconds on
a busy or failing one).  Run on the event loop, that wait would stall every other account's
IDLE, timers and signals in a daemon; here it stalls only the coroutine that asked.  One thread
per database keeps SQLite's calls in order (a transaction is never interleaved with another
call), and the caller awaits each call, so the order of durable steps is unchanged.

Group commit: the calls that queue up while the thread is busy (the mailboxes of an account
sync at once, each waiting for its own commit) run together in one transaction with one
commit (``StateDB.run_group``), each in a savepoint of its own.  A call returns only once
its group is durable, so each caller's durable steps are as before; only the fsync is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from mailtide.core.model import Flags, Identity, PendingFlags, Record, Side
from mailtide.state.db import (
    Cursor,
    FolderPair,
    GmailCopy,
    MailboxState,
    Outcome,
    StateDB,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    done: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _alone(call: _Call) -> Outcome:
    """A call run by itself, as it always was (its own transaction, if it writes)."""
    try:
        return Outcome(True, call.fn(*call.args))
    except BaseException as exc:  # handed to its caller
        return Outcome(False, exc)


def _settle(done: asyncio.Future[Any], outcome: Outcome) -> None:
    if done.cancelled():  # the caller stopped waiting: the call ran all the same
        return
    if outcome.ok:
        done.set_result(outcome.value)
    else:
        done.set_exception(outcome.value)


class OffLoopState:
    """``StateDB``'s operations as coroutines, each run on this state's own worker thread."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailtide-state")
        self._lock = threading.Lock()
        self._queue: list[_Call] = []  # calls not yet taken by the worker
        self._draining = False  # the worker has a drain to run, or is running one

    @property
    def moved_aside(self) -> str | None:
        return self.db.moved_aside

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append(_Call(fn, args, done, loop))
            start, self._draining = not self._draining, True
        if start:
            self._worker.submit(self._drain)
        return await done

    def _drain(self) -> None:
        """On the worker: run what is queued, a group at a time, until nothing is."""
        while True:
            with self._lock:
                calls, self._queue = self._queue, []
                if not calls:
                    self._draining = False
                    return
            try:
                if len(calls) == 1 or any(c.fn == self.db.close for c in calls):
                    outcomes = [_alone(c) for c in calls]  # nothing is grouped with a close
                else:
                    outcomes = self.db.run_group([(c.fn, c.args) for c in calls])
            except BaseException as exc:  # each caller hears of it
                outcomes = [Outcome(False, exc) for _ in calls]
            for call, outcome in zip(calls, outcomes, strict=True):
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    call.loop.call_soon_threadsafe(_settle, call.done, outcome)

    async def close(self) -> None:
        """Close the database (and release the account's lock), then the worker thread."""
        try:
            await self._run(self.db.close)
        finally:
            self._worker.shutdown(wait=False)

    async def known_folders(self) -> set[str]:
        return await self._run(self.db.known_folders)

    async def store_memo(self, side: Side) -> str | None:
        return await self._run(self.db.store_memo, side)

    async def set_store_memo(self, side: Side, memo: str) -> None:
        await self._run(self.db.set_store_memo, side, memo)

    async def near_stamps(self) -> dict[str, str | None]:
        return await self._run(self.db.near_stamps)

    async def modseqs(self, side: Side) -> dict[str, tuple[str | None, int | None]]:
        return await self._run(self.db.modseqs, side)

    async def folder_pairs(self) -> list[FolderPair]:
        return await self._run(self.db.folder_pairs)

    async def put_folders(self, pairs: Iterable[FolderPair]) -> None:
        await self._run(self.db.put_folders, list(pairs))

    async def rename_folder(self, old: str, pair: FolderPair) -> None:
        await self._run(self.db.rename_folder, old, pair)

    async def forget_folder(self, name: str) -> None:
        await self._run(self.db.forget_folder, name)

    async def mailbox(self, name: str, create: bool = True) -> MailboxState:
        return await self._run(self.db.mailbox, name, create)

    async def set_cursors(self, mailbox: MailboxState, cursors: tuple[Cursor, Cursor]) -> None:
        await self._run(self.db.set_cursors, mailbox, cursors)

    async def records(self, mailbox: MailboxState) -> list[Record]:
        return await self._run(self.db.records, mailbox)

    async def touched_records(
        self, mailbox: MailboxState, ids: tuple[Iterable[str], Iterable[str]]
    ) -> list[Record]:
        return await self._run(self.db.touched_records, mailbox, (list(ids[0]), list(ids[1])))

    async def recorded_flags(self, mailbox: MailboxState, side: Side) -> dict[str, str | None]:
        return await self._run(self.db.recorded_flags, mailbox, side)

    async def recorded_count(self, mailbox: MailboxState, side: Side) -> int:
        return await self._run(self.db.recorded_count, mailbox, side)

    async def recorded_flag_names(self, mailbox: MailboxState) -> Flags:
        return await self._run(self.db.recorded_flag_names, mailbox)

    async def put(self, mailbox: MailboxState, records: Iterable[Record]) -> None:
        await self._run(self.db.put, mailbox, list(records))

    async def set_pending(
        self,
        mailbox: MailboxState,
        updates: Iterable[tuple[Record, PendingFlags]],
        cursors: tuple[Cursor, Cursor] | None = None,
    ) -> None:
        await self._run(self.db.set_pending, mailbox, list(updates), cursors)

    async def drop(self, mailbox: MailboxState, records: Iterable[Record]) -> None:
        await self._run(self.db.drop, mailbox, list(records))

    async def replace(
        self, mailbox: MailboxState, old: Iterable[Record], new: Iterable[Record]
    ) -> None:
        await self._run(self.db.replace, mailbox, list(old), list(new))

    async def rewrite(
        self,
        changes: Iterable[tuple[MailboxState, list[Record], list[Record]]],
        cursors: tuple[MailboxState, tuple[Cursor, Cursor]] | None = None,
    ) -> None:
        """``StateDB.rewrite``: records of several mailboxes changed (and a mailbox's cursors
        set) in one transaction."""
        await self._run(self.db.rewrite, list(changes), cursors)

    async def replace_all(self, mailbox: MailboxState, records: Iterable[Record]) -> None:
        """Drop every record of ``mailbox`` and put ``records``, in one transaction."""

        def both(kept: list[Record]) -> None:
            with self.db.transaction():
                self.db.drop_all(mailbox)
                self.db.put(mailbox, kept)

        await self._run(both, list(records))

    async def put_gmail_ids(
        self, mailbox: MailboxState, validity: str, ids: dict[str, int]
    ) -> None:
        await self._run(self.db.put_gmail_ids, mailbox, validity, dict(ids))

    async def gmail_ids(self, mailbox: MailboxState, far_ids: Iterable[str]) -> dict[str, int]:
        return await self._run(self.db.gmail_ids, mailbox, list(far_ids))

    async def local_copies(
        self, msgids: Iterable[int], besides: MailboxState
    ) -> dict[int, list[tuple[str, str]]]:
        return await self._run(self.db.local_copies, list(msgids), besides)

    async def gmail_message_like(
        self, identity: Identity, besides: MailboxState
    ) -> GmailCopy | None:
        return await self._run(self.db.gmail_message_like, identity, besides)

    async def gmail_all_mail(self) -> Cursor | None:
        return await self._run(self.db.gmail_all_mail)

    async def set_gmail_all_mail(self, cursor: Cursor | None) -> None:
        await self._run(self.db.set_gmail_all_mail, cursor)

    async def gmail_mailboxes(self, msgids: Iterable[int]) -> set[str]:
        return await self._run(self.db.gmail_mailboxes, list(msgids))

    async def gmail_held(self, mailbox: MailboxState, msgids: Iterable[int]) -> set[int]:
        return await self._run(self.db.gmail_held, mailbox, list(msgids))

    async def forget_gmail_ids(self, mailbox: MailboxState) -> int:
        return await self._run(self.db.forget_gmail_ids, mailbox)

    async def without_gmail_ids(self, mailbox: MailboxState) -> list[str]:
        return await self._run(self.db.without_gmail_ids, mailbox)
