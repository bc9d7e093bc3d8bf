"""The lock that keeps two mailtide processes from syncing one account at once: an flock on
``<state_dir>/<account>.lock``, which holds the pid of its holder.  Its own module because the
quiet check (quiet/) takes it without loading SQLite."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mailtide.private import FILE_MODE, make_dirs


def state_file(state_dir: str | os.PathLike[str], account: str) -> Path:
    """Where the state database of ``account`` is."""
    return Path(state_dir) / f"{account}.sqlite"


class StateError(Exception):
    """The state database cannot be used (the message is for the user)."""


def lock_account(db: Path) -> int:
    """An exclusive flock on the lock file of the state database ``db`` (held until the
    descriptor is closed), or StateError.

    The error does not name the account: every account failure is reported after
    "account NAME: " already."""
    path = db.with_suffix(".lock")
    try:
        make_dirs(str(path.parent))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise StateError(f"state directory {path.parent} cannot be used: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        who = f"another mailtide (pid {holder})" if holder.isdigit() else "another mailtide"
        raise StateError(
            f"{who} is already syncing this account; try again when it has finished"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
