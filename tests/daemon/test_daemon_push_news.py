"""What the daemon syncs for the server's push news: exactly the mailboxes it names, through
a real ``mailtide daemon`` and the private Dovecot (NOTIFY)."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import imap_helpers as srv
from daemon_helpers import Daemon, cli, eventually, local_ids, settled
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, write_config


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


def synced_since(d: Daemon, start: int) -> list[int]:
    """The number of mailboxes of each sync the daemon finished after ``start`` (an offset
    into its output)."""
    return [int(n) for n in re.findall(r"event=account\.done .*?mailboxes=(\d+)", d.output[start:])]


def test_a_delivery_into_a_non_ascii_folder_syncs_that_folder_only(
    setup: Setup, daemons: Callable[..., Daemon]
) -> None:
    # Dovecot 2.3 names Entwürfe in UTF-8 in NOTIFY's news, not in modified UTF-7.
    s = setup
    for folder in ("INBOX", "Work", "Entwürfe"):
        srv.append(s.imap, folder, srv.make_message(1, folder), [])
    d = daemons(write_config(s))
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    start = len(d.output)
    srv.append(s.imap, "Entwürfe", srv.make_message(2, "Entwürfe"), [])
    eventually(
        lambda: srv.message_id(2, "Entwürfe") in local_ids(s, "Entwürfe"), 10, "pushed", d
    )
    settled(d)
    assert synced_since(d, start) == [1], d.output[start:]
    (account,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
    assert account["last_sync"]["mailboxes"] == ["Entwürfe"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
