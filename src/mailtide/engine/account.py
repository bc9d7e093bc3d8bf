"""Sync one account: the folder tree first, then every mailbox pair.

Folders: a folder on one side only is created on the other, unless the state
says it was synced before (then it was deleted on one side: it is reported and
left alone, never re-created and never deleted wholesale).  A mailbox that
fails is reported and the others go on.

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
import contextlib
import difflib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import SIDES, Side
from mailtide.core.names import canonical
from mailtide.engine.moves import MovePass
from mailtide.engine.pair import SIDE_NAMES, Options, PairReport, PairSync
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

    @property
    def failed(self) -> bool:
        return self.error is not None or any(m.error for m in self.mailboxes)

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
        """The mailboxes' counts added up (``PairReport.summary``'s keys)."""
        total: dict[str, int] = {}
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


# Rounds of listing and creating folders: one more for each level of parents a side may create.
_FOLDER_ROUNDS = 4


def _order(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


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
    ) -> None:
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
        self.log = log.bind(account=name)

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
            known = await self.state.known_folders()  # before this run adds its own
            names = await self._retrying(self._start, "account.retry")
            moves = MovePass(names, self.stores, self.state, self.steps, self.options, known)
            self.options = await moves.run()
            failed: str | None = None  # the last mailbox that ran out of retries
            for name in names:
                self.steps.check()
                try:
                    await self._retrying(
                        functools.partial(self._mailbox, name),
                        "mailbox.retry",
                        # Right after a mailbox gave up, one attempt tells whether the server
                        # is reachable at all: if not, every mailbox would only wait again.
                        attempts=1 if failed else None,
                        mailbox=name,
                    )
                    failed = None
                except _GaveUp as exc:
                    line = f"mailbox {name!r}: {exc}"
                    if failed is not None:
                        raise _GaveUp(
                            f"{failed}; then {line} too, so the other mailboxes were not synced"
                        ) from None
                    failed = line
                    self.report.mailboxes.append(PairReport(name, error=line))
                    self.log.error("mailbox.failed", mailbox=name, error=line)
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
        return self.report

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
            await asyncio.wait_for(stop.wait(), seconds)
        self.steps.check()

    async def _start(self) -> list[str]:
        for store in self.stores:
            await store.connect(first_sync=self.first_sync)
        return await self._folders()

    async def _folders(self) -> list[str]:
        """The mailbox pairs to sync, after creating folders that are new on one side.

        Creating a nested folder may create its parents on that side too (a server makes
        ``A`` for ``A/B``), so the tree is listed again after a round that created folders,
        and what appeared is carried in the same run."""
        chosen: list[str] = []
        decided: set[str] = set()
        present: list[set[str]] = [set(), set()]
        parent_only: set[str] = set()
        changed = set(SIDES)
        for round_ in range(_FOLDER_ROUNDS):
            await self._list(changed, present, parent_only, warn=round_ == 0)
            wanted = {
                n
                for n in present[Side.FAR] | present[Side.NEAR]
                if all(f.selects(n) for f in self.filters) and (self.only is None or n in self.only)
            }
            if round_ == 0 and self.only:
                self._check_only(wanted, present)
            changed = set()
            for name in sorted(wanted - decided, key=_order):
                decided.add(name)
                made = await self._place(name, present, parent_only)
                if made is not None:
                    chosen.append(name)
                    changed |= made
            if not changed or self.options.dry_run:
                break
        chosen.sort(key=_order)
        if not self.options.dry_run:
            await self.state.add_folders(chosen)
        return chosen

    async def _list(
        self, sides: set[Side], present: list[set[str]], parent_only: set[str], warn: bool
    ) -> None:
        """List the folders of ``sides`` into ``present`` (selectable, by Side) and
        ``parent_only`` (names a side holds only as a parent, no messages); a folder a side
        cannot map is stranded there (said once per run)."""
        for side in sorted(sides):
            store = self.stores[side]
            folders = await store.list_folders()
            if warn:
                for raw, why in store.refused:
                    self.strand(
                        f"{SIDE_NAMES[side]} folder {raw!r} is not synced "
                        f"(its mail stays on the {SIDE_NAMES[side]} side): {why}"
                    )
            present[side] = {f.name for f in folders if f.selectable}
            parent_only |= {f.name for f in folders if not f.selectable}

    def _check_only(self, wanted: set[str], present: list[set[str]]) -> None:
        """``-f`` names that match no folder are a usage mistake: nothing is synced."""
        missing = sorted(self.only - wanted) if self.only else []
        if not missing:
            return
        anywhere = present[Side.FAR] | present[Side.NEAR]
        known = sorted(n for n in anywhere if all(f.selects(n) for f in self.filters))
        lines = []
        for name in missing:
            if name in anywhere:
                lines.append(f'folder "{name}" is left out by the folders.include/exclude rules')
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            lines.append(f'no folder "{name}" on either side{hint}')
        raise NoSuchFolder("; ".join(lines))

    async def _place(
        self, name: str, present: list[set[str]], parent_only: set[str]
    ) -> set[Side] | None:
        """Make ``name`` exist on both sides: None when it cannot be synced (stranded), else
        the sides a folder was created on."""
        missing = [s for s in SIDES if name not in present[s]]
        if not missing:
            return set()
        side = missing[0]
        other = SIDE_NAMES[side.other]
        if name in await self.state.known_folders():
            self.strand(
                f"folder {name!r} is gone from the {SIDE_NAMES[side]} side; it was synced "
                f"before, so it is neither re-created nor deleted on the {other} side "
                f"(its mail stays there)"
            )
            return None
        if name in parent_only:
            self.strand(
                f"folder {name!r} holds no messages on the {SIDE_NAMES[side]} side (it is only "
                f"a parent there), so the mail in it on the {other} side is not synced"
            )
            return None
        store = self.stores[side]
        try:
            store.check_name(name)
            if self.options.dry_run:
                self.log.info("folder.would_create", folder=name, side=SIDE_NAMES[side])
                return set()
            await store.create_folder(name)
        except (ConnectionLost, AuthenticationFailed):
            raise  # the connection or the login, not the name: for the whole account
        except StoreError as exc:  # a name that side refuses: skip it, not the account
            self.strand(
                f"folder {name!r} cannot be made on the {SIDE_NAMES[side]} side, so its mail "
                f"stays on the {other} side: {exc}"
            )
            return None
        present[side].add(name)
        self.log.info("folder.created", folder=name, side=SIDE_NAMES[side])
        self.steps.done("create folder")
        return {side}

    async def _mailbox(self, name: str) -> None:
        boxes: list[Mailbox | None] = [None, None]
        report: PairReport
        try:
            for side in SIDES:
                try:
                    boxes[side] = await self.stores[side].open(name)
                except MailboxError:
                    if not self.options.dry_run:
                        raise
            pair = PairSync(name, (boxes[0], boxes[1]), self.state, self.steps, self.options)
            report = await pair.run()
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


class NoSuchFolder(StoreError):
    """``-f`` named a folder that exists on neither side: a usage mistake, nothing synced."""


class _GaveUp(StoreError):
    """Retries ran out: the account stops with this line (not retried again)."""
