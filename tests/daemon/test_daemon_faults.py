"""The daemon against a server that is down, a password that stopped working, and a connection
that breaks: it waits with backoff, says so once, never spins, and syncs once things are back."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, cli, eventually, local_ids, settled, with_account_keys
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup, write_config
from fault_proxy import Fault, FaultProxy


@pytest.fixture
def start(daemons: Callable[..., Daemon]) -> Callable[[Path], Daemon]:
    return lambda config: daemons(config)


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
    (status,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
    assert status["state"] in ("offline", "syncing"), status
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
    (status,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
    assert status["state"] in ("login failed", "syncing"), status
    assert "authentication failed" in status["error"], status
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


@pytest.fixture
def plain(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


def test_a_maildir_root_gone_while_running_deletes_nothing_and_recovers(
    plain: Setup, start: Callable[[Path], Daemon]
) -> None:
    s = plain
    srv.append_many(s.imap, "INBOX", [srv.make_message(i, "INBOX") for i in range(20)])
    d = start(write_config(s))
    eventually(lambda: len(local_ids(s)) == 20, 20, "first sync", d)
    aside = s.root.parent / "unmounted"
    s.root.rename(aside)  # as an unmounted disk: the mount point's content is gone
    eventually(lambda: "does not exist (is it mounted?)" in d.output, 20, "the error said", d)
    assert len(srv.fetch_all(s.imap, "INBOX")) == 20, "nothing deleted on the server"
    aside.rename(s.root)
    srv.append(s.imap, "INBOX", srv.make_message(99, "INBOX"), [])
    eventually(lambda: srv.message_id(99, "INBOX") in local_ids(s), 30, "synced once back", d)
    assert len(srv.fetch_all(s.imap, "INBOX")) == 21
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_kill_9_mid_sync_then_a_new_daemon_converges(
    plain: Setup, start: Callable[[Path], Daemon]
) -> None:
    s = plain
    for folder in ("INBOX", "Archive"):
        srv.append_many(s.imap, folder, [srv.make_message(i, folder) for i in range(500)])
    config = write_config(s)
    d = start(config)
    eventually(lambda: len(local_ids(s)) > 0, 30, "the first sync under way", d)
    d.signal(signal.SIGKILL)
    d.wait_exit(10)
    again = start(config)  # the killed one's lock went with it
    eventually(lambda: "event=account.done" in again.output, 60, "a complete sync", again)
    assert_in_sync(s)
    again.signal(signal.SIGTERM)
    assert again.wait_exit(10)[0] == 0


def test_a_flood_of_local_changes_is_a_few_syncs(
    plain: Setup, start: Callable[[Path], Daemon]
) -> None:
    """A mail client marks 2,000 messages read at once: the debounce gathers the renames
    into a few syncs, and every flag reaches the server."""
    s = plain
    srv.append_many(s.imap, "INBOX", [srv.make_message(i, "INBOX") for i in range(2000)])
    d = start(write_config(s))
    eventually(lambda: len(local_ids(s)) == 2000, 60, "first sync", d)
    eventually(lambda: "event=account.done" in d.output, 10, "its summary", d)
    before = d.output.count("event=account.done")
    for m in loc.messages(s.root, "fs", "INBOX"):
        loc.set_letters(m, "S")

    def all_seen() -> bool:
        return all("\\Seen" in m.flags for m in srv.fetch_all(s.imap, "INBOX"))

    eventually(all_seen, 60, "every flag on the server", d)
    eventually(lambda: d.output.count("event=account.done") > before, 10, "that sync's end", d)
    time.sleep(1)  # any sync still to come from those renames
    syncs = d.output.count("event=account.done") - before
    assert 1 <= syncs <= 12, (syncs, d.output[-3000:])
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


@pytest.mark.parametrize("kind", ["cut", "reset", "stall"])
def test_server_push_survives_a_broken_connection(
    proxied: tuple[Setup, FaultProxy], start: Callable[[Path], Daemon], kind: str
) -> None:
    """Every connection (push and held sync ones) is cut, reset, or silently stalled at the
    next byte the server sends: the push source notices (at once, or by its keepalive NOOP
    for a stall), reconnects after its backoff, and new server mail still arrives."""
    s, proxy = proxied
    config = with_account_keys(write_config(s), keepalive=10)
    config.write_text(config.read_text().replace('tls = "none"', 'tls = "none"\ntimeout = 3', 1))
    srv.append(replace(s.imap, port=proxy.target[1]), "INBOX", srv.make_message(1, "INBOX"), [])
    d = start(config)
    eventually(lambda: "event=imap.push" in d.output, 20, "push running", d)
    settled(d)
    proxy.arm(Fault(kind, "down", after=0))  # whichever connection the server speaks on next
    direct = replace(s.imap, port=proxy.target[1])
    srv.append(direct, "INBOX", srv.make_message(2, "INBOX"), [])
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 40, "mail after the fault", d)
    assert proxy.fired, "the fault never fired: no test"
    assert "event=daemon.push_failed" in d.output, d.output[-3000:]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
