"""Sync one account: the folder tree first, then every mailbox pair.

Folders (which pair with which, renames, deletions, new ones): ``engine/folders.py``.
A mailbox that fails is reported and the others go on.

A lost connection (``ConnectionLost``: reset, refused, a server that stopped
answering or restarted) is retried on a new connection with exponential
backoff: connecting and the folder tree as one unit, then each mailbox pair on
its own.  Retrying is safe because every durable step is already committed
(intents before copies), so a retry is the same as a next run that starts
where this one was cut.  A mailbox that runs out of retries fails and the
account goes on; when the next mailbox cannot reach the server either (it gets
one attempt), the account stops there with one line saying why.  A refused login
(``AuthenticationFailed``) stops the account at once, wherever it happens: trying again
would fail the same way and may lock the account on the server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import SIDES, Side
from mailtide.core.names import canonical
from mailtide.deadline import within
from mailtide.engine.folder_policy import FolderPolicy
from mailtide.engine.folders import FolderTree, NoSuchFolder
from mailtide.engine.gmail_all_mail import AllMailChanges
from mailtide.engine.gmail_labels import LabelLinks
from mailtide.engine.moves import MovePass
from mailtide.engine.pair import Options, PairReport, PairSync, Prepared
from mailtide.engine.restamp import Restamps
from mailtide.engine.steps import Steps, StopRequested
from mailtide.state.db import StateError
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import (
    AuthenticationFailed,
    ConnectionLost,
    Mailbox,
    MailboxError,
    Store,
    StoreError,
    UnsafeFolderName,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retry:
    """How a lost connection is retried: up to ``retries`` more attempts, the first after
    ``delay`` seconds, each later one after twice the wait before, at most ``max_delay``."""

    retries: int = 3
    delay: float = 2.0
    max_delay: float = 60.0  # the configured delay is at most this (config checks it)

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 is the first retry)."""
        return float(min(self.delay * 2 ** max(attempt - 2, 0), self.max_delay))


@dataclass(slots=True)
class AccountReport:
    """What one run over an account did.  Three kinds of trouble, from worst: ``error`` (the
    account stopped; ``usage`` when the request named what does not exist), mailboxes that
    failed (``PairReport.error``), and ``stranded`` mail: the run completed, but some mail stays
    on one side because the other cannot hold it (a folder name it refuses, a message the
    server refuses)."""

    name: str
    mailboxes: list[PairReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    error: str | None = None
    usage: bool = False
    stopped: bool = False  # a stop was asked for: the run ended after a durable step
    offline: bool = False  # the error is that the server could not be reached
    login_failed: bool = False  # the error is that the server refused the credentials
    # Messages moved between folders by the account's move pass, by Side: the side the move
    # was carried on (a dry run: would be).  Not a mailbox's: a move spans two.
    moved: list[int] = field(default_factory=lambda: [0, 0])

    @property
    def failed(self) -> bool:
        return self.error is not None or any(m.error for m in self.mailboxes)

    @property
    def quiet(self) -> bool:
        """Nothing carried and nothing to say: every mailbox pair left as the next run, given
        the same statuses, finds it unchanged from them alone (``PairReport.quiet``), no move,
        no warning, no trouble."""
        return self._clean and all(m.quiet for m in self.mailboxes)

    @property
    def provable(self) -> bool:
        """Every mailbox pair left as the next run, given the same statuses and the stamps
        this run recorded for the sides it wrote, finds it unchanged from them alone
        (``PairReport.provable``: quiet, or carried whole), no move, no warning, no trouble.
        Whether each side written was stamped, and whether the statuses read can be read
        again (a server written to cannot), is the stores' to say (``Store.seen``)."""
        return self._clean and all(m.provable for m in self.mailboxes)

    @property
    def _clean(self) -> bool:
        return (
            bool(self.mailboxes)
            and all(not m.error and not m.refused for m in self.mailboxes)
            and not (self.error or self.stopped or self.warnings or self.stranded)
            and not any(self.moved)
        )

    def failures(self) -> list[str]:
        """One line per failure, naming the account (and the mailbox)."""
        if self.error is not None:
            return [f"account {self.name}: {self.error}"]
        return [f"account {self.name}: {m.error}" for m in self.mailboxes if m.error]

    @property
    def result(self) -> str:
        """One word: "stopped", "failed", "stranded" (mail stays on one side) or "ok"."""
        if self.stopped:
            return "stopped"
        if self.failed:
            return "failed"
        if self.stranded_lines():
            return "stranded"
        return "ok"

    def totals(self) -> dict[str, int]:
        """The mailboxes' counts added up (``PairReport.summary``'s keys), and the messages
        moved between folders (``moved_remote``, ``moved_local``: the side the move was
        carried on)."""
        total = {"moved_remote": self.moved[Side.FAR], "moved_local": self.moved[Side.NEAR]}
        for m in self.mailboxes:
            for key, n in m.summary().items():
                total[key] = total.get(key, 0) + n
        return total

    def stranded_lines(self) -> list[str]:
        """One line per folder or message that stays on one side, naming the account."""
        return [
            f"account {self.name}: {why}"
            for why in [*self.stranded, *(w for m in self.mailboxes for w in m.refused)]
        ]


class AccountSync:
    """One run over one account.  ``stores`` and ``filters`` are indexed by Side."""

    def __init__(
        self,
        name: str,
        stores: tuple[Store, Store],
        filters: tuple[FolderFilter, FolderFilter],
        state: OffLoopState,
        options: Options,
        only: Sequence[str] | None = None,
        retry: Retry = Retry(),
        stop: asyncio.Event | None = None,
        first_sync: bool = False,
        progress: Callable[[], None] | None = None,
        folder_policy: FolderPolicy | None = None,
        restamps: Restamps | None = None,
    ) -> None:
        """``restamps``: a daemon's, carried from run to run (engine/restamp.py)."""
        self.name = name
        self.retry = retry
        self.stores = stores
        self.filters = filters
        self.state = state
        self.options = options
        self.only = {canonical(n) for n in only} if only else None
        self.steps = Steps(stop, progress)
        self.first_sync = first_sync
        self.report = AccountReport(name)
        self.moves: MovePass | None = None  # this run's, once the folder tree is known
        # the sides the pairs wrote to, stamped at the end
        self.restamps = restamps or Restamps()
        self._at_once = 1  # pairs synced at once now (_mailboxes), sharing the bodies' budget
        self.log = log.bind(account=name)
        self.tree = FolderTree(
            stores,
            filters,
            state,
            options,
            self.steps,
            self.strand,
            self.only,
            self.log,
            folder_policy,
            warn=self.warn,
        )

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)
        self.log.warning("account.warning", message=message)

    def strand(self, message: str) -> None:
        """Some mail stays on one side: a warning that also sets the run's exit status."""
        self.report.stranded.append(message)
        self.log.warning("account.stranded", message=message)

    async def run(self) -> AccountReport:
        try:
            self.steps.check()
            await self.restamps.record(self.state, 0)  # a daemon's, from its run before
            known = await self.state.known_folders()  # before this run adds its own
            await self._read_ahead()
            names = await self._retrying(self._start, "account.retry")
            all_mail = self._all_mail()
            if all_mail is not None:
                names = await all_mail.pairs(names, quick=self.options.mode == "quick")
            await self._warm(names)
            moves = self.moves = MovePass(
                names, self.stores, self.state, self.steps, self.options, known, self.tree.name_on
            )
            try:
                self.options = await moves.run()
            finally:  # what it carried counts, whatever ended it
                self.report.moved = list(moves.moved)
                await self.stores[Side.NEAR].read_ahead({})  # what the move pass did not take
            await self._mailboxes(names)
            if all_mail is not None and not self.report.failed:
                await all_mail.done()
            recorded = await self.restamps.record(
                self.state, self.options.stamp_wait, self.steps.stop
            )
            for written, stamp in recorded:  # what each store's ``seen`` gives for the side
                self.stores[written.side].stamped(
                    self.tree.name_on(written.side, written.mailbox), stamp
                )
        except StopRequested:
            self.report.stopped = True
            self.log.info("account.stopped", steps=self.steps.count)
        except (StoreError, StateError) as exc:  # _GaveUp too
            # The state cannot be written (a full disk): every further mailbox would fail alike.
            self.report.error = str(exc)
            self.report.usage = isinstance(exc, NoSuchFolder)
            self.report.offline = isinstance(exc, ConnectionLost | _GaveUp)
            self.report.login_failed = isinstance(exc, AuthenticationFailed)
            self.log.error("account.failed", error=str(exc))
        finally:
            self.restamps.end_run()
        return self.report

    async def _read_ahead(self) -> None:
        """The local folders whose stamp moved since the last sync begin to be listed now,
        while the server is asked for its folders (stores/maildir/read_ahead.py): a quick
        sync of every folder only (another lists none, or only some)."""
        if self.options.mode == "quick" and self.only is None:
            await self.stores[Side.NEAR].read_ahead(await self.state.near_stamps())

    async def _warm(self, names: list[str]) -> None:
        """The stores begin now what the mailboxes synced at once will each need (IMAP: a
        connection of their own): as many as will run at once, counting only those known to
        have changed on either side (a mailbox both sides show unchanged takes nothing, and
        one that cannot tell takes its own when it first needs it, as it always did): a run
        of one changed mailbox opens no connection more than before."""
        at_once = min(self.options.parallel, len(names))
        if at_once < 2:
            return
        if self.options.mode == "quick":
            since = [await self.state.modseqs(side) for side in SIDES]
            on = self.tree.name_on
            changed = sum(
                1
                for name in names
                if any(
                    self.stores[side].known_changed(on(side, name), since[side].get(name))
                    for side in SIDES
                )
            )
        else:
            changed = len(names)  # every mailbox is listed whole
        for store in self.stores:
            store.warm(min(at_once, changed))

    def _all_mail(self) -> AllMailChanges | None:
        """Gmail's labels mode on a whole account: All Mail says which labels changed
        (engine/gmail_all_mail.py).  Not for a dry run, nor for some folders only (``-f``, a
        daemon's push): the mark it records must hold for every pair."""
        if not self.options.gmail_labels or self.options.dry_run or self.only is not None:
            return None
        return AllMailChanges(self.stores, self.state, self.tree)

    async def _mailboxes(self, names: list[str]) -> None:
        """Sync the pairs ``names``, ``options.parallel`` of them at once (each on its own
        connections), reported in the order of ``names``.  A worker that meets an error
        that ends the run (a stop, the state unwritable, a server gone) takes no further
        mailbox, nor do the others; those in flight run to their next durable step (a stop)
        or their end, never cancelled mid-write.  A trash folder comes after the others, whose
        deletions fill it, so the run ends with both sides of it alike."""
        trash = {t for t in self.options.trash if t is not None}
        todo = collections.deque([n for n in names if n not in trash])
        later = [n for n in names if n in trash]
        ended: list[BaseException] = []
        failed: list[str] = []  # the last mailbox that ran out of retries, if the last one did
        first = len(self.report.mailboxes)

        async def worker() -> None:
            try:
                while todo and not ended:
                    name = todo.popleft()
                    try:
                        self.steps.check()
                        await self._mailbox_retried(name, failed)
                    except (StoreError, StateError, StopRequested) as exc:  # _GaveUp too
                        ended.append(exc)
            finally:
                self._at_once -= 1  # one fewer shares the bodies' budget (PairSync.budget)

        workers = max(1, min(self.options.parallel, len(names)))
        self._at_once = workers
        await asyncio.gather(*(worker() for _ in range(workers)))
        todo.extend(later)
        self._at_once = 1
        await worker()
        order = {name: i for i, name in enumerate(names)}
        self.report.mailboxes[first:] = sorted(
            self.report.mailboxes[first:], key=lambda r: order.get(r.name, len(order))
        )
        if ended:
            raise ended[0]

    async def _mailbox_retried(self, name: str, failed: list[str]) -> None:
        """``_mailbox(name)`` with retries.  Right after a mailbox gave up, one attempt tells
        whether the server is reachable at all: if not, every mailbox would only wait again,
        so the run ends (``failed`` holds the mailbox that gave up before, shared by the
        workers)."""
        try:
            await self._retrying(
                functools.partial(self._mailbox, name),
                "mailbox.retry",
                attempts=1 if failed else None,
                mailbox=name,
            )
            failed.clear()
        except _GaveUp as exc:
            line = f"mailbox {name!r}: {exc}"
            if failed:
                raise _GaveUp(
                    f"{failed[0]}; then {line} too, so the other mailboxes were not synced"
                ) from None
            failed.append(line)
            self.report.mailboxes.append(PairReport(name, error=line))
            self.log.error("mailbox.failed", mailbox=name, error=line)

    async def _retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        event: str,
        attempts: int | None = None,
        **context: Any,
    ) -> T:
        """``attempt()``, tried again after a lost connection as ``self.retry`` allows (or at
        most ``attempts`` times), each retry logged as ``event``; ``_GaveUp`` when they ran out."""
        warnings, stranded = len(self.report.warnings), len(self.report.stranded)
        attempts = attempts or self.retry.attempts
        n = 1
        while True:
            try:
                return await attempt()
            except ConnectionLost as exc:
                if n >= attempts:
                    raise _GaveUp(f"{exc}; gave up after {n} attempt{'s' * (n > 1)}") from None
                n += 1
                wait = self.retry.wait_before(n)
                self.log.warning(
                    event,
                    attempt=n,
                    attempts=attempts,
                    delay=wait,
                    error=str(exc),
                    **context,
                )
                # A retry starts over: what the failed attempt warned of is said again if true.
                del self.report.warnings[warnings:]
                del self.report.stranded[stranded:]
                await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Wait before a retry; a stop asked for meanwhile ends the wait (and the run)."""
        stop = self.steps.stop
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await within(stop.wait(), seconds)
        self.steps.check()

    async def _start(self) -> list[str]:
        for side in SIDES:
            await self._connect(side)
        return await self.tree.pairs()

    async def _connect(self, side: Side) -> None:
        """Connect a side's store with what it learned of its server in earlier runs
        (``Store.memo``), and keep what it learned now (not in a dry run, which writes no
        state)."""
        store = self.stores[side]
        recalled = await self.state.store_memo(side)
        store.recall(recalled)
        await store.connect(first_sync=self.first_sync)
        memo = store.memo()
        if memo is not None and memo != recalled and not self.options.dry_run:
            await self.state.set_store_memo(side, memo)

    async def _mailbox(self, name: str) -> None:
        boxes: list[Mailbox | None] = [None, None]
        report: PairReport
        planned = self.moves.planned(name) if self.moves is not None else None
        if self.options.gmail_labels:
            planned = None  # each label pair catches up on its links before it plans
        try:
            # A plan made by the move pass opens only the sides it changes or reads (an empty
            # one neither: not even a SELECT).
            for side in SIDES if planned is None else planned_sides(planned):
                try:
                    boxes[side] = await self.stores[side].open(
                        self.tree.name_on(side, name), planned=planned is not None
                    )
                except MailboxError:
                    if not self.options.dry_run:
                        raise
            labels = (
                LabelLinks.of((boxes[0], boxes[1]), self.stores[Side.FAR], self.state, self.steps)
                if self.options.gmail_labels
                else None
            )
            pair = PairSync(
                name,
                (boxes[0], boxes[1]),
                self.state,
                self.steps,
                self.options,
                planned,
                labels,
                at_once=lambda: self._at_once,
            )
            report = await pair.run()
            for side, proof in pair.written:
                self.restamps.add(name, side, proof)
        except (MailboxError, UnsafeFolderName) as exc:
            report = PairReport(name, error=str(exc))
            self.log.error("mailbox.failed", mailbox=name, error=str(exc))
        except (StoreError, StateError, StopRequested, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug must cost one mailbox, not the account
            why = f"internal error: {type(exc).__name__}: {exc}"
            report = PairReport(name, error=why)
            self.log.error("mailbox.failed", mailbox=name, error=why, exc_info=True)
        finally:
            for box in boxes:
                if box is not None:
                    try:
                        await box.close()
                    except StoreError as exc:
                        self.log.debug("mailbox.close_failed", mailbox=name, error=str(exc))
        self.report.mailboxes.append(report)


def planned_sides(planned: Prepared) -> list[Side]:
    """The sides a plan made earlier in the run needs open to be carried out."""
    return [side for side in SIDES if planned.plan.touches(side)]


class _GaveUp(StoreError):
    """Retries ran out: the account stops with this line (not retried again)."""
