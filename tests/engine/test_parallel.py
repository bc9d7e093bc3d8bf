"""A one-shot sync takes several mailboxes at once, each on a connection of its own, as many
as ``max_connections`` allows besides the store's own (folder list, namespace).  The first
mailbox to need a connection takes the store's own once it has listed the folders: a run that
changes one mailbox logs in once."""

from __future__ import annotations

from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import assert_in_sync, make_setup
from fault_proxy import Shape, fault_proxy
from mailtide import wiring
from mailtide.config.model import DaemonSettings

FOLDERS = ["INBOX", "Archive", "Lists/dev", "Lists/python", "Sent", "Work"]


@pytest.mark.parametrize(("max_connections", "connections"), [(2, 1), (4, 3)])
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


def test_a_sync_with_nothing_to_do_opens_only_the_stores_connection(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """A listed mailbox takes its own connection only when a command needs one, so a no-change
    sync of many mailboxes logs in once (each further login costs a handshake and round trips
    on a real link); a mailbox that changed gets one, the store's own when no other."""
    for folder in FOLDERS:
        srv.append_many(imap_account, folder, [srv.make_message(i, folder) for i in range(2)])
    with fault_proxy(imap_account.port) as proxy:
        s = make_setup(imap_account, tmp_path, "fs", port=proxy.port).with_account(
            daemon=DaemonSettings(max_connections=4)
        )
        assert not s.sync().failed
        before = proxy.connections
        again = s.sync()
        assert not again.failed, again.failures()
        assert proxy.connections - before == 1
        srv.append_many(imap_account, "Work", [srv.make_message(9, "Work")])
        before = proxy.connections
        third = s.sync()
        assert not third.failed, third.failures()
        assert proxy.connections - before == 1  # the store's own, then Work's
    assert_in_sync(s)
    assert len(loc.messages(s.root, "fs", "Work")) == 3


def test_a_mailbox_synced_alone_reads_with_the_whole_budget_of_bodies(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mailboxes synced at once share the bodies' budget; a one-folder account's INBOX is
    synced alone (so is a run's last mailbox), and has all of it: its FETCHes ask for more
    at a time, and more is in flight while the sync writes.  With 2 MiB: a read-ahead of
    1 MiB in pieces of 256 KiB, two 100 KiB messages each; a third of it (three mailboxes at
    once with max_connections = 4) would be one message each."""
    monkeypatch.setattr(wiring, "BATCH_BYTES", 2 << 20)
    body = b"x" * (100 * 1024 - 2) + b"\r\n"
    srv.append_many(imap_account, "INBOX", [srv.make_message(i, "INBOX") + body for i in range(20)])
    with fault_proxy(imap_account.port, record=True) as proxy:
        s = make_setup(imap_account, tmp_path, "fs", port=proxy.port).with_account(
            daemon=DaemonSettings(max_connections=4)
        )
        report = s.sync()
        assert not report.failed, report.failures()
        fetches = proxy.stream("up").count(b"BODY.PEEK[])")
    assert fetches == 10
    assert len(loc.messages(s.root, "fs", "INBOX")) == 20
    assert_in_sync(s)


@pytest.mark.parametrize(("changed", "connections"), [(1, 1), (2, 2), (5, 3)])
def test_a_run_opens_ahead_one_connection_for_each_changed_mailbox_it_syncs_at_once(
    imap_account: ImapAccount, tmp_path: Path, changed: int, connections: int
) -> None:
    """The connections of the mailboxes synced at once are begun while the run plans
    (``ImapStore.warm``), one for each mailbox whose listed status moved, at most as many as
    run at once: never one that no mailbox takes."""
    for folder in FOLDERS:
        srv.append_many(imap_account, folder, [srv.make_message(i, folder) for i in range(2)])
    with fault_proxy(imap_account.port, shape=Shape.of(20)) as proxy:
        s = make_setup(imap_account, tmp_path, "fs", port=proxy.port).with_account(
            daemon=DaemonSettings(max_connections=4)
        )
        assert not s.sync().failed
        for folder in FOLDERS[:changed]:
            srv.append(s.imap, folder, srv.make_message(9, folder), [])
        proxy.arm()
        assert not s.sync().failed
        assert proxy.connections == connections
    for folder in FOLDERS[:changed]:
        assert srv.message_id(9, folder) in loc.by_message_id(s.root, "fs", folder)
    assert_in_sync(s)
