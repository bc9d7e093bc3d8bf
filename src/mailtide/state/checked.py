"""Whether a state database is as mailtide left it when it last closed it cleanly, so that its
full check at open (``PRAGMA quick_check``, which reads every page: work in proportion to the
account, at every run) can be left out.

Closing a database it opened, mailtide writes ``<db>.checked`` beside it: the file's device,
inode, size and modification and change times.  Opening, it reads and removes that mark: only a
mark equal to the file now, with no WAL left beside it, vouches that nothing wrote to the file
since (not a crash, which leaves no mark because it was removed at open; not another program;
not a restore from a backup).  Damage that leaves every time as it was (a failing disk) is
found when SQLite reads the page, as an error of the run, not by this check.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mailtide.private import create_file


def _mark(db: Path) -> Path:
    return db.with_name(db.name + ".checked")


def signature(db: Path) -> str | None:
    """The file's device, inode, size, modification and change times (None: no file)."""
    try:
        st = os.stat(db)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def unchanged_since_closed(db: Path) -> bool:
    """Whether ``db`` is as mailtide closed it (see the module doc); the mark is used up."""
    mark = _mark(db)
    try:
        recorded = mark.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    with contextlib.suppress(OSError):
        mark.unlink()
    return recorded == settled_signature(db)


def settled_signature(db: Path) -> str | None:
    """``signature(db)`` when its WAL holds nothing (the file is all there is); else None."""
    wal = db.with_name(db.name + "-wal")
    with contextlib.suppress(FileNotFoundError):
        if wal.stat().st_size:
            return None
    return signature(db)


def closed_cleanly(db: Path) -> None:
    """Record that mailtide closed ``db`` (the database closed, its WAL checkpointed)."""
    now = signature(db)
    if now is None:
        return
    mark = _mark(db)
    staged = mark.with_name(mark.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()  # left by a run killed here
    with contextlib.suppress(OSError):  # no mark: the next open checks, as without one
        with create_file(str(staged)) as f:
            f.write(now.encode())
        os.replace(staged, mark)
