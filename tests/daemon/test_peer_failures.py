"""The failures users report of other mail daemons (OfflineIMAP, goimapnotify), each a test of
mailtide's daemon against the private Dovecot. Others are covered elsewhere: a resume
(test_daemon_process), a connection broken or stalled during push (test_daemon_faults),
memory over time (test_soak), the watchdog (test_watchdog), kill -9 (test_daemon_faults).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import imap_helpers as srv
from daemon_helpers import Daemon, eventually, local_ids, settled, with_account_keys
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, write_config
from fake_imap import FakeMessage, FakeServer, chatter_forever, serve


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


def test_mail_that_lands_during_a_sync_arrives_without_waiting_for_a_timer(
    setup: Setup, daemons: Callable[..., Daemon]
) -> None:
    """OfflineIMAP #421: no IDLE during a sync, so mail landing mid-sync waits for the next
    autorefresh.  Here push runs on its own connection all the time."""
    s = setup
    srv.append_many(s.imap, "Big", [srv.make_message(i, "Big") for i in range(1500)])
    d = daemons(write_config(s))
    eventually(lambda: "event=folder.created" in d.output, 30, "the first sync under way", d)
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])
    # the timer is 15 min away: only push can bring it
    eventually(lambda: srv.message_id(1, "INBOX") in local_ids(s), 60, "mid-sync mail", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_push_needs_no_autorefresh(setup: Setup, daemons: Callable[..., Daemon]) -> None:
    """OfflineIMAP #215: idlefolders need, but do not force, autorefresh.  With autorefresh
    = 0 mailtide syncs on push alone, again and again (OfflineIMAP #65: IDLE once per
    refresh)."""
    s = setup
    d = daemons(with_account_keys(write_config(s), autorefresh=0))
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    for i in range(1, 4):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), [])
        eventually(lambda i=i: srv.message_id(i, "INBOX") in local_ids(s), 5, f"push {i}", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_ctrl_c_stops_at_once(setup: Setup, daemons: Callable[..., Daemon]) -> None:
    """OfflineIMAP #277/#537: Ctrl-C hangs and needs kill -9."""
    d = daemons(write_config(setup))
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    d.signal(signal.SIGINT)
    code, took = d.wait_exit(10)
    assert code == 0 and took < 2, (code, took)


def test_one_hung_account_does_not_hold_up_the_others(
    setup: Setup, daemons: Callable[..., Daemon], dovecot: Dovecot, tmp_path: Path
) -> None:
    """OfflineIMAP #38: the autorefresh of one account blocks the others.  Here an account
    whose server keeps a FETCH alive forever syncs alone; the other account goes on."""
    s = setup
    stuck = FakeServer({"INBOX": [FakeMessage(1, b"Subject: x\r\n\r\nbody\r\n")]})
    stuck.faults[("INBOX", 1, "listing")] = chatter_forever
    with serve(stuck):
        config = write_config(s)
        config.write_text(
            config.read_text()
            + f"""
[account.stuck]
local = "stuck-local"
remote = "stuck-remote"

[repository.stuck-local]
type = "maildir"
path = "{tmp_path / "Stuck"}"

[repository.stuck-remote]
type = "imap"
host = "127.0.0.1"
port = {stuck.port}
tls = "none"
user = "me"
password = "secret-password"
"""
        )
        d = daemons(config)
        eventually(
            lambda: "account=test" in d.output and "event=account.done" in d.output,
            20,
            "the good account's first sync",
            d,
        )
        for i in range(1, 3):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), [])
            eventually(lambda i=i: srv.message_id(i, "INBOX") in local_ids(s), 10, f"mail {i}", d)
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10)[0] == 0
