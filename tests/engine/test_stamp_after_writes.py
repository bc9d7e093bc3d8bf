"""A one-shot sync that wrote into a Maildir folder on a local file system with sub-second
times records the folder's stamp at its end (waiting a fraction of a second at most), so the
next sync does not list it; nothing is waited for where the times are whole seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import assert_in_sync, make_setup
from mailtide.stores.maildir import local_clock
from mailtide.stores.maildir.local_clock import stamps_finely
from stores.maildir.listing_spy import record_listings


@pytest.fixture
def _own_writes_not_restamped() -> None:
    """These tests are of the restamping the suite's fixture of that name leaves out."""


def test_the_next_sync_does_not_list_a_folder_the_last_one_wrote_into(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_clock, "_types", None)  # this machine's own mounts, read again
    if not stamps_finely(os.stat(tmp_path).st_dev):
        pytest.skip("the test's file system keeps whole seconds or another machine's clock")
    s = make_setup(imap_account, tmp_path, "fs")
    for i in range(3):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"])
    assert not s.sync().failed
    time.sleep(0.3)  # a later run: the first one's writes are settled by then
    srv.append(s.imap, "INBOX", srv.make_message(7, "INBOX"), [])
    assert not s.sync().failed  # downloads into INBOX: its own write moves the stamp
    listed = record_listings(monkeypatch)
    srv.append(s.imap, "INBOX", srv.make_message(8, "INBOX"), [])
    assert not s.sync().failed
    assert listed == []  # the stamp recorded after the write vouched for the folder
    assert {srv.message_id(i, "INBOX") for i in (7, 8)} <= set(
        loc.by_message_id(s.root, s.layout, "INBOX")
    )
    assert_in_sync(s)


def test_a_folder_whose_changes_only_went_to_the_server_is_not_listed_next_time(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The move pass plans a pair whose Maildir changed and carries its plan without opening
    the Maildir again when only the server is written: the stamp read before that listing
    still vouches for the folder, so the next run does not list it (before, it was listed
    again after every local change)."""
    s = make_setup(imap_account, tmp_path, "fs")
    for i in range(3):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), [])
    assert not s.sync().failed
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    loc.set_letters(local[srv.message_id(0, "INBOX")], "F")  # a flag set, as a reader does
    os.unlink(local[srv.message_id(1, "INBOX")].path)  # a message deleted
    time.sleep(1.1)  # the change's times settled, on any file system
    assert not s.sync().failed  # carried to the server only
    listed = record_listings(monkeypatch)
    assert not s.sync().failed
    assert listed == []
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held == {srv.message_id(0, "INBOX"): {"\\Flagged"}, srv.message_id(2, "INBOX"): set()}
    assert_in_sync(s)


def test_every_folder_a_sync_wrote_into_is_stamped_at_its_end(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamps of many folders written in one run are recorded together at its end (the
    mailboxes' writes in one group): each of them, none lost to another's."""
    monkeypatch.setattr(local_clock, "_types", None)  # this machine's own mounts, read again
    if not stamps_finely(os.stat(tmp_path).st_dev):
        pytest.skip("the test's file system keeps whole seconds or another machine's clock")
    folders = ["INBOX", "Alpha", "Beta", "Gamma", "Delta"]
    for name in folders[1:]:
        srv.create_folder(imap_account, name)
    s = make_setup(imap_account, tmp_path, "fs")
    for i, name in enumerate(folders):
        srv.append(s.imap, name, srv.make_message(i, name), [])
    assert not s.sync().failed
    time.sleep(0.3)  # a later run: the first one's writes are settled by then
    for i, name in enumerate(folders):
        srv.append(s.imap, name, srv.make_message(10 + i, name), ["\\Seen"])
    assert not s.sync().failed  # each folder written: each stamp moved, each recorded again
    listed = record_listings(monkeypatch)
    srv.append(s.imap, "Beta", srv.make_message(20, "Beta"), [])
    assert not s.sync().failed
    assert listed == []  # no folder listed: every one's stamp vouched for it
    assert srv.message_id(20, "Beta") in loc.by_message_id(s.root, s.layout, "Beta")
    assert_in_sync(s)
