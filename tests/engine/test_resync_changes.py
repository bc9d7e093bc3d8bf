"""A re-sync costs in proportion to what changed, not to the mailbox: it reads from the state
only the records the changes name (a server's CHANGEDSINCE and VANISHED, a Maildir listing
compared with the recorded ids and flags), through the real Dovecot, and still carries every
change both ways."""

from __future__ import annotations

import os

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from engine.test_maildir_skip import flags_on_server, settled, synced
from engine_helpers import Setup, assert_in_sync
from mailtide.state import db
from mailtide.stores.maildir import listing

SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"
BIG = 60  # messages in INBOX: far more than a change touches


@pytest.fixture
def records_read(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """From now until the test ends, the (far id, near id) of every record read from the state."""
    seen: list[tuple[str, str]] = []
    real = db._record_of

    def spy(row: object) -> object:
        record = real(row)  # type: ignore[arg-type]
        seen.append(record.ids)
        return record

    monkeypatch.setattr(db, "_record_of", spy)
    return seen


def big_inbox(s: Setup) -> None:
    messages = [srv.make_message(i, "INBOX") for i in range(BIG)]
    srv.append_many(s.imap, "INBOX", messages, [SEEN])
    settled(s, ("INBOX",))


def test_a_few_changes_on_both_sides_read_only_their_records(
    setup: Setup, records_read: list[tuple[str, str]]
) -> None:
    s = setup
    big_inbox(s)
    records_read.clear()
    srv.set_flags(s.imap, "INBOX", srv.message_id(1, "INBOX"), [FLAGGED])
    srv.append(s.imap, "INBOX", srv.make_message(500, "INBOX"), [SEEN])
    local = loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(2, "INBOX")]
    loc.set_letters(local, local.letters + "R")
    synced(s)
    # the two records the changes name (the new message has none yet)
    assert 1 <= len(records_read) <= 2, records_read
    here = loc.by_message_id(s.root, s.layout, "INBOX")
    assert "F" in here[srv.message_id(1, "INBOX")].letters
    assert srv.message_id(500, "INBOX") in here
    assert ANSWERED in flags_on_server(s, "INBOX")[srv.message_id(2, "INBOX")]
    assert_in_sync(s)


def test_deletions_on_either_side_read_only_the_records_of_what_went(
    fs_setup: Setup, records_read: list[tuple[str, str]]
) -> None:
    s = fs_setup
    big_inbox(s)
    records_read.clear()
    srv.expunge(s.imap, "INBOX", srv.message_id(3, "INBOX"))
    loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(4, "INBOX")].path.unlink()
    synced(s)
    assert len(records_read) == 2, records_read
    assert srv.message_id(3, "INBOX") not in loc.by_message_id(s.root, s.layout, "INBOX")
    assert srv.message_id(4, "INBOX") not in flags_on_server(s, "INBOX")
    assert len(loc.messages(s.root, s.layout, "INBOX")) == BIG - 2
    assert_in_sync(s)


def test_a_mass_deletion_found_by_changes_is_still_refused(fs_setup: Setup) -> None:
    """The guard weighs what the side holds, which the changed path counts from the records."""
    s = fs_setup
    big_inbox(s)
    for msg in loc.messages(s.root, s.layout, "INBOX")[: BIG * 3 // 4]:
        msg.path.unlink()
    report = s.sync()
    assert report.failed
    assert "would delete 45 of 60 messages on the remote side" in report.failures()[0]
    assert len(flags_on_server(s, "INBOX")) == BIG


def test_server_deletions_below_the_share_pass_when_the_maildir_is_listed(
    fs_setup: Setup,
) -> None:
    """A quarter of the mailbox deleted on the server while the Maildir changed too (so it is
    listed): the guard weighs the whole listing, not the few messages the changes name."""
    s = fs_setup
    big_inbox(s)
    for n in range(BIG // 4):
        srv.expunge(s.imap, "INBOX", srv.message_id(n, "INBOX"))
    local = loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(BIG - 1, "INBOX")]
    loc.set_letters(local, local.letters + "F")
    synced(s)
    assert len(loc.messages(s.root, s.layout, "INBOX")) == BIG - BIG // 4
    assert_in_sync(s)


@pytest.fixture
def folders_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now until the test ends, every directory the Maildir listings and searches read
    (new/ and cur/ of a folder: its messages; the root and tmp/ are read every run)."""
    seen: list[str] = []
    real = os.scandir

    def spy(path: str | int) -> object:
        if not isinstance(path, int):  # a directory open by its descriptor is not listed
            seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(listing.os, "scandir", spy)
    return seen


def test_a_server_flag_change_finds_its_file_by_name_not_by_reading_the_folder(
    setup: Setup, folders_read: list[str]
) -> None:
    s = setup
    big_inbox(s)
    folders_read.clear()
    srv.set_flags(s.imap, "INBOX", srv.message_id(3, "INBOX"), [FLAGGED])
    synced(s)
    assert "F" in loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(3, "INBOX")].letters
    assert [p for p in folders_read if p.endswith(("/new", "/cur"))] == []
    assert_in_sync(s)


def test_a_file_named_otherwise_than_its_flags_say_is_still_found(setup: Setup) -> None:
    """A mail client that wrote the info letters out of order: the file is not where its
    flags put it, and a readdir finds it."""
    s = setup
    path = loc.deliver(s.root, s.layout, "INBOX", srv.make_message(700, "INBOX"))
    settled(s, ("INBOX",))
    unordered = path.parent.parent / "cur" / f"{path.name}:2,SF"
    os.rename(path, unordered)
    settled(s, ("INBOX",))
    srv.set_flags(s.imap, "INBOX", srv.message_id(700, "INBOX"), [ANSWERED])
    synced(s)
    here = loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(700, "INBOX")]
    assert sorted(here.letters) == ["F", "R", "S"]
    assert not unordered.exists()
    assert_in_sync(s)
