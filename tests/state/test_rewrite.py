"""A run's results are written over the rows they replace, and the index by content exists only
where Gmail's labels mode reads it: what the database holds is as before, what each commit
writes is far less."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtide.core.model import Identity, PendingFlags, Record, Side
from mailtide.state import db as state_db
from mailtide.state.db import Cursor, StateDB

_IDS = st.tuples(st.sampled_from(["", "1", "2", "3"]), st.sampled_from(["", "a", "b"]))
_IDENTITY = st.one_of(
    st.none(), st.builds(Identity, st.sampled_from(["", "<m@x>"]), st.integers(0, 3), st.just("d"))
)
_PENDING = st.one_of(
    st.none(),
    st.builds(
        PendingFlags, st.frozensets(st.sampled_from(["\\Seen"])), st.just(frozenset({Side.FAR}))
    ),
)
_RECORD = st.builds(
    Record,
    _IDS,
    st.frozensets(st.sampled_from(["\\Seen", "\\Flagged", "$Work"])),
    _IDENTITY,
    _PENDING,
)


def _rows(db: StateDB) -> list[tuple[object, ...]]:
    return sorted(
        db._db.execute(  # the rows themselves, duplicates and all
            "SELECT mailbox, far_id, near_id, flags, message_id, size, header_digest,"
            " body_digest, pending_flags, pending_sides FROM record"
        ).fetchall(),
        key=repr,
    )


@pytest.mark.parametrize("part", [state_db.REWRITE_PART, 2])
@settings(max_examples=300, deadline=None)
@given(
    there=st.lists(_RECORD, max_size=8),
    old=st.lists(_RECORD, max_size=8),
    new=st.lists(_RECORD, max_size=8),
)
def test_replace_leaves_the_rows_a_drop_then_a_put_would(
    part: int, there: list[Record], old: list[Record], new: list[Record]
) -> None:
    """Rows with the same ids, records without a row, more old than new and the other way
    round: the same rows as ``drop(old)`` then ``put(new)``, another mailbox untouched.  The
    old records are read and rewritten ``part`` at a time (``REWRITE_PART``; 2: a row taken
    by one part is never taken again by a later one)."""
    plain, rewritten = StateDB(Path(":memory:")), StateDB(Path(":memory:"))
    for db in (plain, rewritten):
        other = db.mailbox("Other")
        db.put(other, there)
        box = db.mailbox("INBOX")
        db.put(box, there)
    plain.drop(plain.mailbox("INBOX"), old)
    plain.put(plain.mailbox("INBOX"), new)
    with mock.patch.object(state_db, "REWRITE_PART", part):
        rewritten.rewrite([(rewritten.mailbox("INBOX"), old, new)])
    assert _rows(rewritten) == _rows(plain)


def test_a_copys_result_rewrites_only_the_indexes_of_the_id_it_gains(tmp_path: Path) -> None:
    """An intent (the destination's id still empty) becomes the record in its own row: the
    entries of the indexes that do not hold the near id are as they were, rowids and all (a
    delete and an insert would put them back under new rowids, in new pages)."""
    db = StateDB(tmp_path / "s.sqlite")
    box = db.mailbox("INBOX")
    flags = frozenset({"\\Seen"})
    intents = [
        Record((str(uid), ""), flags, Identity(f"<{uid}@x>", 100, f"{uid:064x}"))
        for uid in range(1, 2001)
    ]
    db.put(box, intents)
    db.put(box, [Record(("9999", "n9999"), flags, None)])  # the last rowid stays taken
    records = [
        Record((r.ids[Side.FAR], f"n{i:05}"), r.flags, r.identity) for i, r in enumerate(intents)
    ]
    before = _index_contents(db)
    db.replace(box, intents, records)
    after = _index_contents(db)
    assert after["record_far"] == before["record_far"]
    assert after["record_flags_far"] == before["record_flags_far"]
    assert after["record_near"] != before["record_near"]
    assert sorted(r.ids for r in db.records(box)) == sorted(
        [r.ids for r in records] + [("9999", "n9999")]
    )


def _index_contents(db: StateDB) -> dict[str, list[tuple[object, ...]]]:
    """Each index's entries as SQLite keeps them (the rowid in each entry says whether a row
    was deleted and inserted again: it would come back under a new one)."""
    out = {}
    for name, columns in (
        ("record_far", "mailbox, far_id"),
        ("record_flags_far", "mailbox, flags, far_id"),
        ("record_near", "mailbox, near_id"),
    ):
        out[name] = db._db.execute(
            f"SELECT {columns}, rowid FROM record INDEXED BY {name} ORDER BY {columns}, rowid"
        ).fetchall()
    return out


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_the_index_by_content_is_made_by_gmails_lookup_and_kept_while_gmail_is_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    box, other = db.mailbox("INBOX"), db.mailbox("[Gmail]/All Mail")
    identity = Identity("<g@x>", 10, "cd" * 32)
    db.put(other, [Record(("7", "n7"), frozenset({"\\Seen"}), identity)])
    db.set_cursors(other, (Cursor("55", 8, 1, 1), Cursor()))
    assert "record_header" not in _indexes(path)  # a new database: no Gmail, no index

    db.put_gmail_ids(other, "55", {"7": 1234})
    found = db.gmail_message_like(identity, box)
    assert "record_header" in _indexes(path)
    assert found is not None and (found.far_id, found.msgid) == ("7", 1234)
    db.close()
    assert "record_header" in _indexes(path)
    StateDB(path).close()  # Gmail messages recorded: the index stays
    assert "record_header" in _indexes(path)


def test_a_database_of_before_loses_its_index_by_content_where_no_gmail_message_is_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    db = StateDB(path)
    box = db.mailbox("INBOX")
    db.put(box, [Record(("1", "n1"), frozenset(), Identity("<a@x>", 1, "ab" * 32))])
    db.close()
    with sqlite3.connect(path) as conn:  # as every database had it before
        conn.execute("CREATE INDEX record_header ON record (header_digest)")
    assert "record_header" in _indexes(path)

    db = StateDB(path)
    assert [r.ids for r in db.records(db.mailbox("INBOX"))] == [("1", "n1")]
    db.close()
    assert "record_header" not in _indexes(path)
