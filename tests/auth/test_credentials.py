"""A configured repository's credential source, through ``wiring.open_store`` and a real
Dovecot: asked at every connect (a changed password is used without a new store), once per
connect, and a refused password is tried once per run."""

from __future__ import annotations

import asyncio
import imaplib
import time
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from engine_helpers import make_setup
from fault_proxy import FaultProxy
from mailtide.auth.credentials import PasswordSource, credentials_for
from mailtide.config import ImapRepository
from mailtide.engine.account import Retry
from mailtide.engine.run import sync_stores
from mailtide.stores.base import AuthenticationFailed, FolderInfo
from mailtide.stores.imap import ImapStore
from mailtide.wiring import (
    Request,
    filters_of,
    open_state,
    open_store,
    options_for,
    sync_account,
)

# Of different lengths: Dovecot re-reads a user's password file when its size or mtime changed.
OLD = "Old-pw-1"
NEW = "New-password-22"


def file_command(tmp_path: Path, password: str) -> tuple[Path, tuple[str, ...], Path]:
    """A password_command that prints the first line of a file and counts its runs."""
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    runs = tmp_path / "runs"
    script = 'echo run >> "$1"; head -n 1 "$0"'
    return secret, ("sh", "-c", script, str(secret), str(runs)), runs


def server_takes(account: ImapAccount) -> None:
    """Wait until Dovecot takes the account's new password (it looks at a changed password
    file at most once a second)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with srv.session(account):
                return
        except imaplib.IMAP4.error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def runs_of(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def repository(account: ImapAccount, command: tuple[str, ...]) -> ImapRepository:
    return ImapRepository(
        name="remote",
        host=account.host,
        port=account.port,
        user=account.user,
        tls="none",
        password_command=command,
        timeout=10.0,
    )


async def test_a_changed_password_is_used_by_the_next_connection(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path
) -> None:
    account = dovecot.account(imap_account.user, OLD)
    secret, command, runs = file_command(tmp_path, OLD)
    store = await open_store(repository(account, command))
    assert isinstance(store, ImapStore)
    try:
        await store.connect()
        assert [f.name for f in await store.list_folders()] == ["INBOX"]
        await store.close()
        # The password changes on the server and in the file the command reads.
        server_takes(dovecot.account(account.user, NEW))
        secret.write_text(NEW + "\n")
        await store.connect()
        assert [f.name for f in await store.list_folders()] == ["INBOX"]
    finally:
        await store.close()
    assert runs_of(runs) == 2
    # The old password is refused now, so the second connect really used the new one.
    old = replace(repository(account, command), password=OLD, password_command=None)
    with pytest.raises(AuthenticationFailed):
        await (await open_store(old)).connect()


async def test_the_command_runs_once_per_connection(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path
) -> None:
    account = dovecot.account(imap_account.user, OLD)
    _, command, runs = file_command(tmp_path, OLD)
    store = await open_store(repository(account, command))
    try:
        assert runs_of(runs) == 0  # nothing runs before a connection needs it
        await store.connect()
        assert runs_of(runs) == 1
        box = await store.open("INBOX")  # the store's own connection goes to it
        await box.close()
        assert runs_of(runs) == 1
        await store.list_folders()  # the store opens another for itself
        assert runs_of(runs) == 2
        box = await store.open("INBOX")  # the mailbox's, back from the pool
        await box.close()
        assert runs_of(runs) == 2
    finally:
        await store.close()


def test_a_wrong_password_is_tried_once_per_run(imap_account: ImapAccount, tmp_path: Path) -> None:
    """However many retries the account allows: a refused login is no lost connection."""
    with FaultProxy(imap_account.port, record=True) as proxy:
        s = make_setup(imap_account, tmp_path, port=proxy.port, password="wrong-Pa55")
        s = s.with_account(retries=5, retry_delay=0.05)
        report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
        up = proxy.stream("up")
    assert proxy.connections == 1
    assert up.count(b" LOGIN ") == 1, up
    (line,) = report.failures()
    assert line == (
        f"account test: authentication failed for user {imap_account.user} at "
        f"127.0.0.1:{proxy.port}: the server refused the password from the config file: "
        "Authentication failed."
    )


def test_a_failing_password_command_fails_the_run_before_any_login(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """The command runs when a connection needs it: its failure is the account's one line."""
    command = ("sh", "-c", "echo 'gpg: decryption failed' >&2; exit 2")
    with FaultProxy(imap_account.port, record=True) as proxy:
        s = make_setup(
            imap_account, tmp_path, port=proxy.port, password=None, password_command=command
        )
        report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
        up = proxy.stream("up")
    assert report.failures() == [
        'account test: password_command "sh" failed with exit 2: gpg: decryption failed'
    ]
    assert b" LOGIN " not in up and proxy.connections == 1


def test_the_source_shows_no_secret() -> None:
    literal = ImapRepository(name="r", host="h", user="me", password="Hunter2-pw")
    source = credentials_for(literal)
    assert "Hunter2-pw" not in repr(source)
    assert isinstance(source, PasswordSource) and source.origin == "from the config file"
    argv = ("pass", "--passphrase=Tr0ub4dor")
    command = credentials_for(replace(literal, password=None, password_command=argv))
    assert "Tr0ub4dor" not in repr(command)
    assert isinstance(command, PasswordSource)
    assert command.origin == 'printed by password_command "pass"'


async def test_a_password_refused_while_making_folders_stops_the_run(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path
) -> None:
    """The store's idle connection drops after the folders were listed, and the password
    changed meanwhile: the refused login when making the first folder stops the account.  It
    is no folder name the server refuses, which would log in again for every next folder."""
    account = dovecot.account(imap_account.user, OLD)
    secret, command, _ = file_command(tmp_path, OLD)
    with FaultProxy(account.port, record=True) as proxy:
        s = make_setup(account, tmp_path, port=proxy.port, password=None, password_command=command)
        for folder in ("a", "b", "c"):
            loc.deliver(s.root, s.layout, folder, srv.make_message(1, folder))
        remote = await open_store(s.account.remote)
        assert isinstance(remote, ImapStore)
        listed = remote.list_folders

        async def list_then_drop() -> list[FolderInfo]:
            folders = await listed()
            remote.list_folders = listed  # type: ignore[method-assign]
            secret.write_text("Wrong-pw\n")
            assert remote._client is not None
            await remote._client.close()  # as a server does with an idle connection
            return folders

        remote.list_folders = list_then_drop  # type: ignore[method-assign]
        local = await open_store(s.account.local)
        state = await open_state(s.config, s.account)
        try:
            report = await sync_stores(
                "test",
                (remote, local),
                filters_of(s.account),
                state,
                options_for(s.account, Request()),
                Retry(5, 0.05),
            )
        finally:
            await state.close()
            await remote.close()
        up = proxy.stream("up")
    assert up.count(b" LOGIN ") == 2, up  # the first connection's, and the refused one
    assert report.stranded == []
    assert report.error is not None
    assert report.error.startswith(f"authentication failed for user {account.user} at "), report
