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
one attempt), the account stops there with one line saying why.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from mailtide.config.model import DEFAULT_RETRIES, DEFAULT_RETRY_DELAY, MAX_RETRY_DELAY
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import SIDES, Side
from mailtide.core.names import canonical
from mailtide.engine.pair import SIDE_NAMES, Options, PairReport, PairSync
from mailtide.engine.steps import Steps
from mailtide.state.db import StateDB, StateError
from mailtide.stores.base import (
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

    retries: int = DEFAULT_RETRIES
    delay: float = DEFAULT_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 is the first retry)."""
        return float(min(self.delay * 2 ** max(attempt - 2, 0), self.max_delay))


@dataclass(slots=True)
class AccountReport:
    name: str
    mailboxes: list[PairReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(m.error or m.refused for m in self.mailboxes)

    def failures(self) -> list[str]:
        """One line per failure, naming the account (and the mailbox)."""
        if self.error is not None:
            return [f"account {self.name}: {self.error}"]
        lines = []
        for m in self.mailboxes:
            lines += [f"account {self.name}: {why}" for why in m.refused]
            if m.error:
                lines.append(f"account {self.name}: {m.error}")
        return lines


def _order(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


class AccountSync:
    """One run over one account.  ``stores`` and ``filters`` are indexed by Side."""

    def __init__(
        self,
        name: str,
        stores: tuple[Store, Store],
        filters: tuple[FolderFilter, FolderFilter],
        state: StateDB,
        options: Options,
        only: Sequence[str] | None = None,
        retry: Retry = Retry(),
    ) -> None:
        self.name = name
        self.retry = retry
        self.stores = stores
        self.filters = filters
        self.state = state
        self.options = options
        self.only = {canonical(n) for n in only} if only else None
        self.steps = Steps()
        self.report = AccountReport(name)
        self.log = log.bind(account=name)

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)
        self.log.warning("account.warning", message=message)

    async def run(self) -> AccountReport:
        try:
            names = await self._retrying(self._start, "account.retry")
            failed: str | None = None  # the last mailbox that ran out of retries
            for name in names:
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
        except (StoreError, StateError) as exc:  # _GaveUp too
            # The state cannot be written (a full disk): every further mailbox would fail alike.
            self.report.error = str(exc)
            self.log.error("account.failed", error=str(exc))
        finally:
            for store in self.stores:
                try:
                    await store.close()
                except Exception as exc:  # closing must not hide the real outcome
                    self.log.debug("account.close_failed", error=str(exc))
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
        warnings = len(self.report.warnings)
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
                await asyncio.sleep(wait)

    async def _start(self) -> list[str]:
        for store in self.stores:
            await store.connect()
        return await self._folders()

    async def _folders(self) -> list[str]:
        """The mailbox pairs to sync, after creating folders that are new on one side."""
        present: list[set[str]] = []
        parent_only: set[str] = set()
        for side in SIDES:
            store = self.stores[side]
            folders = await store.list_folders()
            for raw, why in store.refused:
                self.warn(f"{SIDE_NAMES[side]} folder {raw!r} skipped: {why}")
            present.append({f.name for f in folders if f.selectable})
            parent_only |= {f.name for f in folders if not f.selectable}
        wanted = {
            n
            for n in present[Side.FAR] | present[Side.NEAR]
            if all(f.selects(n) for f in self.filters) and (self.only is None or n in self.only)
        }
        if self.only:
            for n in sorted(self.only - wanted):
                self.warn(f"folder {n!r} was asked for but exists on neither side (or is filtered)")
        known = self.state.known_folders()
        chosen = []
        for name in sorted(wanted, key=_order):
            missing = [s for s in SIDES if name not in present[s]]
            if not missing:
                chosen.append(name)
                continue
            side = missing[0]
            if name in known:
                self.warn(
                    f"folder {name!r} is gone from the {SIDE_NAMES[side]} side; it was synced "
                    "before, so it is neither re-created nor deleted on the other side"
                )
                continue
            if name in parent_only:
                self.warn(f"folder {name!r} holds no messages on one side; skipped")
                continue
            if self.options.dry_run:
                self.log.info("folder.would_create", folder=name, side=SIDE_NAMES[side])
            else:
                try:
                    await self.stores[side].create_folder(name)
                except ConnectionLost:
                    raise  # the connection, not the name: retried
                except StoreError as exc:  # a name that side refuses: skip it, not the account
                    self.warn(
                        f"folder {name!r} cannot be made on the {SIDE_NAMES[side]} side: {exc}"
                    )
                    continue
                present[side].add(name)
                self.log.info("folder.created", folder=name, side=SIDE_NAMES[side])
                self.steps.done("create folder")
            chosen.append(name)
        if not self.options.dry_run:
            self.state.add_folders(chosen)
        return chosen

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
        except (StoreError, StateError, asyncio.CancelledError):
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


class _GaveUp(StoreError):
    """Retries ran out: the account stops with this line (not retried again)."""
