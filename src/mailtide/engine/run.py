"""Run syncs from a configuration: the entry point the CLI (and later the daemon) calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import structlog

from mailtide.config.model import (
    Account,
    Config,
    ImapRepository,
    MaildirRepository,
    Repository,
)
from mailtide.core.model import Side
from mailtide.engine.account import AccountReport, AccountSync, Retry
from mailtide.engine.pair import Options
from mailtide.state.db import StateDB, StateError
from mailtide.stores.base import Store, StoreError

log = structlog.get_logger(__name__)


async def open_store(repo: Repository, read_only: bool = False) -> Store:
    """A store for a configured repository (not yet connected); ``read_only`` for a dry run."""
    if isinstance(repo, ImapRepository):
        from mailtide.auth.password import resolve_password
        from mailtide.stores.imap import ImapSettings, ImapStore

        password = await resolve_password(repo)
        return ImapStore(
            ImapSettings(
                host=repo.host,
                port=repo.port,
                user=repo.user,
                password=password,
                tls=repo.tls,
                ca_file=str(repo.ca_file) if repo.ca_file else None,
                timeout=repo.timeout,
            ),
            read_only=read_only,
        )
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    return MaildirStore(MaildirSettings(str(repo.path), repo.layout), read_only=read_only)


def _first_sync_roots(account: Account, dry_run: bool) -> None:
    """An account that has never synced may create its Maildir root, and an existing one must
    hold a Maildir of its layout or nothing (StoreError).  After that a missing root is an
    error (an unmounted disk must never look like "every message was deleted")."""
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    for repo in (account.local, account.remote):
        if isinstance(repo, MaildirRepository):
            store = MaildirStore(MaildirSettings(str(repo.path), repo.layout), read_only=dry_run)
            if store.prepare_first_sync(f"[repository.{repo.name}]"):
                log.info("maildir.root_created", account=account.name, path=str(repo.path))


async def sync_account(
    config: Config,
    account: Account,
    *,
    folders: Sequence[str] | None = None,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    mode: Literal["full", "quick"] = "quick",
) -> AccountReport:
    """Sync one account (all its folders, or only ``folders``), in ``mode`` (see ``Options``)."""
    options = Options(
        mode=mode,
        dry_run=dry_run,
        allow_mass_delete=allow_mass_delete,
        mass_delete_share=account.mass_delete_share,
        mass_delete_floor=account.mass_delete_floor,
    )
    try:
        stores = (
            await open_store(account.remote, read_only=dry_run),
            await open_store(account.local, read_only=dry_run),
        )
        state = StateDB.for_account(config.general.state_dir, account.name, dry_run=dry_run)
    except (StoreError, StateError) as exc:
        return AccountReport(account.name, error=str(exc))
    try:
        if not state.known_folders() and not state.moved_aside:
            _first_sync_roots(account, dry_run)
    except StoreError as exc:
        state.close()  # releases the account's lock
        return AccountReport(account.name, error=str(exc))
    if state.moved_aside:
        log.warning("state.moved_aside", account=account.name, message=state.moved_aside)
    filters = (account.remote.folders, account.local.folders)
    try:
        retry = Retry(account.retries, account.retry_delay)
        sync = AccountSync(account.name, stores, filters, state, options, only=folders, retry=retry)
        report = await sync.run()
    finally:
        state.close()
    if state.moved_aside:
        report.warnings.insert(0, state.moved_aside)
    return report


def _print_report(report: AccountReport, dry_run: bool) -> None:
    """The account's totals (each mailbox logged its own line; failures were logged where they
    happened)."""
    if report.error:
        return
    total = [sum(m.copied[s] for m in report.mailboxes) for s in Side]
    log.info(
        "account.done",
        account=report.name,
        mailboxes=len(report.mailboxes),
        failed=sum(1 for m in report.mailboxes if m.error),
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
    mode: Literal["full", "quick"] = "quick",
) -> list[AccountReport]:
    """Sync the named accounts (default: ``general.accounts``) one after the other."""
    names = list(accounts or config.general.accounts)
    reports = []
    for name in names:
        try:
            report = await sync_account(
                config,
                config.account(name),
                folders=folders,
                dry_run=dry_run,
                allow_mass_delete=allow_mass_delete,
                mode=mode,
            )
        except Exception as exc:  # a bug must cost one account, not the others
            why = f"internal error: {type(exc).__name__}: {exc}"
            log.error("account.failed", account=name, error=why, exc_info=True)
            report = AccountReport(name, error=why)
        _print_report(report, dry_run)
        reports.append(report)
    return reports
