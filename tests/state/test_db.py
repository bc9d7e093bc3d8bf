"""The state database keeps records, half records and cursors across reopenings."""

from __future__ import annotations

import ctypes
import gc
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailtide.core.model import Identity, PendingFlags, Record, Side
from mailtide.state.db import CorruptState, Cursor, FolderPair, StateDB, StateError

ID = Identity("<a@x>", 120, "ab" * 32)


def test_records_and_cursors_survive_reopening(tmp_path: Path) -> None:
    db = StateDB.for_account(tmp_path / "state", "work")
    box = db.mailbox("Archive/2024")
    full = Record(("17", "1700000000.M1P1Q1.host"), frozenset({"\\Seen", "Work"}), ID)
    half = Record(("", "1700000000.M2P1Q2.host"), frozenset(), ID)
    db.put(box, [full, half])
    db.set_cursors(box, (Cursor("1234", 18, 99, 2), Cursor("tok", None, None, 2)))
    db.put_folders([FolderPair(("INBOX", "INBOX")), FolderPair(("Archive/2024", "Archiv"))])
    db.close()

    db = StateDB.for_account(tmp_path / "state", "work")
    box = db.mailbox("Archive/2024")
    assert sorted(db.records(box), key=lambda r: r.ids) == sorted([full, half], key=lambda r: r.ids)
    assert box.cursors[0] == Cursor("1234", 18, 99, 2)
    assert db.known_folders() == {"INBOX", "Archive/2024"}
    # a side's id not recorded yet is its mailbox's last validity
    assert sorted(db.folder_pairs()) == [
        FolderPair(("Archive/2024", "Archiv"), ("1234", "tok")),
        FolderPair(("INBOX", "INBOX")),
    ]


def test_replace_drops_exactly_one_row_per_record(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    half = Record(("", "n1"), frozenset(), ID)
    db.put(box, [half, half])  # two identical pending copies
    db.replace(box, [half], [Record(("5", "n1"), frozenset(), ID)])
    assert sorted(r.ids for r in db.records(box)) == [("", "n1"), ("5", "n1")]


def test_recorded_flags_name_each_id_once_and_none_where_two_records_name_it(
    tmp_path: Path,
) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    seen, both = frozenset({"\\Seen"}), frozenset({"\\Seen", "$Work"})
    db.put(
        box,
        [
            Record(("1", "a"), seen, ID),
            Record(("2", "b"), both, ID),
            Record(("3", "c"), frozenset(), ID),
            Record(("4", "c"), seen, ID),  # a second record of near id c
            Record(("", "d"), seen, ID),  # half: names d on the near side only
        ],
    )
    assert db.recorded_flags(box, Side.NEAR) == {
        "a": "\\Seen",
        "b": "$Work \\Seen",
        "c": None,
        "d": "\\Seen",
    }
    assert db.recorded_flags(box, Side.FAR) == {
        "1": "\\Seen",
        "2": "$Work \\Seen",
        "3": "",
        "4": "\\Seen",
    }


def test_recorded_flags_read_an_index_not_the_records(tmp_path: Path) -> None:
    """A listing compared with the records reads each side's ids by flag set from one index
    alone (a covering index): a state made before it gets it at its next open."""
    path = tmp_path / "s.sqlite"
    StateDB(path).close()
    with sqlite3.connect(path) as old:  # as an earlier version left it
        old.execute("DROP INDEX record_flags_far")
        old.execute("DROP INDEX record_flags_near")
        old.execute("CREATE INDEX record_flags ON record (mailbox, flags)")
    db = StateDB(path)
    box = db.mailbox("INBOX")
    db.put(box, [Record(("1", "a"), frozenset({"\\Seen"}), ID)])
    for side in Side:
        statements: list[str] = []
        db._db.set_trace_callback(statements.append)
        assert db.recorded_flags(box, side) == {"1" if side is Side.FAR else "a": "\\Seen"}
        db._db.set_trace_callback(None)
        (query,) = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
        plan = db._db.execute("EXPLAIN QUERY PLAN " + query).fetchall()
        assert any("COVERING INDEX record_flags_" in str(row) for row in plan), plan
    names = {r[0] for r in db._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "record_flags" not in names
    db.close()


def test_the_flag_names_recorded_cost_a_seek_per_flag_set_not_a_read_per_record(
    tmp_path: Path,
) -> None:
    """A quick sync of one changed message asks which flags the mailbox's records hold: the
    union of their few distinct sets, this mailbox's only.  It seeks from set to set in the
    index: the work does not grow with the records (SQLite's steps counted)."""
    db = StateDB(tmp_path / "s.sqlite")
    box, other = db.mailbox("INBOX"), db.mailbox("Other")
    sets = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "$Work"})]
    db.put(box, [Record((str(i), f"n{i}"), sets[i % 3], ID) for i in range(6000)])
    db.put(other, [Record(("1", "o1"), frozenset({"\\Flagged"}), ID)])
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db._db.set_progress_handler(count, 100)  # called every 100 virtual machine steps
    assert db.recorded_flag_names(box) == {"\\Seen", "$Work"}
    db._db.set_progress_handler(None, 0)
    assert steps < 20, steps  # reading every record's index entry took 240
    assert db.recorded_flag_names(other) == {"\\Flagged"}
    assert db.recorded_flag_names(db.mailbox("Empty")) == frozenset()


def test_a_stores_memo_is_kept_per_side_across_reopening(tmp_path: Path) -> None:
    db = StateDB.for_account(tmp_path / "state", "work")
    assert db.store_memo(Side.FAR) is None
    db.set_store_memo(Side.FAR, "COMPRESS=DEFLATE IMAP4rev1")
    db.set_store_memo(Side.FAR, "COMPRESS=DEFLATE IMAP4rev1 QRESYNC")  # the latest wins
    db.close()
    db = StateDB.for_account(tmp_path / "state", "work")
    assert db.store_memo(Side.FAR) == "COMPRESS=DEFLATE IMAP4rev1 QRESYNC"
    assert db.store_memo(Side.NEAR) is None
    db.close()


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    with pytest.raises(RuntimeError), db.transaction():
        db.put(box, [Record(("1", "a"), frozenset(), ID)])
        raise RuntimeError("crash between two writes")
    assert db.records(box) == []


def test_dry_run_mailbox_is_not_created(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    assert db.mailbox("INBOX", create=False).id == 0
    assert db.mailbox("INBOX").id != 0


def test_garbage_file_is_corrupt_state(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CorruptState, match="not a database"):
        StateDB(path)


def test_account_state_damaged_is_moved_aside_and_started_afresh(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db = StateDB.for_account(state, "work")
    db.put(db.mailbox("INBOX"), [Record(("1", "a"), frozenset(), ID)])
    db.close()
    path = state / "work.sqlite"
    path.write_bytes(b"\0" * 100 + path.read_bytes()[100:])

    db = StateDB.for_account(state, "work")
    assert db.records(db.mailbox("INBOX")) == []
    assert db.moved_aside is not None and "damaged" in db.moved_aside
    db.close()
    aside = [p for p in state.iterdir() if p.name.startswith("work.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].name in (db.moved_aside or "")
    assert aside[0].read_bytes()[:100] == b"\0" * 100  # kept as it was, for a post-mortem

    db = StateDB.for_account(state, "work")  # the fresh one is fine: nothing more moved
    assert db.moved_aside is None
    db.close()
    assert len([p for p in state.iterdir() if ".corrupt-" in p.name]) == 1


def test_newer_schema_is_an_error_not_damage(tmp_path: Path) -> None:
    state = tmp_path / "state"
    StateDB.for_account(state, "work").close()
    raw = sqlite3.connect(state / "work.sqlite")
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    raw.commit()
    raw.close()
    with pytest.raises(StateError, match="newer mailtide"):
        StateDB.for_account(state, "work")
    assert sorted(p.name for p in state.iterdir()) == ["work.lock", "work.sqlite"]


def test_orphan_wal_is_not_replayed_into_a_new_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "work.sqlite-wal").write_bytes(b"stale" * 100)
    db = StateDB.for_account(state, "work")
    db.close()
    assert [p.name for p in state.iterdir() if ".orphan-" in p.name] != []


def test_second_sync_of_the_same_account_is_refused(tmp_path: Path) -> None:
    first = StateDB.for_account(tmp_path, "work")
    with pytest.raises(StateError) as refused:
        StateDB.for_account(tmp_path, "work")
    assert str(refused.value) == (
        f"another mailtide (pid {os.getpid()}) is already syncing this account; "
        "try again when it has finished"
    )
    other = StateDB.for_account(tmp_path, "home")  # other accounts are not held up
    other.close()
    first.close()
    StateDB.for_account(tmp_path, "work").close()  # released on close


def test_schema_1_database_is_migrated_keeping_its_records(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE folder (name TEXT PRIMARY KEY);
        CREATE TABLE mailbox (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            far_validity TEXT, near_validity TEXT, far_uidnext INTEGER, near_uidnext INTEGER,
            far_modseq INTEGER, near_modseq INTEGER, far_count INTEGER, near_count INTEGER);
        CREATE TABLE record (mailbox INTEGER NOT NULL, far_id TEXT NOT NULL,
            near_id TEXT NOT NULL, flags TEXT NOT NULL,
            message_id TEXT, size INTEGER, header_digest TEXT);
        INSERT INTO mailbox (id, name, far_validity, far_modseq) VALUES (1, 'INBOX', '77', 5);
        INSERT INTO record VALUES (1, '3', 'n3', '\\Seen', '<a@x>', 120, 'abab');
        """
    )
    db.commit()
    db.close()
    state = StateDB(path)
    box = state.mailbox("INBOX")
    assert box.cursors[0] == Cursor("77", None, 5, None, None)
    assert state.records(box) == [
        Record(("3", "n3"), frozenset({"\\Seen"}), Identity("<a@x>", 120, "abab"))
    ]
    state.set_cursors(box, (Cursor("77", 9, 6, 1, "d1"), Cursor("x", digest="d2")))
    assert state.mailbox("INBOX").cursors[1].digest == "d2"


def test_pending_flag_update_is_journalled_and_cleared_by_the_next_record(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    old = Record(("7", "n7"), frozenset({"\\Seen"}), ID)
    other = Record(("8", "n8"), frozenset(), ID)
    db.put(box, [old, other])
    pending = PendingFlags(frozenset({"\\Seen", "\\Answered"}), frozenset({Side.NEAR}))
    db.set_pending(box, [(old, pending)])
    db.close()

    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    by_id = {r.ids: r for r in db.records(box)}
    assert by_id[("7", "n7")].pending == pending
    assert by_id[("8", "n8")].pending is None
    done = Record(("7", "n7"), pending.flags, ID)
    db.replace(box, [by_id[("7", "n7")]], [done])
    assert {r.ids: r for r in db.records(box)}[("7", "n7")] == done


def test_second_sync_says_the_account_once_with_the_holders_pid(tmp_path: Path) -> None:
    """What the user reads when a second ``mailtide sync`` of an account runs: one line, the
    account named once, the pid of the mailtide holding it, exit status 1."""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[general]
state_dir = "{tmp_path / "state"}"

[account.work]
local = "copy"
remote = "origin"

[repository.origin]
type = "maildir"
path = "origin"

[repository.copy]
type = "maildir"
path = "copy"
"""
    )
    held = StateDB.for_account(tmp_path / "state", "work")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mailtide", "sync", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        held.close()
    assert result.returncode == 1
    assert result.stderr == (
        f"mailtide: account work: another mailtide (pid {os.getpid()}) is already syncing "
        "this account; try again when it has finished\n"
    )


def test_state_files_are_private(tmp_path: Path, umask: int) -> None:
    """The state directory (and the parents mailtide makes for it) 0700; the database, its WAL
    and shared-memory files, the lock and a database moved aside as damaged 0600."""
    state = tmp_path / "xdg" / "mailtide"
    db = StateDB.for_account(state, "work")
    db.put(db.mailbox("INBOX"), [Record(("1", "a"), frozenset(), ID)])
    while_open = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in state.iterdir()}
    assert sorted(while_open) == ["work.lock", "work.sqlite", "work.sqlite-shm", "work.sqlite-wal"]
    assert while_open == dict.fromkeys(while_open, "0o600")
    db.close()
    path = state / "work.sqlite"
    path.write_bytes(b"\0" * 100 + path.read_bytes()[100:])
    StateDB.for_account(state, "work").close()
    assert any(".corrupt-" in p.name for p in state.iterdir())
    assert [oct(stat.S_IMODE(d.stat().st_mode)) for d in (tmp_path / "xdg", state)] == ["0o700"] * 2
    files = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in state.iterdir()}
    assert files == dict.fromkeys(files, "0o600")


def test_schema_4_folders_become_pairings_with_their_mailboxes_identities(
    tmp_path: Path,
) -> None:
    """A state dir of the last release keeps working: each synced folder is paired with the
    local folder of the same name, each side's identity taken from its mailbox's cursors."""
    path = tmp_path / "old.sqlite"
    db = StateDB(path)
    box = db.mailbox("Archive/2024")
    db.put(box, [Record(("3", "n3"), frozenset(), ID)])
    db.set_cursors(box, (Cursor("77", 9), Cursor("f00d")))
    db.close()
    raw = sqlite3.connect(path)
    raw.executescript(
        """
        DROP TABLE folder;
        CREATE TABLE folder (name TEXT PRIMARY KEY);
        INSERT INTO folder VALUES ('Archive/2024'), ('Leer');
        ALTER TABLE mailbox DROP COLUMN far_stamp;
        ALTER TABLE mailbox DROP COLUMN near_stamp;
        UPDATE meta SET value = '4' WHERE key = 'schema';
        """
    )
    raw.commit()
    raw.close()

    db = StateDB(path)
    assert sorted(db.folder_pairs()) == [
        FolderPair(("Archive/2024", "Archive/2024"), ("77", "f00d")),
        FolderPair(("Leer", "Leer")),
    ]
    assert db.known_folders() == {"Archive/2024", "Leer"}
    assert [r.ids for r in db.records(db.mailbox("Archive/2024"))] == [("3", "n3")]


def test_schema_5_database_gains_stamps_keeping_its_cursors(tmp_path: Path) -> None:
    """A schema-5 state has no stamps: its cursors and digests are kept, each side's stamp is
    unknown (so the next sync lists every folder once), and a stamp written then is kept."""
    path = tmp_path / "old.sqlite"
    db = StateDB(path)
    box = db.mailbox("INBOX")
    db.set_cursors(box, (Cursor("77", 9, 6, 1, "d1"), Cursor("f00d", digest="d2")))
    db.close()
    raw = sqlite3.connect(path)
    raw.executescript(
        """
        ALTER TABLE mailbox DROP COLUMN far_stamp;
        ALTER TABLE mailbox DROP COLUMN near_stamp;
        UPDATE meta SET value = '5' WHERE key = 'schema';
        """
    )
    raw.commit()
    raw.close()

    db = StateDB(path)
    box = db.mailbox("INBOX")
    assert box.cursors == (Cursor("77", 9, 6, 1, "d1"), Cursor("f00d", digest="d2"))
    db.set_cursors(box, (box.cursors[0], Cursor("f00d", digest="d2", stamp="new=1:2:3:4")))
    db.close()
    assert StateDB(path).mailbox("INBOX").cursors[1].stamp == "new=1:2:3:4"


def test_renamed_pair_keeps_its_records_and_cursors(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("A")
    db.put(box, [Record(("3", "n3"), frozenset(), ID)])
    db.set_cursors(box, (Cursor("77", 9), Cursor("f00d")))
    db.put_folders([FolderPair(("A", "A"), ("77", "f00d")), FolderPair(("B", "B"))])
    stale = db.mailbox("B")
    db.put(stale, [Record(("5", "n5"), frozenset(), ID)])

    db.rename_folder("A", FolderPair(("B", "Bee"), ("77", "f00d")))
    assert db.folder_pairs() == [FolderPair(("B", "Bee"), ("77", "f00d"))]
    renamed = db.mailbox("B")
    assert renamed.id == box.id and renamed.cursors[0] == Cursor("77", 9)
    assert [r.ids for r in db.records(renamed)] == [("3", "n3")]
    db.forget_folder("B")
    assert db.folder_pairs() == [] and db.records(db.mailbox("B")) == []


def _sqlite_memory_used() -> Callable[[], int]:
    """SQLite's own count of the bytes it has allocated in this process (all connections), read
    from the library the sqlite3 module runs on; a skip where that library is not shared."""
    maps = Path("/proc/self/maps")
    libs = {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
    if len(libs) != 1:
        pytest.skip("the sqlite3 module's library cannot be loaded on its own here")
    used = ctypes.CDLL(libs.pop()).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return lambda: int(used())


@pytest.mark.parametrize(("cache_kib", "bound"), [(None, None), (256, 512 << 10)])
def test_page_cache_is_bounded_by_cache_kib(
    tmp_path: Path, cache_kib: int | None, bound: int | None
) -> None:
    """The daemon holds its state database open: reading every record (a full sync) leaves
    SQLite's page cache full, up to 2 MB by default, and up to ``cache_kib`` when given."""
    memory_used = _sqlite_memory_used()
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    records = [Record((str(n), f"17000.M{n}.host"), frozenset({"\\Seen"}), ID) for n in range(8000)]
    db.put(box, records)
    db.close()
    # The count is the process's: another test's connection left as garbage, closed by the
    # collector while this one reads, would take its pages off (seen once in CI, 459 KB).
    gc.collect()
    gc.disable()
    try:
        before = memory_used()
        db = StateDB.for_account(tmp_path, "s", cache_kib=cache_kib)  # the same file, cache empty
        assert len(db.records(db.mailbox("INBOX"))) == 8000
        cached = memory_used() - before
        db.close()
    finally:
        gc.enable()
    if bound is None:
        assert cached > 1 << 20, cached  # the default: the whole 1.5 MB database stays cached
    else:
        assert cached < bound, cached  # 256 KiB of pages, plus the schema and statements


def _damage_a_record_page(path: Path) -> None:
    """Overwrite a page in the middle of the file (the record table's): only reading every
    page finds it."""
    data = bytearray(path.read_bytes())
    page = 4096
    at = page * (len(data) // page // 2)
    data[at : at + page] = b"\xff" * page
    path.write_bytes(bytes(data))


def test_a_state_closed_cleanly_is_not_read_through_at_the_next_open(tmp_path: Path) -> None:
    """Reading every page at every open costs in proportion to the account.  A file as mailtide
    closed it is trusted; one written since (a crash, another program, damage) is checked."""
    state = tmp_path / "state"
    db = StateDB.for_account(state, "work")
    box = db.mailbox("INBOX")
    db.put(box, [Record((str(n), f"n{n}"), frozenset({"\\Seen"}), ID) for n in range(2000)])
    db.close()
    path, mark = state / "work.sqlite", state / "work.sqlite.checked"
    assert stat.S_IMODE(mark.stat().st_mode) == 0o600
    _damage_a_record_page(path)
    # The mark vouches for the file as it is now, as if the damage had come before the close:
    st = path.stat()
    mark.write_text(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    db = StateDB.for_account(state, "work")
    assert db.moved_aside is None  # not read through, so not found
    db.close()
    # Written since the mark (the damage again, as after a crash): checked and moved aside.
    path.write_bytes(path.read_bytes())
    db = StateDB.for_account(state, "work")
    assert db.moved_aside is not None and "damaged" in db.moved_aside
    db.close()
    # A run killed while it held the database leaves no mark (used up at open): checked.
    db = StateDB.for_account(state, "work")
    db.put(db.mailbox("INBOX"), [Record((str(n), f"m{n}"), frozenset(), ID) for n in range(2000)])
    assert not mark.exists()
    db._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the damage must not be in the WAL
    db._db.close()  # killed: no mark written, the lock gone with the process
    os.close(db._lock or -1)
    _damage_a_record_page(path)
    db = StateDB.for_account(state, "work")
    assert db.moved_aside is not None and "damaged" in db.moved_aside
    db.close()
