"""A full disk (ENOSPC) or a read-only Maildir, on a real small tmpfs, against the real Dovecot.

What must hold after each fault: the mailbox on the faulty file system stops with
an error naming it and the cause; no partial file is left in any tmp/ and none in
cur/ or new/ (every local file is byte for byte a server message); every record
the state holds is true (its local file and its server UID exist); the other
mailboxes, on a file system with room, sync in the same run.  Once space is freed
(or the file system writable again), the next run converges: both sides hold the
same messages with the same flags, each Message-ID exactly once per side, and a
further run has nothing to do.

The local root is an ordinary directory (``fs`` layout); only the folder under
test (``INBOX``) or the state directory is a tmpfs, so one mailbox can be full
while the others have room.  tmpfs counts 4 KiB pages and each message file takes
at least one, which makes "room for exactly N messages" exact.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup
from mailtide.engine.account import AccountReport
from mailtide.state.db import StateDB
from stores.maildir.tmpfs import PAGE, fill, read_only, resize, tmpfs

SEEN, ANSWERED, FLAGGED = "\\Seen", "\\Answered", "\\Flagged"
BOX, OTHER = "INBOX", "Archive"

Mount = Callable[[Path, int], Path]


@pytest.fixture
def mount() -> Iterator[Mount]:
    """Mount tmpfs file systems for one test; every one is unmounted at the end, pass or fail."""
    with contextlib.ExitStack() as stack:
        yield lambda path, size: stack.enter_context(tmpfs(path, size))


def small_folder(s: Setup, mount: Mount, pages: int, folder: str = BOX) -> Path:
    """``folder`` as an empty Maildir folder on its own tmpfs of ``pages`` pages."""
    d = loc.folder_dir(s.root, s.layout, folder)
    mount(d, pages * PAGE)
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir()
    return d


# ---- checks ----------------------------------------------------------------------------------


def server_ids(s: Setup, folder: str) -> Counter[str]:
    return Counter(m.message_id for m in srv.fetch_all(s.imap, folder))


def local_ids(s: Setup, folder: str) -> Counter[str]:
    return Counter(m.message_id for m in loc.messages(s.root, s.layout, folder))


def failure(report: AccountReport, folder: str) -> str:
    (box,) = [m for m in report.mailboxes if m.name == folder]
    assert box.error is not None, f"{folder} did not fail: {report}"
    return box.error


def assert_no_leftovers(s: Setup) -> None:
    """No file in any tmp/, no temporary keyword or id file beside a folder's cur/."""
    for folder in loc.folders(s.root, s.layout):
        d = loc.folder_dir(s.root, s.layout, folder)
        assert sorted(os.listdir(d / "tmp")) == [], f"leftover in {folder}/tmp"
        assert [n for n in os.listdir(d) if n.endswith(".tmp")] == [], f"temp file in {folder}"


def assert_local_files_whole(s: Setup, folder: str) -> None:
    """Every local file is exactly a server message (LF form): no truncated or empty file."""
    server = {m.message_id: m.body.replace(b"\r\n", b"\n") for m in srv.fetch_all(s.imap, folder)}
    for m in loc.messages(s.root, s.layout, folder):
        if m.message_id in server:
            assert m.body == server[m.message_id], f"{m.path.name} differs from the server's"
        else:
            assert m.body.endswith(b"\n") and b"\n\n" in m.body, f"{m.path.name} is damaged"


def assert_records_true(s: Setup, folder: str) -> None:
    """Every record naming ids on both sides names a local file and a server UID that exist."""
    uids = {str(m.uid) for m in srv.fetch_all(s.imap, folder)}
    files = {m.path.name.split(":2,")[0] for m in loc.messages(s.root, s.layout, folder)}
    state = StateDB.for_account(s.config.general.state_dir, s.account.name)
    try:
        records = state.records(state.mailbox(folder, create=False))
    finally:
        state.close()
    for r in records:
        far, near = r.ids
        if far and near:
            assert far in uids, f"record {r} names a UID the server does not hold"
            assert near in files, f"record {r} names a local file that does not exist"


def assert_converged(s: Setup) -> None:
    """Both sides hold the same folders and messages (each once) with the same flags."""
    folders = loc.folders(s.root, s.layout)
    assert folders == srv.list_folders(s.imap, selectable=True)
    for folder in folders:
        server = srv.fetch_all(s.imap, folder)
        local = loc.messages(s.root, s.layout, folder)
        remote_count = Counter(m.message_id for m in server)
        local_count = Counter(m.message_id for m in local)
        assert remote_count == local_count, folder
        assert set(remote_count.values()) <= {1}, f"duplicates in {folder}: {remote_count}"
        names = loc.keyword_names(s.root, s.layout, folder)
        assert {m.message_id: loc.imap_flags(m, names) for m in local} == {
            m.message_id: m.flags for m in server
        }, folder
        assert_local_files_whole(s, folder)
    assert_no_leftovers(s)


def settle(s: Setup) -> None:
    """Run to completion: one run that succeeds, then one that has nothing left to do."""
    report = s.sync()
    assert not report.failed, report.failures()
    again = s.sync()
    assert not again.failed, again.failures()
    assert all(not any(m.summary().values()) for m in again.mailboxes), again


def local_letters(s: Setup, i: int) -> str:
    return loc.by_message_id(s.root, s.layout, BOX)[srv.message_id(i, BOX)].letters


def put_server(s: Setup, folder: str, numbers: range, size: int = 2000) -> None:
    srv.append_many(s.imap, folder, [srv.make_message(i, folder, size) for i in numbers])


def put_local(s: Setup, folder: str, i: int, letters: str = "") -> None:
    loc.deliver(s.root, s.layout, folder, srv.make_message(i, folder), letters)


# ---- full disk -------------------------------------------------------------------------------


def test_disk_full_in_the_middle_of_a_download_batch(fs_setup: Setup, mount: Mount) -> None:
    """40 server messages into a folder with room for 13: those that fit are delivered and
    recorded, the 14th fails cleanly, the next mailbox (on a disk with room) syncs both ways.
    A second run on the still-full disk changes nothing and breaks nothing.  Space freed, the
    next run completes the folder and uploads its local message too."""
    s = fs_setup
    inbox = small_folder(s, mount, 16)
    put_local(s, BOX, 900)  # one page; the folder id takes another: 14 pages left for downloads
    put_server(s, BOX, range(1, 41))
    put_server(s, OTHER, range(1, 11))
    srv.create_folder(s.imap, OTHER)
    loc.deliver(s.root, s.layout, OTHER, srv.make_message(901, OTHER), "S")

    for attempt in range(2):
        report = s.sync()
        error = failure(report, BOX).lower()
        assert "no space left on device" in error and "inbox" in error, error
        assert_no_leftovers(s)
        assert_local_files_whole(s, BOX)
        assert_records_true(s, BOX)
        assert os.statvfs(inbox).f_bavail <= 1
        downloaded = local_ids(s, BOX)
        assert downloaded[srv.message_id(900, BOX)] == 1
        assert 10 <= len(downloaded) - 1 < 40 and set(downloaded.values()) == {1}, attempt
        # the mailbox with room synced in the same run, both ways
        (other,) = [m for m in report.mailboxes if m.name == OTHER]
        assert other.error is None
        assert local_ids(s, OTHER) == server_ids(s, OTHER) and len(server_ids(s, OTHER)) == 11

    resize(inbox, 64 * PAGE)
    settle(s)
    assert_converged(s)
    assert len(server_ids(s, BOX)) == 41


def test_a_message_bigger_than_the_free_space(fs_setup: Setup, mount: Mount) -> None:
    """A 600 KB message (streamed to tmp/ in pieces) into 256 KB: the messages before it are
    delivered, its partial file is removed, nothing after it is recorded as done."""
    s = fs_setup
    inbox = small_folder(s, mount, 64)
    with srv.session(s.imap) as c:
        for i in range(1, 4):
            srv.append(s.imap, BOX, srv.make_message(i, BOX), imap=c)
        srv.append(s.imap, BOX, srv.make_message(4, BOX, 600_000), [SEEN], imap=c)
        for i in range(5, 8):
            srv.append(s.imap, BOX, srv.make_message(i, BOX), imap=c)

    report = s.sync()
    assert "no space left on device" in failure(report, BOX).lower()
    assert_no_leftovers(s)
    assert_local_files_whole(s, BOX)
    assert_records_true(s, BOX)
    assert srv.message_id(4, BOX) not in local_ids(s, BOX)

    resize(inbox, 1024 * PAGE)
    settle(s)
    assert_converged(s)
    assert len(local_ids(s, BOX)) == 7


def test_keyword_table_and_flag_renames_on_a_full_disk(fs_setup: Setup, mount: Mount) -> None:
    """The disk is full when the server brings a new keyword (the keyword table must grow) and
    a plain flag, and a local client changed a flag: the keyword table is never left empty or
    truncated, no temporary file stays, and once space is freed every change arrives."""
    s = fs_setup
    inbox = small_folder(s, mount, 32)
    with srv.session(s.imap) as c:
        srv.append(s.imap, BOX, srv.make_message(1, BOX), [SEEN, "Work"], imap=c)
        srv.append(s.imap, BOX, srv.make_message(2, BOX), [], imap=c)
        srv.append(s.imap, BOX, srv.make_message(3, BOX), [SEEN], imap=c)
    settle(s)
    table = (inbox / "dovecot-keywords").read_bytes()
    assert table == b"0 Work\n"

    filler = fill(inbox)
    srv.set_flags(s.imap, BOX, srv.message_id(1, BOX), ["Urgent"])
    srv.set_flags(s.imap, BOX, srv.message_id(3, BOX), [ANSWERED])
    m2 = loc.by_message_id(s.root, s.layout, BOX)[srv.message_id(2, BOX)]
    loc.set_letters(m2, "F")

    report = s.sync()
    assert "no space left on device" in failure(report, BOX).lower()
    assert (inbox / "dovecot-keywords").read_bytes() == table
    assert_no_leftovers(s)
    assert_records_true(s, BOX)
    # a flag that needs no new keyword is a rename, which takes no space: it is made already
    assert local_letters(s, 3) == "RS"

    filler.unlink()
    settle(s)
    assert_converged(s)
    flags = {m.message_id: m.flags for m in srv.fetch_all(s.imap, BOX)}
    assert flags == {
        srv.message_id(1, BOX): {SEEN, "Work", "Urgent"},
        srv.message_id(2, BOX): {FLAGGED},
        srv.message_id(3, BOX): {SEEN, ANSWERED},
    }


# ---- read-only Maildir -----------------------------------------------------------------------


def test_read_only_maildir_with_changes_on_both_sides(fs_setup: Setup, mount: Mount) -> None:
    """The folder's file system is read-only (as ext4 makes itself after an I/O error) while
    both sides have changes.

    Decision: such a folder is not synced at all, in either direction, and the error says so.
    A file system that went read-only may be failing, so what it lists is not trusted to
    carry deletions or flag changes to the server; and doing only half of a pair's work would
    leave it depending on the order of the steps.  Nothing is lost: every change on both
    sides waits, and the first run with the file system writable again carries all of them.
    Other folders sync as usual."""
    s = fs_setup
    inbox = small_folder(s, mount, 256)
    put_server(s, BOX, range(1, 6))
    put_server(s, OTHER, range(1, 3))
    settle(s)
    # the server: a new message, a flag, a deletion
    srv.append(s.imap, BOX, srv.make_message(6, BOX), [SEEN])
    srv.set_flags(s.imap, BOX, srv.message_id(1, BOX), [FLAGGED])
    srv.expunge(s.imap, BOX, srv.message_id(2, BOX))
    srv.append(s.imap, OTHER, srv.make_message(3, OTHER), [])
    # locally: a new message, a flag, a deletion
    put_local(s, BOX, 7, "S")
    mine = loc.by_message_id(s.root, s.layout, BOX)
    loc.set_letters(mine[srv.message_id(3, BOX)], "S")
    mine[srv.message_id(4, BOX)].path.unlink()
    server_before = srv.fetch_all(s.imap, BOX)
    local_before = sorted(os.listdir(inbox / "cur")) + sorted(os.listdir(inbox / "new"))

    read_only(inbox)
    report = s.sync()
    error = failure(report, BOX).lower()
    assert "read-only" in error and "inbox" in error, error
    assert srv.fetch_all(s.imap, BOX) == server_before
    assert sorted(os.listdir(inbox / "cur")) + sorted(os.listdir(inbox / "new")) == local_before
    assert local_ids(s, OTHER) == server_ids(s, OTHER) and len(server_ids(s, OTHER)) == 3

    read_only(inbox, False)
    settle(s)
    assert_converged(s)
    flags = {m.message_id: m.flags for m in srv.fetch_all(s.imap, BOX)}
    assert flags == {
        srv.message_id(1, BOX): {FLAGGED},
        srv.message_id(3, BOX): {SEEN},
        srv.message_id(5, BOX): frozenset(),
        srv.message_id(6, BOX): {SEEN},
        srv.message_id(7, BOX): {SEEN},
    }


# ---- the state directory on a full disk ------------------------------------------------------


# Pages left free in the state directory, and where the run then fails (measured): 0 at the
# open; 8 at the copy intents; 26 after the 200 downloads, before their records; 44 after the
# records, at the upload intents; 50 after the 20 uploads, before their records.
STATE_ROOM = [0, 8, 26, 44, 50]
SLOW_STATE_ROOM = [p for p in range(1, 54) if p not in STATE_ROOM]


@pytest.mark.parametrize(
    "free_pages",
    STATE_ROOM + [pytest.param(p, marks=pytest.mark.slow) for p in SLOW_STATE_ROOM],
)
def test_state_directory_on_a_full_disk(free_pages: int, fs_setup: Setup, mount: Mount) -> None:
    """The state database cannot grow (no room at all: it cannot even be opened; a few pages:
    it fails at some commit of the run, including right after messages were written to one
    side): the run fails with a state error that says the disk is full, and once space is
    freed the next run converges with no duplicate on either side (what was written but not
    recorded is paired again by content)."""
    s = fs_setup
    state_dir = mount(s.config.general.state_dir, 256 * PAGE)
    put_server(s, BOX, range(1, 6))
    settle(s)
    filler = fill(state_dir, free_pages)
    put_server(s, BOX, range(6, 206))
    for i in range(300, 320):
        put_local(s, BOX, i)

    report = s.sync()
    assert report.failed
    text = " ".join(report.failures())
    assert f"state database {state_dir}" in text and "no space left on device" in text, text
    # The account stops there: every further mailbox would fail the same way.
    assert report.error is not None and "internal error" not in text, text
    assert_no_leftovers(s)

    filler.unlink()
    settle(s)
    assert_converged(s)
    assert len(server_ids(s, BOX)) == 225
