"""What the last sync agreed on, per account, in one SQLite file (WAL).

One database per account: ``<state_dir>/<account>.sqlite``, private to its user
(the directory 0700 when mailtide makes it, every file in it 0600).  Per mailbox pair
it keeps each side's validity and cursors and one row per record (see
``core.model.Record``).  A half record (one id empty) is the durable intent of
a copy, written before the copy starts.

Writes are grouped: the engine opens a transaction per batch of work, and a
commit is a durable step (``synchronous=FULL``), so an intent committed here
survives a crash or a power cut before the side effect it announces.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtide.core.model import Flags, Identity, PendingFlags, Record, Side
from mailtide.private import make_dirs, touch_file
from mailtide.state.checked import closed_cleanly, settled_signature, unchanged_since_closed
from mailtide.state.lock import StateError as StateError
from mailtide.state.lock import lock_account, state_file

SCHEMA_VERSION = 6

# How a database of schema N becomes N + 1 (each step one transaction).
_MIGRATIONS = {
    1: (
        "ALTER TABLE mailbox ADD COLUMN far_digest TEXT",
        "ALTER TABLE mailbox ADD COLUMN near_digest TEXT",
    ),
    2: ("ALTER TABLE record ADD COLUMN body_digest TEXT",),
    3: (
        "ALTER TABLE record ADD COLUMN pending_flags TEXT",
        "ALTER TABLE record ADD COLUMN pending_sides INTEGER",
    ),
    # A folder row becomes a pairing: until now both sides had the pair's name; each side's
    # identity is what its mailbox row last saw (so a rename made before the upgrade is known).
    4: (
        "ALTER TABLE folder RENAME COLUMN name TO far_name",
        "ALTER TABLE folder ADD COLUMN near_name TEXT",
        "ALTER TABLE folder ADD COLUMN far_id TEXT",
        "ALTER TABLE folder ADD COLUMN near_id TEXT",
        "UPDATE folder SET near_name = far_name,"
        " far_id = (SELECT far_validity FROM mailbox WHERE mailbox.name = folder.far_name),"
        " near_id = (SELECT near_validity FROM mailbox WHERE mailbox.name = folder.far_name)",
    ),
    # A side's stamp (a Maildir folder's directory times): none yet, so each is listed once.
    5: (
        "ALTER TABLE mailbox ADD COLUMN far_stamp TEXT",
        "ALTER TABLE mailbox ADD COLUMN near_stamp TEXT",
    ),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folder (   -- a pair of folders synced at least once
    far_name TEXT PRIMARY KEY,           -- the server's canonical name: names the pair
    near_name TEXT,                      -- the local canonical name
    far_id TEXT, near_id TEXT            -- each side's identity when last listed (see FolderPair)
);
CREATE TABLE IF NOT EXISTS mailbox (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,           -- the pair's name (folder.far_name)
    far_validity TEXT, near_validity TEXT,
    far_uidnext INTEGER, near_uidnext INTEGER,
    far_modseq INTEGER, near_modseq INTEGER,
    far_count INTEGER, near_count INTEGER,
    far_digest TEXT, near_digest TEXT,   -- of a side's full listing when it matched the records
    far_stamp TEXT, near_stamp TEXT      -- the side's stamp (MailboxStatus.stamp) at that listing
);
CREATE TABLE IF NOT EXISTS record (
    mailbox INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    far_id TEXT NOT NULL,
    near_id TEXT NOT NULL,
    flags TEXT NOT NULL,                 -- flag names separated by spaces, sorted
    message_id TEXT, size INTEGER, header_digest TEXT, body_digest TEXT,
    pending_flags TEXT,                  -- a flag update being carried (core.model.PendingFlags)
    pending_sides INTEGER                -- its sides: bit 1 far, bit 2 near
);
CREATE TABLE IF NOT EXISTS gmail_message (  -- Gmail's labels mode: which message a UID shows
    mailbox INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    far_validity TEXT NOT NULL,          -- the UIDVALIDITY the UID belongs to
    far_id TEXT NOT NULL,
    msgid INTEGER NOT NULL,              -- its X-GM-MSGID (the same in every label's mailbox)
    PRIMARY KEY (mailbox, far_id)
);
CREATE INDEX IF NOT EXISTS gmail_message_msgid ON gmail_message (msgid);
CREATE INDEX IF NOT EXISTS record_far ON record (mailbox, far_id);
CREATE INDEX IF NOT EXISTS record_near ON record (mailbox, near_id);
"""

# What a sync of what changed reads without reading every record: the pending flag updates,
# the distinct flag sets with each side's ids (``recorded_flags`` reads these indexes alone,
# never the records: 5 ms instead of 28 for 18k records).  Not a schema change (older
# versions work with them): made on open where missing, once the columns exist; the flags
# index of before is covered by both.
_INDEXES = """
CREATE INDEX IF NOT EXISTS record_pending ON record (mailbox) WHERE pending_flags IS NOT NULL;
CREATE INDEX IF NOT EXISTS record_flags_far ON record (mailbox, flags, far_id);
CREATE INDEX IF NOT EXISTS record_flags_near ON record (mailbox, flags, near_id);
DROP INDEX IF EXISTS record_flags;
"""

# A record by content, for Gmail's labels mode alone (see ``StateDB._content_index_kept``).
_CONTENT_INDEX = "CREATE INDEX IF NOT EXISTS record_header ON record (header_digest)"

_RECORD_COLUMNS = (
    "far_id, near_id, flags, message_id, size, header_digest, body_digest,"
    " pending_flags, pending_sides"
)
_RECORD_NAMES = tuple(name.strip() for name in _RECORD_COLUMNS.split(","))
_SIDE_COLUMN = ("far_id", "near_id")  # by Side
IDS_PER_QUERY = 500  # ids looked up in one statement (SQLite allows 32,766 parameters)
REWRITE_PART = 32  # old records a rewrite reads and writes at a time


_ALL_MAIL = "gmail_all_mail"  # the meta key of Gmail's All Mail cursor (labels mode)


class CorruptState(StateError):
    """The database file is damaged: not a database, or pages that do not check out.  Unlike
    every other ``StateError`` this one is repaired, by moving the file aside."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """One side's mailbox identity and progress markers."""

    validity: str | None = None
    uidnext: int | None = None
    modseq: int | None = None
    count: int | None = None
    digest: str | None = None  # see ``core.model.listing_digest``: the side's listing, as synced
    stamp: str | None = None  # the side's ``MailboxStatus.stamp`` when that listing was taken

    @property
    def tells(self) -> bool:
        """Whether the side's status alone can show it unchanged against this cursor (by a
        HIGHESTMODSEQ or a stamp): what makes a pair quiet (engine/pair.py, quiet/)."""
        return self.modseq is not None or self.stamp is not None


@dataclass(frozen=True, slots=True, order=True)
class FolderPair:
    """A server folder and the local folder synced with it, as recorded.

    ``names`` and ``ids`` are indexed by Side (FAR: the server); the server name names the pair
    (and its mailbox state).  An id is what identifies the folder itself whatever its name
    (IMAP: the UIDVALIDITY, which Dovecot keeps across RENAME; Maildir: the folder's own
    ``.mailtide-id``, which a directory rename carries along); "" when not known."""

    names: tuple[str, str]
    ids: tuple[str, str] = ("", "")

    @property
    def name(self) -> str:
        return self.names[Side.FAR]


@dataclass(frozen=True, slots=True)
class MailboxState:
    id: int
    name: str
    cursors: tuple[Cursor, Cursor]  # indexed by Side


@dataclass(frozen=True, slots=True)
class GmailCopy:
    """Where a Gmail message shows (Gmail's labels mode): the pair ``mailbox`` (its server
    name), its UID there, its X-GM-MSGID, and the flags last agreed on."""

    mailbox: str
    far_id: str
    msgid: int
    flags: frozenset[str]


def flags_text(flags: Iterable[str]) -> str:
    """Flags as a record row holds them: the names, sorted, separated by spaces."""
    return " ".join(sorted(flags))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call of a group (``StateDB.run_group``) gave: its value, or its exception."""

    ok: bool
    value: Any


class StateDB:
    """The state of one account.  Not thread-safe: one engine task uses it."""

    def __init__(self, path: Path, check: bool = False, cache_kib: int | None = None) -> None:
        """Open (or create) the database at ``path``; with ``check``, read every page once
        (``PRAGMA quick_check``) and raise ``CorruptState`` if one is damaged (``for_account``
        checks unless the file is as mailtide closed it: state/checked.py).  ``cache_kib``
        bounds SQLite's page cache of this connection (default: SQLite's 2,000 KiB)."""
        self.path = path
        # Set by ``for_account`` when it moved a damaged database aside: what to tell the user.
        self.moved_aside: str | None = None
        conn: sqlite3.Connection | None = None
        try:
            if str(path) != ":memory:":
                make_dirs(str(path.parent))
                # SQLite would make it 0644; its -wal and -shm files take the database's mode
                touch_file(str(path))
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db = conn
            if check:
                problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise CorruptState("; ".join(str(p) for p in problems))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if cache_kib is not None:
                self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StateError(
                    f"state database {path} was written by a newer mailtide (schema {row[0]})"
                )
            else:
                self._migrate(int(row[0]))
            self._db.executescript(_INDEXES)
            self._content_indexed = self._content_index_kept()
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and _is_corruption(exc):
                raise CorruptState(str(exc)) from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise StateError(_failure(path, "cannot be used", exc)) from exc
            if isinstance(exc, OSError):
                raise StateError(f"state directory {path.parent} cannot be used: {exc}") from exc
            raise
        self._depth = 0
        self._lock: int | None = None
        # The file's settled signature when ``for_account`` took the lock, before opening it
        # (None: not locked, missing, or with writes in its WAL): whether answers read
        # before the run began still apply (quiet/early.py).
        self.at_lock: str | None = None

    def _content_index_kept(self) -> bool:
        """Whether the records' index by content (``_CONTENT_INDEX``) is there, once it is
        dropped where no Gmail message is recorded: only Gmail's labels mode looks a record
        up by content in SQL (``gmail_message_like``, which makes the index when it is
        missing).  Its keys are random, so every commit wrote a page anywhere in it per
        message: 0.4 GB of the 50k initial sync's disk writes, for a 25 MB database."""
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'record_header'"
        ).fetchone()
        if found is None:
            return False
        if self._db.execute("SELECT 1 FROM gmail_message LIMIT 1").fetchone() is not None:
            return True
        self._db.execute("DROP INDEX record_header")
        return False

    def _migrate(self, version: int) -> None:
        while version < SCHEMA_VERSION:
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _MIGRATIONS[version]:
                self._db.execute(statement)
            version += 1
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))
            self._db.execute("COMMIT")

    @classmethod
    def for_account(
        cls,
        state_dir: str | os.PathLike[str],
        account: str,
        dry_run: bool = False,
        cache_kib: int | None = None,
    ) -> StateDB:
        """The account's state, locked against a second mailtide syncing the same account.

        A dry run of an account that has no state yet gets an empty one in memory, so that it
        leaves nothing on disk."""
        path = state_file(state_dir, account)
        if dry_run and not path.exists():
            return cls(Path(":memory:"))
        lock = lock_account(path)
        try:
            at_lock = settled_signature(path)
            if not path.exists():
                # A WAL without its database would be replayed into the new, empty one.
                _move_aside(path, "orphan")
            try:
                db = cls(path, check=not unchanged_since_closed(path), cache_kib=cache_kib)
            except CorruptState as exc:
                # Never fatal and never silent: the old file is kept for a post-mortem, and an
                # empty state makes this run pair both sides again by content identity (no
                # record means nothing is deleted, and what both sides hold is not copied).
                aside = _move_aside(path, "corrupt")
                db = cls(path, cache_kib=cache_kib)
                db.moved_aside = (
                    f"state database {path} was damaged ({exc}); moved it to {aside.name} and "
                    "started afresh: this run pairs both sides again by content, so nothing is "
                    "copied twice and nothing is deleted (a deletion made since the last sync "
                    "comes back)"
                )
        except BaseException:
            os.close(lock)
            raise
        db._lock = lock
        db.at_lock = at_lock
        return db

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            closed_cleanly(self.path)  # before the lock goes: no other mailtide writes it yet
            os.close(self._lock)  # releases the flock
            self._lock = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; the outermost transaction commits (durably) on exit.  A database error
        (a full disk) rolls it back and is raised as StateError."""
        try:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(_failure(self.path, "cannot be written", exc)) from exc
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise StateError(_failure(self.path, "cannot be written", exc)) from exc
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()  # a failed COMMIT may leave the transaction open
                raise StateError(_failure(self.path, "cannot be written", exc)) from exc

    def run_group(
        self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
    ) -> list[Outcome]:
        """Run ``calls`` (each a function of this database and its arguments) in one
        transaction with one durable commit: group commit, for calls that several tasks made
        at once.  Each call runs in a savepoint of its own, so one that fails leaves the
        others' writes in: its outcome holds its exception.  When the commit fails, or a call
        took the whole transaction down (SQLite rolls it all back on some errors, a full
        disk), every call's outcome is that StateError: none of their writes is kept."""
        outcomes: list[Outcome] = []
        try:
            with self.transaction():
                for fn, args in calls:
                    self._db.execute("SAVEPOINT call")
                    try:
                        outcomes.append(Outcome(True, fn(*args)))
                    except Exception as exc:  # handed to the call's caller
                        if not self._db.in_transaction:
                            raise StateError(_failure(self.path, "cannot be written", exc)) from exc
                        self._db.execute("ROLLBACK TO call")
                        outcomes.append(Outcome(False, exc))
                    self._db.execute("RELEASE call")
        except (StateError, sqlite3.Error) as exc:
            failed = exc if isinstance(exc, StateError) else StateError(str(exc))
            return [Outcome(False, failed) for _ in calls]
        return outcomes

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    # --- folders ----------------------------------------------------------------------

    def known_folders(self) -> set[str]:
        """The names of the pairs synced before (their server names)."""
        return {r[0] for r in self._db.execute("SELECT far_name FROM folder")}

    def folder_pairs(self) -> list[FolderPair]:
        """Every recorded pairing.  A side's id not recorded yet is its mailbox's last validity."""
        rows = self._db.execute(
            "SELECT f.far_name, f.near_name, f.far_id, f.near_id, m.far_validity,"
            " m.near_validity FROM folder f LEFT JOIN mailbox m ON m.name = f.far_name"
        )
        return [
            FolderPair((far, near or far), (far_id or far_v or "", near_id or near_v or ""))
            for far, near, far_id, near_id, far_v, near_v in rows
        ]

    def near_stamps(self) -> dict[str, str | None]:
        """Each recorded pair's local folder, by its name there, and the stamp the last sync
        left for it (None: none)."""
        rows = self._db.execute(
            "SELECT f.far_name, f.near_name, m.near_stamp"
            " FROM folder f JOIN mailbox m ON m.name = f.far_name"
        )
        return {near or far: stamp for far, near, stamp in rows}

    def modseqs(self, side: Side) -> dict[str, tuple[str | None, int | None]]:
        """Each recorded mailbox's validity and mod-sequence on ``side`` as the last complete
        sync left them (``Cursor.validity``, ``Cursor.modseq``), by the pair's name."""
        column = "far" if side is Side.FAR else "near"
        rows = self._db.execute(f"SELECT name, {column}_validity, {column}_modseq FROM mailbox")
        return {name: (validity, modseq) for name, validity, modseq in rows}

    def put_folders(self, pairs: Iterable[FolderPair]) -> None:
        """Record pairings (a pair already recorded under its server name is replaced)."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO folder (far_name, near_name, far_id, near_id)"
                " VALUES (?, ?, ?, ?)",
                ((*p.names, *(i or None for i in p.ids)) for p in pairs),
            )

    def rename_folder(self, old: str, pair: FolderPair) -> None:
        """The pair named ``old`` is now ``pair``: its pairing and its mailbox state (the
        records, so no message is paired or copied again) move to the new name.  Whatever
        was recorded under the new name before belongs to no folder now and is dropped."""
        with self.transaction():
            if pair.name != old:
                self._db.execute("DELETE FROM folder WHERE far_name = ?", (pair.name,))
                self._db.execute("DELETE FROM mailbox WHERE name = ?", (pair.name,))
                self._db.execute("UPDATE mailbox SET name = ? WHERE name = ?", (pair.name, old))
                self._db.execute("DELETE FROM folder WHERE far_name = ?", (old,))
            self.put_folders([pair])

    def forget_folder(self, name: str) -> None:
        """Forget pair ``name`` (deleted on both sides): its pairing and its mailbox state."""
        with self.transaction():
            self._db.execute("DELETE FROM folder WHERE far_name = ?", (name,))
            self._db.execute("DELETE FROM mailbox WHERE name = ?", (name,))

    # --- mailboxes --------------------------------------------------------------------

    def mailbox(self, name: str, create: bool = True) -> MailboxState:
        """The state of mailbox pair ``name``, created empty on first use (unless not ``create``:
        then an unsaved empty state, for a dry run)."""
        row = self._db.execute(
            "SELECT id, far_validity, far_uidnext, far_modseq, far_count, far_digest, far_stamp,"
            " near_validity, near_uidnext, near_modseq, near_count, near_digest, near_stamp"
            " FROM mailbox WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            if not create:
                return MailboxState(0, name, (Cursor(), Cursor()))
            with self.transaction():
                cur = self._db.execute("INSERT INTO mailbox (name) VALUES (?)", (name,))
            return MailboxState(int(cur.lastrowid or 0), name, (Cursor(), Cursor()))
        return MailboxState(row[0], name, (Cursor(*row[1:7]), Cursor(*row[7:13])))

    def set_cursors(self, mailbox: MailboxState, cursors: tuple[Cursor, Cursor]) -> None:
        far, near = cursors
        with self.transaction():
            self._db.execute(
                "UPDATE mailbox SET far_validity=?, far_uidnext=?, far_modseq=?, far_count=?,"
                " far_digest=?, far_stamp=?, near_validity=?, near_uidnext=?, near_modseq=?,"
                " near_count=?, near_digest=?, near_stamp=? WHERE id=?",
                (*_cursor_row(far), *_cursor_row(near), mailbox.id),
            )

    # --- records ----------------------------------------------------------------------

    def records(self, mailbox: MailboxState) -> list[Record]:
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM record WHERE mailbox = ?", (mailbox.id,)
        )
        return [_record_of(row) for row in rows]

    def touched_records(
        self, mailbox: MailboxState, ids: tuple[Iterable[str], Iterable[str]]
    ) -> list[Record]:
        """The records that name one of ``ids`` (by Side), every half record and every record
        with a pending flag update (``core.reconcile.touched``), each once, in the order they
        were written; found by the indexes, never by reading every record of the mailbox."""
        found: dict[int, Record] = {}

        def take(where: str, params: Sequence[object]) -> None:
            rows = self._db.execute(
                f"SELECT rowid, {_RECORD_COLUMNS} FROM record WHERE mailbox = ? AND {where}",
                (mailbox.id, *params),
            )
            for rowid, *row in rows:
                found.setdefault(rowid, _record_of(row))

        take("far_id = ''", ())
        take("near_id = ''", ())
        take("pending_flags IS NOT NULL", ())
        for side in Side:
            wanted = sorted(set(ids[side]))
            for at in range(0, len(wanted), IDS_PER_QUERY):
                marks, listed = _in_list(wanted[at : at + IDS_PER_QUERY])
                take(f"{_SIDE_COLUMN[side]} IN {marks}", listed)
        return [found[rowid] for rowid in sorted(found)]

    def recorded_flags(self, mailbox: MailboxState, side: Side) -> dict[str, str | None]:
        """Each id the records name on ``side`` and its recorded flags as ``flags_text``
        writes them (None: named by more than one record), to compare a listing with."""
        column = _SIDE_COLUMN[side]
        # One row per distinct set of flags with its ids joined (no id holds a NUL: a UID, a
        # file name), from the flags index: a few rows and strings, not one per record.
        rows = self._db.execute(
            f"SELECT flags, group_concat({column}, char(0)) FROM record"
            f" WHERE mailbox = ? AND {column} != '' GROUP BY flags",
            (mailbox.id,),
        )
        out: dict[str, str | None] = {}
        named = 0
        for flags, joined in rows:
            ids = joined.split("\0")
            named += len(ids)
            out.update(dict.fromkeys(ids, flags))
        if len(out) != named:
            seen: set[str] = set()
            for (id,) in self._db.execute(
                f"SELECT {column} FROM record WHERE mailbox = ? AND {column} != ''",
                (mailbox.id,),
            ):
                if id in seen:
                    out[id] = None
                seen.add(id)
        return out

    def recorded_count(self, mailbox: MailboxState, side: Side) -> int:
        """How many ids the records name on ``side``."""
        column = _SIDE_COLUMN[side]
        row = self._db.execute(
            f"SELECT COUNT(DISTINCT {column}) FROM record WHERE mailbox = ? AND {column} != ''",
            (mailbox.id,),
        ).fetchone()
        return int(row[0])

    def recorded_flag_names(self, mailbox: MailboxState) -> Flags:
        """Every flag the records hold: the few distinct sets of them, each found by one seek
        in the index of their flags past the one before (a skip scan; SELECT DISTINCT reads
        every record's entry: 12 ms of a one-flag sync at 100k messages, this 0.7 ms)."""
        return frozenset(
            flag
            for (text,) in self._db.execute(
                "WITH RECURSIVE sets(flags) AS ("
                " SELECT MIN(flags) FROM record WHERE mailbox = ?1"
                " UNION ALL SELECT (SELECT MIN(flags) FROM record"
                "  WHERE mailbox = ?1 AND flags > sets.flags)"
                " FROM sets WHERE sets.flags IS NOT NULL)"
                " SELECT flags FROM sets WHERE flags IS NOT NULL",
                (mailbox.id,),
            )
            for flag in text.split()
        )

    def put(self, mailbox: MailboxState, records: Iterable[Record]) -> None:
        with self.transaction():
            self._db.executemany(
                f"INSERT INTO record (mailbox, {_RECORD_COLUMNS})"
                f" VALUES (?, {', '.join('?' * _RECORD_COLUMNS.count(','))}, ?)",
                ((mailbox.id, *_record_values(r)) for r in records),
            )

    def set_pending(
        self,
        mailbox: MailboxState,
        pending: Iterable[tuple[Record, PendingFlags]],
        cursors: tuple[Cursor, Cursor] | None = None,
    ) -> None:
        """Journal flag updates before they are carried (one row per record, as ``drop``);
        with ``cursors``, set the mailbox's in the same transaction."""
        with self.transaction():
            if cursors is not None:
                self.set_cursors(mailbox, cursors)
            self._db.executemany(
                "UPDATE record SET pending_flags = ?, pending_sides = ? WHERE rowid IN"
                " (SELECT rowid FROM record WHERE mailbox = ? AND far_id = ? AND near_id = ?"
                " LIMIT 1)",
                (
                    (
                        flags_text(p.flags),
                        _sides_bits(p.sides),
                        mailbox.id,
                        r.ids[Side.FAR],
                        r.ids[Side.NEAR],
                    )
                    for r, p in pending
                ),
            )

    def drop(self, mailbox: MailboxState, records: Iterable[Record]) -> None:
        with self.transaction():
            self._db.executemany(
                "DELETE FROM record WHERE rowid IN (SELECT rowid FROM record"
                " WHERE mailbox = ? AND far_id = ? AND near_id = ? LIMIT 1)",
                ((mailbox.id, r.ids[Side.FAR], r.ids[Side.NEAR]) for r in records),
            )

    def replace(self, mailbox: MailboxState, old: Iterable[Record], new: Iterable[Record]) -> None:
        """Drop ``old``, put ``new``, in one transaction (``_rewritten``)."""
        with self.transaction():
            self._rewritten(mailbox, list(old), list(new))

    def _rewritten(self, mailbox: MailboxState, old: list[Record], new: list[Record]) -> None:
        """``drop(old)`` then ``put(new)``, by rows: the rows ``drop`` would delete, in its
        order, take the new records in theirs (an UPDATE of the columns that differ), and the
        rest are deleted or inserted.  SQLite rewrites only the indexes of changed columns:
        a copy's result, its intent given the id the destination chose, touches the two
        indexes of that side's id instead of deleting and inserting in all six, the content
        index (random keys: a page anywhere in it per message) among them.  The initial sync
        of 50k messages wrote 0.72 GB to disk for its 25 MB state database (each commit's
        pages go to the WAL again)."""
        taken: set[int] = set()  # the rows of old records met so far, as drop deletes them
        for at in range(0, len(old), REWRITE_PART):  # a bounded part at a time (memory)
            part = old[at : at + REWRITE_PART]
            rows = self._rows_of(mailbox, part, taken)
            deleted: list[tuple[int]] = []
            updated: dict[tuple[int, ...], list[tuple[object, ...]]] = {}  # by columns changed
            for r in part:
                found = rows.get((r.ids[Side.FAR], r.ids[Side.NEAR]))
                if not found:
                    continue
                rowid, was = found.popleft()
                if len(taken) >= len(new):
                    deleted.append((rowid,))
                else:
                    now = _record_values(new[len(taken)])
                    changed = tuple(
                        i for i, (a, b) in enumerate(zip(was, now, strict=True)) if a != b
                    )
                    if changed:
                        updated.setdefault(changed, []).append((*(now[i] for i in changed), rowid))
                taken.add(rowid)
            # Each row once, whatever the order: a row is taken by one old record at most.
            self._db.executemany("DELETE FROM record WHERE rowid = ?", deleted)
            for changed, params in updated.items():
                sets = ", ".join(f"{_RECORD_NAMES[i]} = ?" for i in changed)
                self._db.executemany(f"UPDATE record SET {sets} WHERE rowid = ?", params)
        self.put(mailbox, new[len(taken) :])

    def _rows_of(
        self, mailbox: MailboxState, records: list[Record], taken: set[int]
    ) -> dict[tuple[str, str], deque[tuple[int, tuple[object, ...]]]]:
        """The rows of ``mailbox`` with the ids of one of ``records`` but those ``taken``, by
        those ids, each ids' rows in rowid order (the order ``drop`` deletes them in): read by
        the indexes of the ids, in one statement or two, not one per record."""
        wanted = {(r.ids[Side.FAR], r.ids[Side.NEAR]) for r in records}
        rows: dict[tuple[str, str], deque[tuple[int, tuple[object, ...]]]] = {}
        by_far = sorted({far for far, _ in wanted if far})
        by_near = sorted({near for far, near in wanted if not far})
        for ids, where in ((by_far, "far_id IN"), (by_near, "far_id = '' AND near_id IN")):
            if not ids:
                continue
            marks, listed = _in_list(ids)
            for rowid, *row in self._db.execute(
                f"SELECT rowid, {_RECORD_COLUMNS} FROM record WHERE mailbox = ?"
                f" AND {where} {marks} ORDER BY rowid",
                (mailbox.id, *listed),
            ):
                key = (row[0], row[1])
                if key in wanted and rowid not in taken:
                    rows.setdefault(key, deque()).append((rowid, tuple(row)))
        return rows

    def rewrite(
        self,
        changes: Iterable[tuple[MailboxState, list[Record], list[Record]]],
        cursors: tuple[MailboxState, tuple[Cursor, Cursor]] | None = None,
    ) -> None:
        """For each (mailbox, old, new) in order: drop ``old``, put ``new``; then set
        ``cursors`` (a mailbox's) if given; all in one transaction, so a move's records leave
        one mailbox and reach the other in one durable step."""
        with self.transaction():
            for mailbox, old, new in changes:
                self._rewritten(mailbox, old, new)
            if cursors is not None:
                self.set_cursors(*cursors)

    def drop_all(self, mailbox: MailboxState) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM record WHERE mailbox = ?", (mailbox.id,))

    # --- Gmail's labels mode --------------------------------------------------------------

    def put_gmail_ids(self, mailbox: MailboxState, validity: str, ids: dict[str, int]) -> None:
        """Record which Gmail message (X-GM-MSGID) each server UID of ``mailbox`` shows."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO gmail_message (mailbox, far_validity, far_id, msgid)"
                " VALUES (?, ?, ?, ?)",
                ((mailbox.id, validity, far_id, msgid) for far_id, msgid in ids.items()),
            )

    def without_gmail_ids(self, mailbox: MailboxState) -> list[str]:
        """The server ids of the mailbox's paired records whose Gmail message is not recorded
        (under the mailbox's current validity): records made before the labels mode."""
        rows = self._db.execute(
            "SELECT r.far_id FROM record r JOIN mailbox m ON m.id = r.mailbox"
            " WHERE r.mailbox = ? AND r.far_id != '' AND r.near_id != '' AND NOT EXISTS"
            " (SELECT 1 FROM gmail_message g WHERE g.mailbox = r.mailbox"
            " AND g.far_id = r.far_id AND g.far_validity = m.far_validity)",
            (mailbox.id,),
        )
        return [far_id for (far_id,) in rows]

    def gmail_ids(self, mailbox: MailboxState, far_ids: Iterable[str]) -> dict[str, int]:
        """The X-GM-MSGID recorded for each of ``far_ids`` under the mailbox's current
        validity (ids without one are left out)."""
        out = {}
        for far_id in far_ids:
            row = self._db.execute(
                "SELECT g.msgid FROM gmail_message g JOIN mailbox m ON m.id = g.mailbox"
                " WHERE g.mailbox = ? AND g.far_id = ? AND g.far_validity = m.far_validity",
                (mailbox.id, far_id),
            ).fetchone()
            if row is not None:
                out[far_id] = int(row[0])
        return out

    def local_copies(
        self, msgids: Iterable[int], besides: MailboxState
    ) -> dict[int, list[tuple[str, str]]]:
        """Where each Gmail message is recorded in the Maildir outside mailbox ``besides``:
        (local folder name, local id) of each record paired with a UID that shows it."""
        out: dict[int, list[tuple[str, str]]] = {}
        for msgid in msgids:
            rows = self._db.execute(
                "SELECT COALESCE(f.near_name, f.far_name), r.near_id FROM gmail_message g"
                " JOIN mailbox m ON m.id = g.mailbox AND m.far_validity = g.far_validity"
                " JOIN record r ON r.mailbox = g.mailbox AND r.far_id = g.far_id"
                " JOIN folder f ON f.far_name = m.name"
                " WHERE g.msgid = ? AND g.mailbox != ? AND r.near_id != ''"
                " ORDER BY m.name",
                (msgid, besides.id),
            )
            found = [(near, near_id) for near, near_id in rows]
            if found:
                out[msgid] = found
        return out

    def store_memo(self, side: Side) -> str | None:
        """What a side's store learned of its server in an earlier run (``Store.memo``)."""
        return self._meta(_memo_key(side))

    def set_store_memo(self, side: Side, memo: str) -> None:
        self._set_meta(_memo_key(side), memo)

    def gmail_all_mail(self) -> Cursor | None:
        """Gmail's All Mail as the last complete labels-mode sync saw it (validity, UIDNEXT,
        HIGHESTMODSEQ, count), None when none was recorded.  Kept in ``meta``: All Mail is no
        mailbox pair of the account."""
        value = self._meta(_ALL_MAIL)
        if value is None:
            return None
        validity, uidnext, modseq, count = value.split()
        return Cursor(validity, int(uidnext), int(modseq), int(count))

    def set_gmail_all_mail(self, cursor: Cursor | None) -> None:
        value = None
        if cursor is not None:
            value = f"{cursor.validity} {cursor.uidnext} {cursor.modseq} {cursor.count}"
        self._set_meta(_ALL_MAIL, value)

    def _meta(self, key: str) -> str | None:
        """The account's ``meta`` value under ``key`` (None: none)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str | None) -> None:
        """Set (None: delete) the ``meta`` value under ``key``, a durable step of its own."""
        with self.transaction():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
                )

    def gmail_mailboxes(self, msgids: Iterable[int]) -> set[str]:
        """The pairs (names) in which any of these Gmail messages is recorded."""
        out: set[str] = set()
        for msgid in msgids:
            rows = self._db.execute(
                "SELECT DISTINCT m.name FROM gmail_message g JOIN mailbox m ON m.id = g.mailbox"
                " AND m.far_validity = g.far_validity WHERE g.msgid = ?",
                (msgid,),
            )
            out.update(name for (name,) in rows)
        return out

    def gmail_held(self, mailbox: MailboxState, msgids: Iterable[int]) -> set[int]:
        """Of these Gmail messages, those ``mailbox`` holds paired with a local file already
        (a record with both ids, under the mailbox's current validity)."""
        out = set()
        for msgid in msgids:
            row = self._db.execute(
                "SELECT 1 FROM gmail_message g JOIN mailbox m ON m.id = g.mailbox"
                " AND m.far_validity = g.far_validity"
                " JOIN record r ON r.mailbox = g.mailbox AND r.far_id = g.far_id"
                " WHERE g.mailbox = ? AND g.msgid = ? AND r.near_id != '' LIMIT 1",
                (mailbox.id, msgid),
            ).fetchone()
            if row is not None:
                out.add(msgid)
        return out

    def forget_gmail_ids(self, mailbox: MailboxState) -> int:
        """Forget which Gmail message the mailbox's UIDs show where no record holds the UID
        any more (the message left the label, or went everywhere) or the UID belongs to an
        old validity: such a row would only grow the table.  How many went."""
        with self.transaction():
            cursor = self._db.execute(
                "DELETE FROM gmail_message WHERE mailbox = ? AND (far_validity IS NOT"
                " (SELECT far_validity FROM mailbox WHERE id = ?) OR NOT EXISTS"
                " (SELECT 1 FROM record r WHERE r.mailbox = gmail_message.mailbox"
                " AND r.far_id = gmail_message.far_id))",
                (mailbox.id, mailbox.id),
            )
        return cursor.rowcount

    def gmail_message_like(self, identity: Identity, besides: MailboxState) -> GmailCopy | None:
        """A Gmail message of that content identity, recorded in a mailbox other than
        ``besides`` under its current validity: where it is and the flags last agreed on."""
        if not self._content_indexed:
            self._db.execute(_CONTENT_INDEX)
            self._content_indexed = True
        row = self._db.execute(
            "SELECT m.name, r.far_id, g.msgid, r.flags FROM record r"
            " JOIN mailbox m ON m.id = r.mailbox"
            " JOIN gmail_message g ON g.mailbox = r.mailbox AND g.far_id = r.far_id"
            " AND g.far_validity = m.far_validity"
            " WHERE r.header_digest = ? AND r.size = ? AND r.message_id IS ?"
            " AND COALESCE(r.body_digest, '') = ? AND r.mailbox != ? AND r.far_id != ''"
            " ORDER BY m.name LIMIT 1",
            (
                identity.header_digest,
                identity.size,
                identity.message_id,
                identity.body_digest,
                besides.id,
            ),
        ).fetchone()
        if row is None:
            return None
        name, far_id, msgid, flags = row
        return GmailCopy(name, far_id, int(msgid), frozenset(flags.split()))


def _in_list(ids: list[str]) -> tuple[str, list[str]]:
    """The placeholders of an ``IN`` list of ``ids`` ("(?, ?)") and its parameters: ``ids``
    with its last repeated up to the next power of two.  A list of any length then takes one
    of a few statements, where one per length would fill SQLite's statement cache (128 kept,
    each with its own program for its list: 10 MB more peak RSS in an initial sync of 50k)."""
    size = 1 << (len(ids) - 1).bit_length()
    return f"({', '.join('?' * size)})", ids + [ids[-1]] * (size - len(ids))


def _record_values(r: Record) -> tuple[object, ...]:
    """A record's row, as ``_RECORD_COLUMNS`` names it (``_record_of`` reads it back)."""
    return (
        r.ids[Side.FAR],
        r.ids[Side.NEAR],
        flags_text(r.flags),
        r.identity.message_id if r.identity else None,
        r.identity.size if r.identity else None,
        r.identity.header_digest if r.identity else None,
        r.identity.body_digest if r.identity else None,
        flags_text(r.pending.flags) if r.pending else None,
        _sides_bits(r.pending.sides) if r.pending else None,
    )


def _record_of(row: Sequence[Any]) -> Record:
    far_id, near_id, flags, message_id, size, digest, body, p_flags, p_sides = row
    identity = None if digest is None else Identity(message_id or "", size or 0, digest, body or "")
    pending = (
        None
        if p_flags is None
        else PendingFlags(
            frozenset(p_flags.split()), frozenset(s for s in Side if p_sides & (1 << s))
        )
    )
    return Record((far_id, near_id), frozenset(flags.split()), identity, pending)


def _failure(path: Path, what: str, exc: BaseException) -> str:
    """The message for a database error, saying so when the cause is a full file system (SQLite
    itself may only say "disk I/O error")."""
    why = f"state database {path} {what}: {exc}"
    try:
        full = str(path) != ":memory:" and os.statvfs(path.parent).f_bavail == 0
    except OSError:
        full = False
    return why + " (no space left on device in the state directory)" if full else why


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file, as opposed to a full disk, a lock or an I/O error (never moved aside)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _move_aside(path: Path, why: str) -> Path:
    """Rename ``path`` and its WAL and shared-memory files to ``<name>.<why>-<UTC time>``
    (whichever exist); returns the new name of the database file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.{why}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{why}-{stamp}.{n}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        try:
            part.rename(aside.with_name(aside.name + suffix))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StateError(
                f"state database {path} is damaged and cannot be moved aside: {exc}"
            ) from exc
    return aside


def _sides_bits(sides: Iterable[Side]) -> int:
    return sum(1 << s for s in sides)


def _cursor_row(
    c: Cursor,
) -> tuple[str | None, int | None, int | None, int | None, str | None, str | None]:
    return (c.validity, c.uidnext, c.modseq, c.count, c.digest, c.stamp)


def _memo_key(side: Side) -> str:
    return f"store_memo_{side.name.lower()}"
