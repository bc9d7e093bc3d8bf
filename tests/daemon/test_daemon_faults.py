"""The daemon against a server that is down, a password that stopped working, and a connection
that breaks: it waits with backoff, says so once, never spins, and syncs once things are back."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
from daemon_helpers import Daemon, eventually, local_ids
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, write_config
from fault_proxy import FaultProxy


@pytest.fixture
def proxied(
    imap_account: ImapAccount, dovecot: Dovecot, tmp_path: Path
) -> Iterator[tuple[Setup, FaultProxy]]:
    with FaultProxy(dovecot.port) as proxy:
        yield make_setup(replace(imap_account, port=proxy.port), tmp_path, "fs"), proxy


@pytest.fixture
def start() -> Iterator[Callable[[Path], Daemon]]:
    started: list[Daemon] = []

    def run(config: Path) -> Daemon:
        d = Daemon(config)
        started.append(d)
        return d

    yield run
    for d in started:
        d.close()


def test_a_server_down_at_start_up_is_waited_for_and_synced_when_back(
    proxied: tuple[Setup, FaultProxy], start: Callable[[Path], Daemon]
) -> None:
    s, proxy = proxied
    srv.append(replace(s.imap, port=proxy.target[1]), "INBOX", srv.make_message(1, "INBOX"), [])
    proxy.down()
    d = start(write_config(s))
    eventually(lambda: "event=daemon.account_failing" in d.output, 20, "the failure said", d)
    time.sleep(3)
    attempts = d.output.count("event=account.failed")
    assert 1 <= attempts <= 4, f"{attempts} attempts in ~3 s: no tight loop\n{d.output}"
    assert d.output.count("level=warning event=daemon.account_failing") == 1, d.output
    proxy.up()
    eventually(lambda: srv.message_id(1, "INBOX") in local_ids(s), 40, "synced once back", d)
    eventually(lambda: "event=daemon.account_recovered" in d.output, 10, "recovery said", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_a_wrong_password_is_said_once_and_sigusr1_retries_at_once(
    setup_wrong_password: tuple[Setup, Dovecot], start: Callable[[Path], Daemon]
) -> None:
    s, dovecot = setup_wrong_password
    d = start(write_config(s))
    eventually(lambda: "event=daemon.account_failing" in d.output, 20, "the failure said", d)
    assert "authentication failed" in d.output, d.output
    time.sleep(4)
    logins = d.output.count("event=account.failed")
    assert logins <= 4, f"{logins} logins in ~4 s\n{d.output}"
    assert d.output.count("level=warning event=daemon.account_failing") == 1, d.output
    # the user fixes the password on the server side; SIGUSR1 retries without waiting
    dovecot.account(s.imap.user, s.imap.password)
    time.sleep(1.2)  # Dovecot reads a changed password file after a second
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])
    d.signal(signal.SIGUSR1)
    eventually(lambda: srv.message_id(1, "INBOX") in local_ids(s), 5, "synced at once", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


@pytest.fixture
def setup_wrong_password(
    imap_account: ImapAccount, dovecot: Dovecot, tmp_path: Path
) -> tuple[Setup, Dovecot]:
    """An account whose configured password the server does not (yet) accept."""
    dovecot.account(imap_account.user, "the-old-password-1")
    wrong = replace(imap_account, password="the-new-password-2")
    return make_setup(wrong, tmp_path, "fs"), dovecot
