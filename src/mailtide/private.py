"""What mailtide creates on disk (Maildir folders and files, its state) is private to its user,
as Dovecot and mbsync make their Maildirs.

Directories are made 0700 and files 0600 whatever the umask: the mode is given
to mkdir and open themselves (the umask can only take bits away from it), so
nothing is ever readable by others, not even for an instant.  Only what
mailtide creates gets these modes: an existing root or folder keeps the mode
its owner gave it, and nothing here calls chmod.
"""

from __future__ import annotations

import os
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_dirs(path: str) -> list[str]:
    """Create ``path`` and its missing parents, each 0700; returns those created, outermost
    first (empty when ``path`` was a directory already).  Raises OSError as ``os.makedirs``
    does (FileExistsError when ``path`` exists and is not a directory)."""
    missing: list[str] = []
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    made: list[str] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # another process made it meanwhile: it is not ours
        made.append(directory)
    return made


def create_file(path: str) -> BinaryIO:
    """A new file open for writing, 0600; FileExistsError when ``path`` exists."""
    return _opened(create_fd(path))


def create_fd(path: str) -> int:
    """``create_file`` as a bare descriptor (no Python file object, no isatty or fstat)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)


def touch_file(path: str) -> None:
    """Create ``path`` empty and 0600 unless it exists (then it is left as it is)."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))


def _opened(fd: int) -> BinaryIO:
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
