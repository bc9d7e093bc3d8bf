"""A running daemon reads its password source again at every connect: a password changed on
the server and in the source (a rotation) is used by the next sync, without a restart or a
reload, and the sync in between never fails."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

import imap_helpers as srv
from daemon_helpers import Daemon, eventually, local_ids, settled, with_account_keys
from dovecot import Dovecot, ImapAccount
from engine_helpers import make_setup, write_config
from password_sources import SOURCES, random_password, use_source

# The literal password is the config file's: changing it is a reload (SIGHUP), not this.
READ_AT_CONNECT = [name for name in SOURCES if name != "password"]


@pytest.mark.parametrize("source", READ_AT_CONNECT)
def test_a_daemon_logs_in_with_the_rotated_password(
    source: str,
    dovecot: Dovecot,
    imap_account: ImapAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = random_password(), random_password()
    account = dovecot.account(imap_account.user, old)
    s = make_setup(account, tmp_path)
    config = use_source(write_config(s), SOURCES[source](tmp_path, account, old, monkeypatch))
    # Each sync on a connection of its own, so that each asks the source.
    with_account_keys(config, hold_connection_open=False)
    daemon = Daemon(config, None)
    try:
        eventually(lambda: "event=account.done" in daemon.output, 60, "a first sync", daemon)
        settled(daemon)  # no sync runs while the two sides disagree
        rotated = dovecot.account(account.user, new)
        time.sleep(1.2)  # Dovecot reads a changed password file after a second
        SOURCES[source](tmp_path, account, new, monkeypatch)
        srv.append(rotated, "INBOX", srv.make_message(1, "INBOX"))
        daemon.signal(signal.SIGUSR1)
        arrived = srv.message_id(1, "INBOX")
        eventually(lambda: arrived in local_ids(s), 30, "synced with it", daemon)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit(30)[0] == 0
    finally:
        daemon.close()
    assert "event=account.failed" not in daemon.output, daemon.output
