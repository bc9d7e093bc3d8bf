"""A mailbox opened twice in one sync (the engine's move pass, then its pair) is selected only
when something needs it: a no-change sync on a server with LIST-STATUS and QRESYNC sends no
SELECT at all.  A status given back is dropped as soon as anything is written, so a mailbox
that a MOVE filled is looked at afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup
from fault_proxy import fault_proxy

FOLDERS = ("INBOX", "Work", "Lists/python")


def synced_through_proxy(s: Setup) -> bytes:
    """A sync through a recording proxy: what mailtide sent."""
    with fault_proxy(s.imap.port, record=True) as proxy:
        report = s.with_account(remote=replace(s.account.remote, port=proxy.port)).sync()
        assert not report.failed and not report.error and not report.stranded, report
        return proxy.stream("up")


def test_a_no_change_sync_selects_no_mailbox(imap_account: ImapAccount, tmp_path: Path) -> None:
    # One pair at a time (as the daemon syncs): beside another open mailbox a status given
    # back is not trusted, since that mailbox's pair may write into this one.
    s = make_setup(imap_account, tmp_path)
    s = s.with_account(daemon=replace(s.account.daemon, max_connections=2))
    for i, folder in enumerate(FOLDERS):
        srv.append(imap_account, folder, srv.make_message(i, folder))
        loc.deliver(s.root, s.layout, folder, srv.make_message(10 + i, folder))
    s.sync()
    s.sync()  # keeps each side's listing digest: from now on an unchanged mailbox is skipped
    sent = synced_through_proxy(s)
    assert b" SELECT " not in sent and b" EXAMINE " not in sent, sent.decode()
    assert_in_sync(s)
    # A change in one mailbox: its pair selects it, and only it.
    srv.append(imap_account, "Work", srv.make_message(50, "Work"))
    sent = synced_through_proxy(s)
    assert b'SELECT "Work"' in sent, sent.decode()
    assert b'SELECT "INBOX"' not in sent and b'SELECT "Lists/python"' not in sent
    assert len(loc.messages(s.root, s.layout, "Work")) == 3
    assert_in_sync(s)


def test_a_message_moved_locally_reaches_its_folder_and_the_next_sync_changes_nothing(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    s = make_setup(imap_account, tmp_path)
    for i, folder in enumerate(FOLDERS):
        srv.append(imap_account, folder, srv.make_message(i, folder))
    s.sync()
    s.sync()
    (moved,) = loc.messages(s.root, s.layout, "Work")
    target = loc.folder_dir(s.root, s.layout, "Lists/python") / "cur" / moved.path.name
    moved.path.rename(target)  # a mail client's move: the server's MOVE fills Lists/python
    synced_through_proxy(s)
    assert_in_sync(s)
    assert [m.message_id for m in srv.fetch_all(imap_account, "Work")] == []
    assert len(srv.fetch_all(imap_account, "Lists/python")) == 2
    again = synced_through_proxy(s)
    assert b"APPEND" not in again and b"MOVE" not in again, again.decode()
    assert_in_sync(s)


def test_a_folder_filled_by_a_move_to_trash_is_synced_in_the_same_run(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    # INBOX's deletion moves the message to Trash on the server without selecting Trash: the
    # status Trash gave back after the move pass no longer holds, so its pair looks again.
    s = make_setup(imap_account, tmp_path).with_account(trash="Trash")
    srv.append(imap_account, "INBOX", srv.make_message(1, "INBOX"))
    srv.append(imap_account, "Trash", srv.make_message(2, "Trash"))
    s.sync()
    s.sync()
    (deleted,) = loc.messages(s.root, s.layout, "INBOX")
    deleted.path.unlink()
    synced_through_proxy(s)
    assert srv.fetch_all(imap_account, "INBOX") == []
    assert len(srv.fetch_all(imap_account, "Trash")) == 2
    assert len(loc.messages(s.root, s.layout, "Trash")) == 2
    assert_in_sync(s)
