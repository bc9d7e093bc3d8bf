"""The proof a quiet run leaves for the quiet check (mailtide/quiet/):
``<state_dir>/<account>.sqlite.quiet``, private to its user, replaced whole (a file written
aside, then renamed).

It holds what each store read (``Store.seen``: the IMAP answers, the Maildir's
folders, ids and stamps), the number of mailbox pairs the run reported, and three signatures
that must still be as they were: the configuration file's, the state database's as the run
closed it (its device, inode, size and times, with nothing pending in its WAL: any later
write changes them), and mailtide's code's (each source file's size and time, so a new
version decides anew).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtide.private import create_file
from mailtide.state.checked import settled_signature, signature

FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Proof:
    code: str
    config: str
    state: str
    mailboxes: int
    sides: tuple[dict[str, Any], dict[str, Any]]  # by Side: each store's ``seen``


def proof_file(db: Path) -> Path:
    return db.with_name(db.name + ".quiet")


def code_signature() -> str:
    """The size and time of each of mailtide's source files, in one string."""
    parts: list[str] = []
    _code_files(str(_PACKAGE), "", parts)
    return " ".join(parts)


def _code_files(top: str, prefix: str, parts: list[str]) -> None:
    """``parts`` += "where:size:mtime" of each ``.py`` file under ``top`` (``where`` relative
    to the package, ``prefix`` that of ``top``), in name order, a directory's files before its
    subdirectories (``__pycache__`` left out)."""
    with os.scandir(top) as listed:
        entries = sorted(listed, key=lambda e: e.name)
    dirs = []
    for entry in entries:
        if entry.is_dir():
            if entry.name != "__pycache__" and not entry.is_symlink():  # as os.walk
                dirs.append(entry)
        elif entry.name.endswith(".py"):
            st = entry.stat()
            parts.append(f"{prefix}{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    for entry in dirs:
        _code_files(entry.path, f"{prefix}{entry.name}/", parts)


def signatures(db: Path, config: Path) -> tuple[str, str, str] | None:
    """The code's, the configuration's and the state's signatures now; None when a file is
    missing or the state has writes pending in its WAL."""
    state = settled_signature(db)
    configured = signature(config)
    if state is None or configured is None:
        return None
    return code_signature(), configured, state


def record(db: Path, config: Path, sides: Sequence[dict[str, Any]], mailboxes: int) -> bool:
    """Write the proof of a quiet run that has closed its state ``db``; False when it could
    not be (a file missing, a disk full): the next run then simply goes the engine's way."""
    now = signatures(db, config)
    if now is None:
        return False
    code, configured, state = now
    text = json.dumps(
        {
            "format": FORMAT,
            "code": code,
            "config": configured,
            "state": state,
            "mailboxes": mailboxes,
            "sides": list(sides),
        }
    )
    return _written(proof_file(db), text.encode())


def _written(path: Path, data: bytes) -> bool:
    """``path`` replaced whole by ``data`` (written aside, then renamed); False on failure."""
    staged = path.with_name(path.name + ".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()  # left by a run killed here
        with create_file(str(staged)) as f:
            f.write(data)
        os.replace(staged, path)
    except OSError:
        return False
    return True


def forget(db: Path) -> None:
    """Remove the proof (a run that was not quiet leaves none to be read)."""
    with contextlib.suppress(OSError):
        os.unlink(proof_file(db))


def reached_file(db: Path) -> Path:
    return db.with_name(db.name + ".reached")


def record_reached(db: Path, config: Path, logged_in: bool) -> None:
    """After a run over the account of ``db``: whether it reached its servers and logged in
    (``logged_in``: the account did not fail), with the configuration it read (its
    signature).  The next run begins its server session before its modules load only after
    such a run (``reached``, quiet/early.py): where a login was refused, the next run tries
    once, not twice."""
    configured = signature(config) if logged_in else None
    if configured is None:
        with contextlib.suppress(OSError):
            os.unlink(reached_file(db))
    elif not reached(db, config):  # written once while the configuration stays
        _written(reached_file(db), configured.encode())


def reached(db: Path, config: Path) -> bool:
    """Whether the last run over ``db``'s account reached its servers with the configuration
    as it is now (``record_reached``)."""
    try:
        return reached_file(db).read_text() == signature(config)
    except (OSError, ValueError):
        return False


def read(db: Path) -> Proof | None:
    """The proof left beside ``db``, or None (none, unreadable, another format)."""
    try:
        data = json.loads(proof_file(db).read_bytes())
        if data.get("format") != FORMAT:
            return None
        sides = data["sides"]
        return Proof(
            str(data["code"]),
            str(data["config"]),
            str(data["state"]),
            int(data["mailboxes"]),
            (dict(sides[0]), dict(sides[1])),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
