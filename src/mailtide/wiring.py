"""From the configuration to engine runs: the one place that turns config values into stores,
state and policy, so that the engine (how to sync) and the daemon (when to sync) never read the
configuration themselves.

The command line's one-shot sync and the daemon both start here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from mailtide.config import ConfigError, gmail, load_config
from mailtide.config.model import Account, Config, ImapRepository, MaildirRepository, Repository
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import SIDES, TRASH_SPECIAL_USE, Side
from mailtide.daemon.hooks import changes_input, new_mail_input, run_hook, sync_env
from mailtide.daemon.runner import PushCallback, PushSource
from mailtide.engine.account import AccountReport, Retry
from mailtide.engine.folder_policy import FolderPolicy
from mailtide.engine.pair import BATCH_BYTES, Options
from mailtide.engine.restamp import Restamps
from mailtide.engine.run import sync_stores
from mailtide.state.db import StateDB, StateError
from mailtide.state.lock import state_file
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import Store, StoreError
from mailtide.stores.imap.client import ImapSettings
from mailtide.stores.imap.seen import Begun
from mailtide.stores.imap.special_use import ALL_MAIL, LeftOut
from mailtide.stores.maildir.journal import WriteJournal
from mailtide.stores.maildir.own_changes import OwnChanges
from mailtide.ui.report import account_done

if TYPE_CHECKING:
    from mailtide.stores.imap.push import ServerPush
    from mailtide.stores.maildir.watch import MaildirChange

log = structlog.get_logger(__name__)


async def open_store(
    repo: Repository,
    read_only: bool = False,
    journal: WriteJournal | None = None,
    held: bool = False,
) -> Store:
    """A store for a configured repository (not yet connected); ``read_only`` for a dry run;
    ``journal`` is told of a Maildir's every change; ``held``: its connections are held
    between syncs (``ImapStore``)."""
    if isinstance(repo, ImapRepository):
        from mailtide.stores.imap import ImapStore

        return ImapStore(imap_settings(repo), read_only=read_only, held=held)
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    return MaildirStore(
        MaildirSettings(str(repo.path), repo.layout, f"[repository.{repo.name}]"),
        read_only=read_only,
        journal=journal,
    )


def imap_settings(repo: ImapRepository) -> ImapSettings:
    """How to reach and log in to an IMAP repository; the credentials are asked for at every
    connect (a daemon's password or token may change while it runs)."""
    from mailtide.auth.credentials import credentials_for

    return ImapSettings(
        host=repo.host,
        port=repo.port,
        credentials=credentials_for(repo),
        tls=repo.tls,
        ca_file=str(repo.ca_file) if repo.ca_file else None,
        timeout=repo.timeout,
        compress=repo.compress,
        tls_min_version=repo.tls_min_version,
        client_cert=str(repo.client_cert) if repo.client_cert else None,
        client_key=str(repo.client_key) if repo.client_key else None,
        cert_fingerprint=repo.cert_fingerprint,
        mechanism=repo.oauth2.mechanism if repo.oauth2 else None,
        left_out=LeftOut(
            frozenset(repo.left_out),
            gmail.named(repo.folders.include),
            # labels as keywords: All Mail is the one folder, its messages carry the labels
            only=ALL_MAIL if repo.gmail_keywords else None,
        ),
        gmail_keywords=repo.gmail_keywords,
    )


def server_push(account: Account, repo: ImapRepository) -> ServerPush:
    """The account's IMAP push (NOTIFY, else IDLE on idle_folders and a poll of the rest)."""
    from mailtide.stores.imap.push import PushSettings, ServerPush, connector  # the daemon's

    d = account.daemon
    settings = PushSettings(
        idle_folders=d.idle_folders,
        idle_renew=d.idle_renew,
        poll=d.poll,
        notify=d.notify,
        keepalive=d.keepalive,
        # plan_push leaves one connection for syncing; a sync holds two (the store's own for
        # the folder list, and the open mailbox's), so push gets one less.
        max_connections=max(1, d.max_connections - 1),
    )
    filters = filters_of(account)

    def wanted(name: str) -> bool:
        return all(f.selects(name) for f in filters)

    # Asks for the credentials at every connect; compressed as the repository says, like the
    # sync connections.
    connect = connector(imap_settings(repo))

    return ServerPush(connect, settings, wanted)


@dataclass(frozen=True, slots=True)
class Request:
    """What one run is asked to do (the command line's options, or a daemon trigger)."""

    folders: Sequence[str] | None = None
    mode: Literal["full", "quick"] = "quick"
    dry_run: bool = False
    allow_mass_delete: bool = False
    restore_deleted: bool = False


def options_for(account: Account, request: Request, daemon: bool = False) -> Options:
    """The engine's options for ``request``.  A one-shot run syncs mailboxes on every
    connection ``max_connections`` allows but the store's own (folder list, namespace); a
    daemon's server push may hold all but two of them, so its syncs take one mailbox at a
    time (they mostly concern one); mailboxes at once share the bodies' memory budget.
    Gmail's labels mode takes one at a time too: a message new in two labels is linked from
    the first label's file only once that one is written."""
    remote = account.remote
    gmail_labels = isinstance(remote, ImapRepository) and remote.gmail_labels
    labels = isinstance(remote, ImapRepository) and remote.gmail_folders
    parallel = 1 if daemon or labels else max(1, account.daemon.max_connections - 1)
    return Options(
        parallel=parallel,
        # the mailboxes in flight share one budget of bodies held (PairSync.budget)
        batch_bytes=BATCH_BYTES,
        mode=request.mode,
        dry_run=request.dry_run,
        allow_mass_delete=request.allow_mass_delete,
        restore_deleted=request.restore_deleted,
        mass_delete_share=account.mass_delete_share,
        mass_delete_floor=account.mass_delete_floor,
        # by Side: the remote's; Gmail's labels mode trashes what left every local folder
        trash=(account.trash or (TRASH_SPECIAL_USE if gmail_labels else None), None),
        trash_new_only=account.trash_new_only,
        gmail_labels=labels,
    )


def filters_of(account: Account) -> tuple[FolderFilter, FolderFilter]:
    """The folder filters, indexed by Side (FAR: the remote repository).  Gmail's labels as
    keywords syncs All Mail alone: no local folder becomes a label folder."""
    remote = account.remote
    if isinstance(remote, ImapRepository) and remote.gmail_keywords:
        return (gmail.ALL_MAIL_ONLY, account.local.folders)
    return (remote.folders, account.local.folders)


def folder_policy_of(account: Account) -> FolderPolicy:
    """How the account's folder tree names folders (its rules), and treats deleted folders
    and subscriptions."""
    return FolderPolicy(
        delete=account.folder_delete,
        subscribed_only=account.subscribed_only,
        rules=account.folders,
    )


def retry_of(account: Account) -> Retry:
    return Retry(account.retries, account.retry_delay)


# The daemon holds an account's database open for its lifetime: SQLite's default page cache
# (2,000 KiB) filled with the database and stayed (1.0 MB of RSS growth in a 10-minute soak);
# 256 KiB cut the soak's growth from 1,672 to 664 KiB.  Pages beyond it come from the OS cache.
DAEMON_CACHE_KIB = 256


async def open_state(
    config: Config, account: Account, dry_run: bool = False, cache_kib: int | None = None
) -> OffLoopState:
    """The account's state, locked against a second mailtide syncing it (``StateError``).
    Cancelled while the database opens (a daemon stopping an account), the thread still opens
    it: it is closed again before the cancel goes on, or the account's lock would stay held
    by this process until it exits."""
    opening = asyncio.ensure_future(
        asyncio.to_thread(
            StateDB.for_account, config.general.state_dir, account.name, dry_run, cache_kib
        )
    )
    try:
        db = await asyncio.shield(opening)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            (await opening).close()
        raise
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
    listed: Mapping[tuple[str, int], Begun] | None = None,
) -> AccountReport:
    """One run over one account, from opening its stores and state to closing them, with the
    account's hooks around it (not in a dry run).  ``listed``: as ``sync_accounts``."""
    request = Request(folders, mode, dry_run, allow_mass_delete, restore_deleted)
    journal = journal_for(account)
    try:
        stores = (
            await open_store(account.remote, read_only=dry_run),
            await open_store(account.local, read_only=dry_run, journal=journal),
        )
        state = await open_state(config, account, dry_run)
    except (StoreError, StateError) as exc:
        return AccountReport(account.name, error=str(exc))
    if listed:
        take_listed(listed, account, stores, state.db.at_lock, request == Request())

    async def run() -> AccountReport:
        return await sync_stores(
            account.name,
            stores,
            filters_of(account),
            state,
            options_for(account, request),
            retry_of(account),
            folders=folders,
            stop=stop,
            folder_policy=folder_policy_of(account),
        )

    seen: list[dict[str, Any] | None] | None = None
    reached = False
    try:
        if dry_run:
            return await run()
        report = await with_hooks(account, request, journal, run)
        reached = report.error is None
        if report.provable and request == Request():
            seen = [store.seen() for store in stores]
        return report
    finally:
        await state.close()
        await _close_stores(account.name, stores, hurry=True)  # the process ends next
        if not dry_run:
            _leave_proof(config, account, seen, len(report.mailboxes) if seen else 0, reached)


def take_listed(
    listed: Mapping[tuple[str, int], Begun],
    account: Account,
    stores: tuple[Store, Store],
    state: str | None,
    plain: bool,
) -> None:
    """Give each IMAP store of ``account`` the session begun before the run for its side:
    to take its answers as its first folder listing where that session read this same
    repository, the run is a plain sync (``plain``), and the account's state is as it was
    before the session began (``state``: its signature when this run locked it; a sync that
    ran in between may have written the server since); else only to wait for it to end
    before connecting (``max_connections``)."""
    from mailtide.stores.imap import ImapStore

    for side, repo, store in zip(SIDES, (account.remote, account.local), stores, strict=True):
        before = listed.get((account.name, side))
        if before is None or not isinstance(store, ImapStore):
            continue
        usable = plain and before.repo == repo and before.state is not None
        beside = account.daemon.max_connections > 1  # the session and the store's first
        store.listed_before(before.ended, beside, usable=usable and before.state == state)


def _leave_proof(
    config: Config,
    account: Account,
    seen: list[dict[str, Any] | None] | None,
    mailboxes: int,
    reached: bool,
) -> None:
    """After a run over ``account`` (its state closed): the proof of a quiet run, for the next
    run's quiet check (quiet/), where each store's ``seen`` holds; else no proof at all.  And
    whether the run ``reached`` its servers (state/quiet.py ``record_reached``)."""
    from mailtide.state import quiet as proof

    db = state_file(config.general.state_dir, account.name)
    proof.record_reached(db, config.path, reached)
    if seen is not None and None not in seen:
        sides = [s for s in seen if s is not None]
        if proof.record(db, config.path, sides, mailboxes):
            log.debug("quiet.proof_left", account=account.name)
            return
    proof.forget(db)


def journal_for(account: Account) -> WriteJournal:
    """The one-shot sync's journal: it keeps the files written only when a postsync or
    newmail hook will be told of them (a 50k initial sync kept 50k paths, about 10 MB)."""
    return WriteJournal(keep=bool(account.hooks.postsync or account.hooks.newmail))


async def with_hooks(
    account: Account,
    request: Request,
    journal: WriteJournal,
    run: Callable[[], Awaitable[AccountReport]],
) -> AccountReport:
    """``run()`` between the account's presync and postsync hooks, then its newmail hook when
    the sync wrote new messages into the Maildir.  A hook's failure is logged, never raised."""
    hooks = account.hooks
    names = list(request.folders) if request.folders else None
    if hooks.presync:
        env = sync_env(account.name, request.mode, names, {}, "")
        await run_hook("presync", hooks.presync, env, timeout=hooks.timeout)
    journal.take()  # what the hooks may have written is not the sync's
    report = await run()
    changes = journal.take()
    if hooks.postsync:
        env = sync_env(account.name, request.mode, names, report.totals(), report.result)
        await run_hook(
            "postsync", hooks.postsync, env, changes_input(changes), timeout=hooks.timeout
        )
    added = [c for c in changes if c.kind == "added"]
    if hooks.newmail and added:
        await run_hook(
            "newmail",
            hooks.newmail,
            {"MAILTIDE_ACCOUNT": account.name},
            new_mail_input(account.name, added),
            timeout=hooks.timeout,
        )
    return report


def _print_report(report: AccountReport, dry_run: bool) -> None:
    """The account's totals (each mailbox logged its own line; failures were logged where they
    happened).  ``failed`` and ``stranded`` are what the exit status is made of."""
    if report.error:
        return
    total = [sum(m.copied[s] for m in report.mailboxes) for s in Side]
    account_done(
        report.name,
        len(report.mailboxes),
        failed=sum(1 for m in report.mailboxes if m.error),
        stranded=len(report.stranded_lines()),
        new=(total[Side.FAR], total[Side.NEAR]),
        moved=(report.moved[Side.FAR], report.moved[Side.NEAR]),
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
    listed: Mapping[tuple[str, int], Begun] | None = None,
) -> list[AccountReport]:
    """Sync the named accounts (default: ``general.accounts``) one after the other.
    ``listed``: the sessions the command began before the run (quiet/early.py), by account
    and side (``take_listed``)."""
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
                    listed=listed,
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
        # what its syncs write, announced to the watcher (own) and recorded for the hooks
        self.journal = WriteJournal(own=self.own, keep=True)
        # its syncs' proofs of their own Maildir writes, carried from sync to sync
        self.restamps = Restamps(carry=True)
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
            self._state = await open_state(self.config, self.account, cache_kib=DAEMON_CACHE_KIB)

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
        request = Request(
            sorted(mailboxes) if mailboxes else None,
            "full" if full else "quick",
            allow_mass_delete=allow_mass_delete,
            restore_deleted=restore_deleted,
        )
        try:
            if self._state is None:
                self._state = await open_state(
                    self.config, self.account, cache_kib=DAEMON_CACHE_KIB
                )
            stores = self._stores or (
                await open_store(self.account.remote, held=self.schedule.hold_connection_open),
                await open_store(self.account.local, journal=self.journal),
            )
        except (StoreError, StateError) as exc:
            report = AccountReport(self.name, error=str(exc))
            return report
        state = self._state
        if pushed is not None and self._stores is not None:
            _tell_pushed(stores[Side.FAR], pushed)

        async def run() -> AccountReport:
            return await sync_stores(
                self.name,
                stores,
                filters_of(self.account),
                state,
                options_for(self.account, request, daemon=True),
                retry_of(self.account),
                folders=request.folders,
                stop=stop,
                progress=progress,
                folder_policy=folder_policy_of(self.account),
                restamps=self.restamps,
            )

        try:
            report = await with_hooks(self.account, request, self.journal, run)
        finally:
            _tell_pushed(stores[Side.FAR], None)  # for this sync only
            if self.schedule.hold_connection_open and not stop.is_set():
                self._stores = stores
            else:
                self._stores = None
                await _close_stores(self.name, stores)
        _print_report(report, dry_run=False)
        return report

    async def holds(self, told: Mapping[str, Mapping[str, int]]) -> bool:
        """Whether each mailbox's remote cursor, as the last complete sync of it recorded, is
        what the server told (``AccountRunner.holds``): the same validity, highest
        mod-sequence, next UID and count where told (a highest mod-sequence must be)."""
        state = self._state
        if state is None:
            return False
        for name, items in told.items():
            cursor = (await state.mailbox(name, create=False)).cursors[Side.FAR]
            if "HIGHESTMODSEQ" not in items or cursor.validity is None:
                return False
            recorded = {
                "UIDVALIDITY": int(cursor.validity) if cursor.validity.isdigit() else None,
                "HIGHESTMODSEQ": cursor.modseq,
                "UIDNEXT": cursor.uidnext,
                "MESSAGES": cursor.count,
            }
            if any(items[k] != v for k, v in recorded.items() if k in items):
                return False
        return True

    def push_sources(self) -> list[PushSource]:
        sources: list[PushSource] = []
        if self.schedule.watch_maildir and isinstance(self.account.local, MaildirRepository):
            sources.append(MaildirPush(self.account.local, self.own, self.schedule.rescan))
        if isinstance(self.account.remote, ImapRepository):
            sources.append(server_push(self.account, self.account.remote))
        return sources

    async def keepalive(self) -> None:
        for store in self._stores or ():
            try:
                await store.keepalive()
            except Exception as exc:  # a keepalive must never take the account down
                log.debug("account.keepalive_failed", account=self.name, error=str(exc))

    async def drop_connections(self) -> None:
        if self._stores is not None:
            stores, self._stores = self._stores, None
            for store in stores:
                try:
                    await store.drop()
                except Exception as exc:  # a dead connection must not keep the sync waiting
                    log.debug("account.drop_failed", account=self.name, error=str(exc))

    async def close(self) -> None:
        self.restamps.close()
        if self._stores is not None:
            stores, self._stores = self._stores, None
            await _close_stores(self.name, stores)
        if self._state is not None:
            state, self._state = self._state, None
            await state.close()


def _tell_pushed(remote: Store, pushed: Mapping[str, Mapping[str, int]] | None) -> None:
    """The held server store is told the statuses a push gave of the mailboxes a sync is for
    (``ImapStore.pushed``: it then need not list the folders again), where the push told each
    one's status (``status_from``) with its HIGHESTMODSEQ (a listed status without it is not
    taken, and the held session with it); None: forgotten."""
    from mailtide.stores.imap import ImapStore
    from mailtide.stores.imap.mailbox import status_from

    if not isinstance(remote, ImapStore):
        return
    statuses = {name: status_from(items) for name, items in (pushed or {}).items()}
    told = {n: s for n, s in statuses.items() if s is not None and s.highestmodseq is not None}
    remote.pushed(told if pushed is not None and len(told) == len(statuses) else None)


async def _close_stores(account: str, stores: tuple[Store, Store], hurry: bool = False) -> None:
    for store in stores:
        try:
            await store.close(hurry)
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
        # Imported here: watchdog costs every one-shot sync's start-up, and only a daemon watches.
        from mailtide.stores.maildir.watch import MaildirWatcher

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
        forget_unused_token_sessions(config)
        return daemon_accounts(config, names), max_sync_accounts(config)

    return load


def forget_unused_token_sessions(config: Config) -> None:
    """Drop the OAuth2 token sessions of repositories ``config`` no longer has as they were."""
    from mailtide.auth.oauth2_source import keep_sessions

    keep_sessions(
        (r.oauth2, r.user, r.host)
        for r in config.repositories
        if isinstance(r, ImapRepository) and r.oauth2 is not None
    )


def max_sync_accounts(config: Config) -> int:
    return config.general.max_sync_accounts


def daemon_accounts(config: Config, names: Sequence[str] | None = None) -> list[WiredAccount]:
    """The accounts a daemon drives: ``names`` (those still in the config), else
    ``general.accounts``."""
    chosen = [n for n in names if n in config.account_names] if names else config.general.accounts
    return [WiredAccount(config, config.account(name)) for name in chosen]
