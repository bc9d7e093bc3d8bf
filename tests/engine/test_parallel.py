"""A one-shot sync takes several mailboxes at once, each on a connection of its own, as many
as ``max_connections`` allows besides the store's own (folder list, namespace)."""

from __future__ import annotations

from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import assert_in_sync, make_setup
from fault_proxy import Shape, fault_proxy
from mailtide.config.model import DaemonSettings

FOLDERS = ["INBOX", "Archive", "Lists/dev", "Lists/python", "Sent", "Work"]


@pytest.mark.parametrize(("max_connections", "connections"), [(2, 2), (4, 4)])
def test_mailboxes_sync_at_once_up_to_max_connections(
    imap_account: ImapAccount, tmp_path: Path, max_connections: int, connections: int
) -> None:
    for folder in FOLDERS:
        srv.append_many(imap_account, folder, [srv.make_message(i, folder) for i in range(5)])
    # a slow link keeps each mailbox's connection busy while the next mailbox starts
    with fault_proxy(imap_account.port, shape=Shape.of(20)) as proxy:
        s = make_setup(imap_account, tmp_path, "fs", port=proxy.port).with_account(
            daemon=DaemonSettings(max_connections=max_connections)
        )
        report = s.sync()
        assert not report.failed, report.failures()
        assert proxy.connections == connections
        # and the next run has nothing to do
        again = s.sync()
        assert not again.failed, again.failures()
        assert sum(sum(m.copied) + sum(m.deleted) for m in again.mailboxes) == 0
    # reported in the order of the folders, whichever finished first
    assert [m.name for m in report.mailboxes] == sorted(FOLDERS, key=lambda f: (f != "INBOX", f))
    assert_in_sync(s)
    for folder in FOLDERS:
        assert len(loc.messages(s.root, "fs", folder)) == 5
