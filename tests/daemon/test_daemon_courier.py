"""The daemon against Courier-IMAP 5.0: IDLE but no NOTIFY, no QRESYNC, no UIDPLUS, its
"INBOX." namespace. Server mail arrives by IDLE on INBOX and by the poll for the other
folders; local changes reach the server."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable

import imap_helpers as srv
import maildir_helpers as loc
from courier import Courier
from daemon_helpers import Daemon, cli, eventually, local_ids, settled, with_account_keys
from engine_helpers import make_setup, write_config


def test_idle_and_poll_on_a_server_without_notify(
    courier: Courier, daemons: Callable[..., Daemon], tmp_path: os.PathLike[str]
) -> None:
    acc = courier.account(f"c{os.getpid()}-daemon")
    s = make_setup(acc, tmp_path, "fs")  # type: ignore[arg-type]
    srv.append(acc, "INBOX", srv.make_message(1, "INBOX"), [])
    d = daemons(with_account_keys(write_config(s), poll=10))
    eventually(lambda: "event=account.done" in d.output, 30, "first sync", d)
    settled(d)
    status = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"][0]
    assert "IDLE on INBOX + poll every 10s" in status["push"], status
    srv.append(acc, "INBOX", srv.make_message(2, "INBOX"), [])
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 10, "INBOX by IDLE", d)
    # a folder made on the server: found by the poll, created locally, its mail copied
    srv.append(acc, "INBOX.Lists", srv.make_message(3, "Lists"), [])
    eventually(lambda: srv.message_id(3, "Lists") in local_ids(s, "Lists"), 20, "by the poll", d)
    # local changes go up without a signal
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(4, "INBOX"), "S")
    eventually(
        lambda: srv.message_id(4, "INBOX") in {m.message_id for m in srv.fetch_all(acc, "INBOX")},
        10,
        "a local message on Courier",
        d,
    )
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
