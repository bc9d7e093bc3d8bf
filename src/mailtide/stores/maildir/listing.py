"""One listing of a folder's new/ and cur/, and opening the files it named (and the folder's
own files) safely.

A message is a regular file whose name does not start with "."; its id is
the name before ``:2,``, wherever the file is.  What else is there (a
symbolic link, dangling or not, a FIFO, a directory, a name that is not
UTF-8) is reported as skipped, with the reason, and never opened: a FIFO
would block a reader and a symlink may lead out of the Maildir.  Since
another program may swap such a thing in for a listed file (or put one in
place of ``dovecot-keywords`` or ``.mailtide-id``), ``open_regular`` opens
without following a symlink or waiting on a FIFO, and refuses what is not a
regular file.

Cost: a listing is one readdir of new/ and one of cur/.  The file type comes
from readdir itself and the size from the name's ``,S=`` (no stat per file, and
read only when asked for); only a message whose name carries no ``,S=`` is
stat-ed (for its size), only an entry that is no regular file is stat-ed (to
say what it is), and only names whose id occurs twice are stat-ed (to tell a
second name of one file from a second file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir.filenames import INFO, size_of, split_name

Entry = tuple[str, str]  # (subdir, file name)


@dataclass(frozen=True, slots=True)
class Clash:
    """Another file (not another name of the same file) whose id an indexed file has:
    ``entries`` are its names (more than one only for hard links), best first."""

    id: str
    entries: tuple[Entry, ...]
    size: int


@dataclass(slots=True)
class FolderListing:
    index: dict[str, Entry] = field(default_factory=dict)  # id -> the file's name
    # further names of an indexed file: a hard link left by an interrupted link-and-unlink
    # move between new/ and cur/, or a name seen before and after a rename during the listing
    twins: dict[str, list[Entry]] = field(default_factory=dict)
    clashes: list[Clash] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why not a message)
    sizes: dict[str, int] = field(default_factory=dict)  # id -> file size, where no ,S= says it


class ListedSizes(Mapping[str, int]):
    """The size of each message a listing holds (``ids``), read from its name's ``,S=`` only
    when asked for (a re-sync asks for the few that changed), else the size the listing
    stat-ed for a name without one (``stated``); 0 where neither tells."""

    __slots__ = ("_ids", "_stated")

    def __init__(self, ids: Mapping[str, object], stated: Mapping[str, int]) -> None:
        self._ids = ids
        self._stated = stated

    def __getitem__(self, id: str) -> int:
        if id not in self._ids:
            raise KeyError(id)
        size = size_of(id)
        return self._stated.get(id, 0) if size is None else size

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class NotARegularFile(FileNotFoundError):
    """The name holds no regular file (now): for a message, as if it had moved away."""


def list_folder(folder: str) -> FolderListing:
    """One listing of ``folder``'s new/ then cur/ (MailboxError when either cannot be read).

    Of several files with one id, the one with the lowest inode number keeps it (stable
    whatever the files are renamed to, so the same one every time); the others are clashes.
    """
    out = FolderListing()
    named_twice: dict[str, list[Entry]] = {}
    # The loop below runs once per message (a local change lists every file of a changed
    # folder): names bound once, the directories read in it, the id split off inline (as
    # ``split_name``), no generator (issue 12).
    index = out.index
    sizes = out.sizes
    for sub in ("new", "cur"):
        try:
            listed = os.scandir(os.path.join(folder, sub))
        except OSError as err:
            raise MailboxError(f"Maildir folder {folder} cannot be read: {err}") from err
        with listed:
            for entry in listed:
                filename = entry.name
                if filename[:1] == ".":
                    continue
                try:
                    regular = entry.is_file(follow_symlinks=False)
                except OSError:
                    continue
                if not regular:
                    out.skipped.append((printable(entry.path), why_not_a_message(entry)))
                    continue
                if not filename.isascii() and not _utf8(filename):
                    out.skipped.append((printable(entry.path), "its name is not UTF-8"))
                    continue
                unique, info, _ = filename.rpartition(INFO)
                if not info:
                    unique = filename
                if ",S=" not in unique:  # (the size in the name is read only when asked for)
                    with contextlib.suppress(OSError):  # gone meanwhile: found vanished later
                        sizes[unique] = entry.stat(follow_symlinks=False).st_size
                if unique in index:
                    named_twice.setdefault(unique, [index[unique]]).append((sub, filename))
                index[unique] = (sub, filename)
    for unique, entries in named_twice.items():
        _sort_out(folder, unique, entries, out)
    return out


def find_files(folder: str, ids: Collection[str]) -> dict[str, Entry] | None:
    """The names of the messages ``ids`` in ``folder``'s new/ and cur/, found by one readdir
    of each that only compares names: no stat and nothing made of a name not wanted (a few
    messages of a big folder, where ``list_folder`` would index every file).  A name counts
    as ``list_folder`` counts it (a regular file, not hidden, UTF-8).  An id not found is left
    out; None when an id has more than one name (only a full listing sorts that out).
    MailboxError when either directory cannot be read."""
    out: dict[str, Entry] = {}
    for sub, entry in _entries(folder):
        filename = entry.name
        unique = split_name(filename)[0]
        if unique not in ids or filename.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        if not filename.isascii() and not _utf8(filename):
            continue
        if unique in out:
            return None
        out[unique] = (sub, filename)
    return out


def find_by_names(folder: str, names: Mapping[str, Sequence[Entry]]) -> dict[str, Entry]:
    """The messages of ``names`` (id -> the names its file is expected to have, in new/ or
    cur/) found under one of them: a regular file there now.  What ``find_files`` does for a
    few messages, by one ``lstat`` each instead of a readdir of the whole folder; an id not
    found so is left out (its caller looks again by ``find_files``)."""
    out: dict[str, Entry] = {}
    for msg_id, entries in names.items():
        for sub, filename in entries:
            try:
                st = os.lstat(os.path.join(folder, sub, filename))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out[msg_id] = (sub, filename)
                break
    return out


def _entries(folder: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every directory entry of ``folder``'s new/ then cur/, with its subdirectory's name;
    MailboxError when either cannot be read."""
    for sub in ("new", "cur"):
        try:
            it = os.scandir(os.path.join(folder, sub))
        except OSError as err:
            raise MailboxError(f"Maildir folder {folder} cannot be read: {err}") from err
        with it:
            for entry in it:
                yield sub, entry


def _sort_out(folder: str, unique: str, entries: list[Entry], out: FolderListing) -> None:
    """Group the names of one id by the file they name now; the lowest inode keeps the id."""
    files: dict[tuple[int, int], list[Entry]] = {}
    sizes: dict[tuple[int, int], int] = {}
    for entry in entries:
        try:
            st = os.lstat(os.path.join(folder, *entry))
        except OSError:
            continue  # renamed or deleted during the listing: a stale name
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            files.setdefault(key, []).append(entry)
            sizes[key] = st.st_size
    if not files:
        return  # all gone meanwhile: the last name stays indexed, to be found vanished
    for names in files.values():
        names.sort(key=lambda e: (e[0] != "cur", e[1]))  # cur/ first (a reader saw it), by name
    keeper, *others = sorted(files)
    out.index[unique] = files[keeper][0]
    if len(files[keeper]) > 1:
        out.twins[unique] = files[keeper][1:]
    for key in others:
        out.clashes.append(Clash(unique, tuple(files[key]), sizes[key]))


def why_not_a_message(entry: os.DirEntry[str]) -> str:
    """What a directory entry that is no regular file is, as the reason it is skipped."""
    try:
        if entry.is_symlink():
            if not os.path.exists(entry.path):
                return "a dangling symbolic link, not a message file"
            return "a symbolic link, which mailtide never follows"
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as err:
        return f"it cannot be examined: {err.strerror}"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a message file"
    if stat.S_ISDIR(mode):
        return "a directory, not a message file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a message file"
    return "a device or other special file, not a message file"


def open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """The regular file at ``path`` (a message file, a keyword table, a folder id) open for
    reading, and its status.

    Never follows a symbolic link and never waits on a FIFO; raises NotARegularFile
    when ``path`` is not a regular file now, FileNotFoundError when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotARegularFile(errno.ENOENT, "a symbolic link now", path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(errno.ENOENT, "not a regular file now", path)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str) -> bytes:
    """The content of the small regular file at ``path``, opened as ``open_regular`` does."""
    f, _ = open_regular(path)
    with f:
        return f.read()


def printable(path: str) -> str:
    """``path`` for a log line: bytes that are not UTF-8 shown as Latin-1."""
    if _utf8(path):
        return path
    return path.encode("utf-8", "surrogateescape").decode("latin-1")


def _utf8(name: str) -> bool:
    """Whether a name decoded from the file system is real UTF-8 (no escaped bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
