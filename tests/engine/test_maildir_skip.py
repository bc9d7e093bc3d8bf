"""A sync lists a Maildir folder only when it may have changed since its last complete sync,
and never misses a change for skipping one: through the real Dovecot.

A folder is skipped on its stamp (``stores/maildir/stamp.py``): new/ and cur/ as they were
when a complete sync last found the listing matching the records.  Each test first waits
until the folders' times can prove something (``provable``: the stamp is given once the
second of the last change is over), as a sync a moment later would find them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup, run_sync, steps_of, write_config
from mailtide.stores.maildir.delivery import Delivery
from mailtide.stores.maildir.stamp import folder_stamp
from stores.maildir.coarse_fs import whole_second_fs
from stores.maildir.listing_spy import record_file_stats, record_listings

FLAGGED = "\\Flagged"
FOLDERS = ("INBOX", "Archive/2024", "Entwürfe")
TRIES = 6  # to fit a sync into one second on a loaded machine


@pytest.fixture
def _own_writes_not_restamped() -> None:
    """These tests are of the restamping the suite's fixture of that name leaves out."""


@pytest.fixture(autouse=True)
def stamps_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-shot sync records the stamps that settled by its end and waits for none
    (``Options.stamp_wait`` is 0: a run must not end a second later for the next one's
    sake); these tests follow a sync by another at once, so their syncs wait, as a sync
    that ended a second later would have found them."""
    from mailtide import wiring

    made = wiring.options_for
    monkeypatch.setattr(
        wiring,
        "options_for",
        lambda *a, **k: dataclasses.replace(made(*a, **k), stamp_wait=1.2),
    )


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The new/ and cur/ directories read while the test runs."""
    return record_listings(monkeypatch)


def fill(s: Setup, per_folder: int = 3, flags: tuple[str, ...] = ("\\Seen",)) -> None:
    with srv.session(s.imap) as c:
        for folder in FOLDERS:
            for i in range(per_folder):
                srv.append(s.imap, folder, srv.make_message(i, folder), flags, imap=c)


def folder_of(s: Setup, folder: str) -> str:
    return os.path.realpath(loc.folder_dir(s.root, s.layout, folder))


def folders_listed(listed: list[str]) -> set[str]:
    return {os.path.dirname(os.path.realpath(p)) for p in listed}


def provable(s: Setup, folders: tuple[str, ...] = FOLDERS) -> None:
    """Wait until every folder's times lie in a second that is over (at most a few seconds)."""
    deadline = time.monotonic() + 5
    while any(folder_stamp(folder_of(s, f)) is None for f in folders):
        assert time.monotonic() < deadline, "a folder kept changing"
        time.sleep(0.05)


def synced(s: Setup, **kwargs: object) -> None:
    report = s.sync(**kwargs)
    assert not report.failed, report


def delivered_unlisted(s: Setup, listed: list[str], n: int) -> None:
    """A new server message ``n`` reaches INBOX by a sync that lists no folder."""
    srv.append(s.imap, "INBOX", srv.make_message(n, "INBOX"), ["\\Seen"])
    listed.clear()
    synced(s)
    assert srv.message_id(n, "INBOX") in loc.by_message_id(s.root, s.layout, "INBOX")
    assert listed == []
    assert_in_sync(s)


def settled(s: Setup, folders: tuple[str, ...] = FOLDERS) -> None:
    """Synced, then once more once the times can prove it: the stamps are recorded."""
    synced(s)
    provable(s, folders)
    synced(s)


def flags_on_server(s: Setup, folder: str) -> dict[str, frozenset[str]]:
    return {m.message_id: m.flags for m in srv.fetch_all(s.imap, folder)}


def test_a_sync_with_nothing_changed_lists_no_folder_and_one_change_lists_its_folder(
    setup: Setup, listed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    fill(s)
    settled(s)
    listed.clear()
    stats = record_file_stats(monkeypatch)
    report = s.sync()
    assert not report.failed, report
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert listed == [] and stats == []
    # a flag set by a mail reader right away, in the second of that sync, is carried: and
    # only its folder is listed
    msg = loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(1, "INBOX")]
    loc.set_letters(msg, msg.letters + "F")
    synced(s)
    assert FLAGGED in flags_on_server(s, "INBOX")[srv.message_id(1, "INBOX")]
    assert folders_listed(listed) == {folder_of(s, "INBOX")}


def test_a_file_added_behind_an_mtime_put_back_is_synced(fs_setup: Setup) -> None:
    """``touch -d`` or ``os.utime`` can put a directory's mtime back, but its ctime moves."""
    s = fs_setup
    fill(s)
    settled(s)
    cur = Path(folder_of(s, "INBOX"), "cur")
    before = cur.stat()
    added = loc.deliver(s.root, s.layout, "INBOX", srv.make_message(50, "INBOX"), "S")
    assert added.parent == cur
    os.utime(cur, ns=(before.st_atime_ns, before.st_mtime_ns))
    provable(s)
    synced(s)
    assert srv.message_id(50, "INBOX") in flags_on_server(s, "INBOX")
    assert_in_sync(s)


def test_a_flag_set_in_the_second_of_a_sync_is_carried_on_a_file_system_of_whole_seconds(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """On ext4 with one-second times, a mail reader moves a new message to cur/, a sync
    finds nothing to do, and the reader flags the message, all in one second: cur/ keeps the
    mtime and ctime it had at the sync.  That sync must not have recorded them as a proof."""
    s = make_setup(imap_account, tmp_path)
    with whole_second_fs(s.root, tmp_path / "maildir.img"):
        fill(s, per_folder=TRIES, flags=())  # unread: they arrive in new/
        settled(s)
        inbox = folder_of(s, "INBOX")
        carried = False
        for i in range(TRIES):  # a try whose steps ran into the next second is made again
            new = Path(inbox, "new")
            (name,) = [n for n in os.listdir(new) if srv.message_id(i, "INBOX") in _read(new / n)]
            time.sleep(1 - time.time() % 1 + 0.01)  # the start of a second
            os.rename(new / name, Path(inbox, "cur", name + ":2,"))
            read = folder_stamp(inbox, now_ns=2**62)
            synced(s, folders=["INBOX"])  # nothing to do: the listing is as recorded
            os.rename(Path(inbox, "cur", name + ":2,"), Path(inbox, "cur", name + ":2,F"))
            same_second = folder_stamp(inbox, now_ns=2**62) == read
            synced(s, folders=["INBOX"])
            assert FLAGGED in flags_on_server(s, "INBOX")[srv.message_id(i, "INBOX")]
            if same_second:
                carried = True
                break
            settled(s)
        assert carried, "no try kept to one second: the machine is too slow for this test"
        assert_in_sync(s)


def _read(path: Path) -> str:
    return path.read_bytes().decode(errors="replace")


def test_a_sync_killed_before_it_recorded_the_folder_leaves_the_next_run_listing_it(
    fs_setup: Setup, listed: list[str]
) -> None:
    """Killed after each durable step of a sync that carries a local flag change: the folder's
    stamp must not be recorded before the change is carried and recorded, so the next run
    lists it and carries the flag."""
    s = fs_setup
    fill(s, per_folder=6)
    settled(s)
    config = write_config(s)
    ids = [srv.message_id(i, "INBOX") for i in range(6)]

    def flag(i: int) -> None:
        msg = loc.by_message_id(s.root, s.layout, "INBOX")[ids[i]]
        loc.set_letters(msg, msg.letters + "F")

    flag(0)
    code, out = run_sync(config, verbose=True)
    assert code == 0, out
    steps = steps_of(out)
    assert "flags remote" in steps, steps
    for n in range(1, len(steps) + 1):
        assert n < len(ids), "more steps than messages to flag"
        settled(s)
        flag(n)
        code, out = run_sync(config, crash_after=n)
        assert code == -9, f"not killed after step {n} (exit {code}):\n{out}"
        listed.clear()
        synced(s)
        assert folder_of(s, "INBOX") in folders_listed(listed), f"after step {n}"
        assert FLAGGED in flags_on_server(s, "INBOX")[ids[n]], f"after step {n}"
    assert_in_sync(s)


def test_a_server_change_reaches_a_folder_that_did_not_change_without_listing_it(
    setup: Setup, listed: list[str]
) -> None:
    """The folder is as its last complete sync recorded it, so the records stand for its
    listing: a new server message is delivered into it unlisted."""
    s = setup
    fill(s)
    settled(s)
    delivered_unlisted(s, listed, 60)


def test_a_new_keyword_on_an_unlisted_folder_takes_no_letter_its_files_still_carry(
    fs_setup: Setup,
) -> None:
    """The keyword table was lost, so a file carries a letter no keyword is named by.  A
    keyword new to the folder, set on the server while the folder is taken as recorded, must
    not be given that letter: the old file would then read as carrying it."""
    s = fs_setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen", "Work"])
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    synced(s)
    inbox = Path(folder_of(s, "INBOX"))
    (inbox / "dovecot-keywords").unlink()
    settled(s, ("INBOX",))
    srv.set_flags(s.imap, "INBOX", srv.message_id(2, "INBOX"), ["Home"])
    synced(s)
    synced(s)
    flags = flags_on_server(s, "INBOX")
    assert "Home" not in flags[srv.message_id(1, "INBOX")], flags
    assert "Home" in flags[srv.message_id(2, "INBOX")], flags


def test_a_new_uidvalidity_on_the_server_re_pairs_an_unchanged_folder_by_listing_it(
    fs_setup: Setup,
) -> None:
    """A new UIDVALIDITY voids the server ids of the records: they no longer stand for the
    local folder, so it is listed and its messages are paired again, none copied twice.  (The
    records here have no content identity, as records of early versions: voiding drops them.)"""
    s = fs_setup
    fill(s)
    settled(s)
    with contextlib.closing(sqlite3.connect(s.config.general.state_dir / "test.sqlite")) as db:
        db.execute("UPDATE record SET header_digest = NULL")
        db.commit()
    old = srv.fetch_all(s.imap, "Archive/2024")
    with srv.session(s.imap) as c:
        srv._ok(c.delete(srv._quote("Archive/2024")))
        for m in old:  # the same messages under a new UIDVALIDITY
            srv.append(s.imap, "Archive/2024", m.body, m.flags, imap=c)
    synced(s)
    synced(s)
    assert len(loc.messages(s.root, s.layout, "Archive/2024")) == len(old)
    assert len(srv.fetch_all(s.imap, "Archive/2024")) == len(old)
    assert_in_sync(s)


def test_a_sync_that_writes_into_folders_lets_the_next_sync_skip_listing_them(
    setup: Setup, listed: list[str]
) -> None:
    """A download, a flag rename and a deletion are the sync's own writes: it records the
    stamp after them (engine/restamp.py), so the next sync lists none of these folders."""
    s = setup
    fill(s)
    settled(s)
    srv.append(s.imap, "INBOX", srv.make_message(70, "INBOX"), ["\\Seen"])
    srv.set_flags(s.imap, "Archive/2024", srv.message_id(1, "Archive/2024"), [FLAGGED])
    srv.expunge(s.imap, "Entwürfe", srv.message_id(2, "Entwürfe"))
    synced(s)
    listed.clear()
    report = s.sync()
    assert not report.failed, report
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert listed == []
    assert_in_sync(s)


def _mutt_adds(s: Setup) -> None:
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(80, "INBOX"), "S")


def _mutt_flags(s: Setup) -> None:
    msg = loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(1, "INBOX")]
    loc.set_letters(msg, msg.letters + "F")


def _mutt_deletes(s: Setup) -> None:
    loc.by_message_id(s.root, s.layout, "INBOX")[srv.message_id(2, "INBOX")].path.unlink()


def _on_server(s: Setup) -> dict[str, frozenset[str]]:
    return flags_on_server(s, "INBOX")


FOREIGN = {
    "added": (_mutt_adds, lambda s: srv.message_id(80, "INBOX") in _on_server(s)),
    "renamed": (_mutt_flags, lambda s: FLAGGED in _on_server(s)[srv.message_id(1, "INBOX")]),
    "removed": (_mutt_deletes, lambda s: srv.message_id(2, "INBOX") not in _on_server(s)),
}


@pytest.mark.parametrize("change", FOREIGN)
def test_a_mail_readers_change_amid_a_syncs_writes_is_seen_by_the_next_sync(
    setup: Setup, listed: list[str], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Another client adds, renames or removes a file in INBOX right after the sync's own
    delivery there, in the same second: the stamp after the writes holds that change too, so
    it must not be recorded; the next sync lists INBOX and carries the change.  A folder the
    sync wrote to alone is still not listed."""
    s = setup
    fill(s)
    settled(s)
    srv.append(s.imap, "INBOX", srv.make_message(70, "INBOX"), ["\\Seen"])
    srv.append(s.imap, "Archive/2024", srv.make_message(70, "Archive/2024"), ["\\Seen"])
    act, carried = FOREIGN[change]
    inbox = folder_of(s, "INBOX")
    commit = Delivery.commit
    acted: list[str] = []

    def commit_then_foreign(self: Delivery) -> list[str]:
        ids = commit(self)
        if os.path.realpath(self.folder) == inbox and not acted:
            acted.append(change)
            act(s)
        return ids

    monkeypatch.setattr(Delivery, "commit", commit_then_foreign)
    synced(s)
    assert acted
    listed.clear()
    synced(s)
    assert carried(s)
    assert folders_listed(listed) == {inbox}
    assert_in_sync(s)


def test_a_server_change_reaches_a_folder_with_keywords_without_listing_it(
    fs_setup: Setup, listed: list[str]
) -> None:
    """Which keywords a Maildir folder cannot hold depends on letters its files carry, known
    only from a listing: a folder taken as recorded is not asked (its messages are the
    records'), so its keywords cost no listing."""
    s = fs_setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen", "Work"])
    settled(s, ("INBOX",))
    delivered_unlisted(s, listed, 2)
