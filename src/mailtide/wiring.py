"""From the configuration to engine runs: the one place that turns config values into stores,
state and policy, so that the engine (how to sync) and the daemon (when to sync) never read the
configuration themselves.

The command line's one-shot sync and the daemon both start here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from mailtide.config import ConfigError, load_config
from mailtide.config.model import Account, Config, ImapRepository, MaildirRepository, Repository
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import Side
from mailtide.daemon.runner import PushCallback, PushSource
from mailtide.engine.account import AccountReport, Retry
from mailtide.engine.pair import Options
from mailtide.engine.run import sync_stores
from mailtide.state.db import StateDB, StateError
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import Store, StoreError
from mailtide.stores.maildir.own_changes import OwnChanges
from mailtide.stores.maildir.watch import MaildirChange, MaildirWatcher

log = structlog.get_logger(__name__)


async def open_store(repo: Repository, read_only: bool = False) -> Store:
    """A store for a configured repository (not yet connected); ``read_only`` for a dry run."""
    if isinstance(repo, ImapRepository):
        from mailtide.auth.credentials import credentials_for
        from mailtide.stores.imap import ImapSettings, ImapStore

        # Asked at every connect: a daemon's password or token may change while it runs.
        return ImapStore(
            ImapSettings(
                host=repo.host,
                port=repo.port,
                credentials=credentials_for(repo),
                tls=repo.tls,
                ca_file=str(repo.ca_file) if repo.ca_file else None,
                timeout=repo.timeout,
            ),
            read_only=read_only,
        )
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    return MaildirStore(MaildirSettings(str(repo.path), repo.layout), read_only=read_only)


@dataclass(frozen=True, slots=True)
class Request:
    """What one run is asked to do (the command line's options, or a daemon trigger)."""

    folders: Sequence[str] | None = None
    mode: Literal["full", "quick"] = "quick"
    dry_run: bool = False
    allow_mass_delete: bool = False
    restore_deleted: bool = False


def options_for(account: Account, request: Request) -> Options:
    return Options(
        mode=request.mode,
        dry_run=request.dry_run,
        allow_mass_delete=request.allow_mass_delete,
        restore_deleted=request.restore_deleted,
        mass_delete_share=account.mass_delete_share,
        mass_delete_floor=account.mass_delete_floor,
    )


def filters_of(account: Account) -> tuple[FolderFilter, FolderFilter]:
    """The folder filters, indexed by Side (FAR: the remote repository)."""
    return (account.remote.folders, account.local.folders)


def retry_of(account: Account) -> Retry:
    return Retry(account.retries, account.retry_delay)


async def open_state(config: Config, account: Account, dry_run: bool = False) -> OffLoopState:
    """The account's state, locked against a second mailtide syncing it (``StateError``)."""
    db = await asyncio.to_thread(
        StateDB.for_account, config.general.state_dir, account.name, dry_run
    )
    return OffLoopState(db)


async def sync_account(
    config: Config,
    account: Account,
    *,
    folders: Sequence[str] | None = None,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    restore_deleted: bool = False,
    mode: Literal["full", "quick"] = "quick",
    stop: asyncio.Event | None = None,
) -> AccountReport:
    """One run over one account, from opening its stores and state to closing them."""
    request = Request(folders, mode, dry_run, allow_mass_delete, restore_deleted)
    try:
        stores = (
            await open_store(account.remote, read_only=dry_run),
            await open_store(account.local, read_only=dry_run),
        )
        state = await open_state(config, account, dry_run)
    except (StoreError, StateError) as exc:
        return AccountReport(account.name, error=str(exc))
    try:
        return await sync_stores(
            account.name,
            stores,
            filters_of(account),
            state,
            options_for(account, request),
            retry_of(account),
            folders=folders,
            stop=stop,
        )
    finally:
        await state.close()
        await _close_stores(account.name, stores)


def _print_report(report: AccountReport, dry_run: bool) -> None:
    """The account's totals (each mailbox logged its own line; failures were logged where they
    happened).  ``failed`` and ``stranded`` are what the exit status is made of."""
    if report.error:
        return
    total = [sum(m.copied[s] for m in report.mailboxes) for s in Side]
    (log.warning if report.failed or report.stranded_lines() else log.info)(
        "account.done",
        account=report.name,
        mailboxes=len(report.mailboxes),
        failed=sum(1 for m in report.mailboxes if m.error),
        stranded=len(report.stranded_lines()),
        new_remote=total[Side.FAR],
        new_local=total[Side.NEAR],
        dry_run=dry_run,
    )


async def sync_accounts(
    config: Config,
    accounts: Sequence[str] | None = None,
    folders: Sequence[str] | None = None,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    restore_deleted: bool = False,
    mode: Literal["full", "quick"] = "quick",
) -> list[AccountReport]:
    """Sync the named accounts (default: ``general.accounts``) one after the other."""
    names = list(accounts or config.general.accounts)
    reports = []
    for name in names:
        # Every event of the account names it, the stores' own (the IMAP conversation) too.
        context = structlog.contextvars.bound_contextvars(account=name)
        try:
            with context:
                report = await sync_account(
                    config,
                    config.account(name),
                    folders=folders,
                    dry_run=dry_run,
                    allow_mass_delete=allow_mass_delete,
                    restore_deleted=restore_deleted,
                    mode=mode,
                )
        except Exception as exc:  # a bug must cost one account, not the others
            why = f"internal error: {type(exc).__name__}: {exc}"
            log.error("account.failed", account=name, error=why, exc_info=True)
            report = AccountReport(name, error=why)
        _print_report(report, dry_run)
        reports.append(report)
    return reports


# --- the daemon's accounts -------------------------------------------------------------------


class WiredAccount:
    """An account as the daemon drives it (``daemon.runner.AccountRunner``).

    The state database is opened at the first sync and held until ``close``: its lock keeps a
    second mailtide off the account while the daemon runs.  The stores are opened for each
    sync and closed after it, unless the schedule holds connections open."""

    def __init__(self, config: Config, account: Account) -> None:
        self.config = config
        self.account = account
        self.schedule = account.daemon
        self.own = OwnChanges()  # the Maildir writes of this account's syncs
        self._state: OffLoopState | None = None
        self._stores: tuple[Store, Store] | None = None

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def key(self) -> object:
        return (self.account, self.schedule, self.config.general.state_dir)

    async def start(self) -> None:
        if self._state is None:
            self._state = await open_state(self.config, self.account)

    async def sync(
        self,
        mailboxes: frozenset[str] | None,
        full: bool,
        stop: asyncio.Event,
        allow_mass_delete: bool = False,
        restore_deleted: bool = False,
    ) -> AccountReport:
        request = Request(
            sorted(mailboxes) if mailboxes else None,
            "full" if full else "quick",
            allow_mass_delete=allow_mass_delete,
            restore_deleted=restore_deleted,
        )
        try:
            if self._state is None:
                self._state = await open_state(self.config, self.account)
            stores = self._stores or (
                await open_store(self.account.remote),
                await open_store(self.account.local),
            )
        except (StoreError, StateError) as exc:
            report = AccountReport(self.name, error=str(exc))
            return report
        try:
            report = await sync_stores(
                self.name,
                stores,
                filters_of(self.account),
                self._state,
                options_for(self.account, request),
                retry_of(self.account),
                folders=request.folders,
                stop=stop,
            )
        finally:
            if self.schedule.hold_connection_open and not stop.is_set():
                self._stores = stores
            else:
                self._stores = None
                await _close_stores(self.name, stores)
        _print_report(report, dry_run=False)
        return report

    def push_sources(self) -> list[PushSource]:
        sources: list[PushSource] = []
        if self.schedule.watch_maildir and isinstance(self.account.local, MaildirRepository):
            sources.append(MaildirPush(self.account.local, self.own, self.schedule.rescan))
        return sources

    async def close(self) -> None:
        if self._stores is not None:
            stores, self._stores = self._stores, None
            await _close_stores(self.name, stores)
        if self._state is not None:
            state, self._state = self._state, None
            await state.close()


async def _close_stores(account: str, stores: tuple[Store, Store]) -> None:
    for store in stores:
        try:
            await store.close()
        except Exception as exc:  # closing must not hide the real outcome
            log.debug("account.close_failed", account=account, error=str(exc))


class MaildirPush:
    """The Maildir watcher as a push source of the daemon (``daemon.runner.PushSource``): the
    folders another program changed; a changed folder tree or a missed event asks for every
    mailbox (None), so new folders are found."""

    server = False

    def __init__(self, repo: MaildirRepository, own: OwnChanges, poll: float) -> None:
        self.name = "inotify"
        self.repo = repo
        self.own = own
        self.poll = poll

    async def run(self, changed: PushCallback) -> None:
        def deliver(change: MaildirChange) -> None:
            changed(None if change.tree or change.rescan else change.folders)

        watcher = MaildirWatcher(
            str(self.repo.path), self.repo.layout, deliver, own=self.own, poll=self.poll
        )
        await watcher.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await watcher.stop()


def daemon_loader(
    path: str | None, names: Sequence[str] | None
) -> Callable[[], tuple[list[WiredAccount], int]]:
    """What the daemon calls on SIGHUP: the configuration read again (``names``: the accounts
    it was started with, else ``general.accounts``), or an exception listing what is wrong."""

    def load() -> tuple[list[WiredAccount], int]:
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise ValueError("\n".join(exc.problems)) from None
        return daemon_accounts(config, names), max_sync_accounts(config)

    return load


def max_sync_accounts(config: Config) -> int:
    return config.general.max_sync_accounts


def daemon_accounts(config: Config, names: Sequence[str] | None = None) -> list[WiredAccount]:
    """The accounts a daemon drives: ``names`` (those still in the config), else
    ``general.accounts``."""
    chosen = [n for n in names if n in config.account_names] if names else config.general.accounts
    return [WiredAccount(config, config.account(name)) for name in chosen]
