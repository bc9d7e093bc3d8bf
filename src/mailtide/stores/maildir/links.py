"""Hard links: one message file under the names of several folders (Gmail's labels mode).

A link is another directory entry of the same inode, so no byte of the message is written
again and the folders cannot disagree about its content.  Each folder's name of the file is
its own (its own unique part and info letters): a flag change renames one name only, and the
sync carries it to the others through the server, as for any message.

The order that makes a link safe is delivery's without the writing: ``link(2)`` straight into
``cur/`` or ``new/`` under a fresh unique name (the inode's bytes are durable already), then
the directory made durable; only then may the caller record the new id.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import structlog

from mailtide.stores.base import Link, MailboxError
from mailtide.stores.maildir.durability import fsync_dirs
from mailtide.stores.maildir.filenames import full_name, new_unique, with_size
from mailtide.stores.maildir.flags import Keywords, letters_of_flags
from mailtide.stores.maildir.journal import FileChange, WriteJournal
from mailtide.stores.maildir.listing import Entry, list_folder

log = structlog.get_logger("mailtide.stores.maildir")

Listings = dict[str, dict[str, Entry] | None]  # folder -> its index (None: unreadable)


def _entries(folder: str, locate: Callable[[str], str], seen: Listings) -> dict[str, Entry] | None:
    """The id index of ``folder`` (listed once per call), None when it cannot be listed."""
    if folder not in seen:
        try:
            seen[folder] = list_folder(locate(folder)).index
        except (MailboxError, OSError) as err:
            log.debug("maildir.link_source_unlisted", folder=folder, error=str(err))
            seen[folder] = None
    return seen[folder]


def source_path(
    sources: Iterable[tuple[str, str]],
    locate: Callable[[str], str],
    fits: Callable[[str], bool],
    seen: Listings,
) -> str | None:
    """The path of the first of ``sources`` that exists and ``fits`` (its content is the
    message's), None when none does."""
    for folder, msg_id in sources:
        index = _entries(folder, locate, seen)
        entry = index.get(msg_id) if index else None
        if entry is None:
            continue
        path = os.path.join(locate(folder), *entry)
        try:
            if fits(path):
                return path
        except FileNotFoundError:  # renamed or deleted by another client meanwhile
            continue
        log.warning("maildir.link_source_differs", path=path)
    return None


def make_link(
    folder: str, name: str, source: str, link: Link, keywords: Keywords, journal: WriteJournal
) -> tuple[str, Entry]:
    """Link ``source`` into ``folder`` (canonical ``name``) under a fresh unique name with the
    link's flags: its id and (subdirectory, file name).  Not yet durable."""
    size = os.stat(source).st_size
    unique = with_size(new_unique(link.hint), size)
    letters = letters_of_flags(link.flags, keywords) or None
    sub = "new" if letters is None else "cur"
    filename = full_name(unique, letters)
    dest = os.path.join(folder, sub, filename)
    journal.before(dest)
    os.link(source, dest, follow_symlinks=False)
    journal.done(FileChange("added", name, dest))
    return unique, (sub, filename)


def held(files: Sequence[tuple[str, str]], locate: Callable[[str], str]) -> set[tuple[str, str]]:
    """Those of ``files`` (folder, id) that exist.  A folder that cannot be listed counts as
    holding all of its files: an unmounted or vanished folder must never read as empty."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for folder, msg_id in files:
        by_folder[folder].append(msg_id)
    out: set[tuple[str, str]] = set()
    seen: Listings = {}
    for folder, ids in by_folder.items():
        index = _entries(folder, locate, seen)
        out.update((folder, i) for i in ids if index is None or i in index)
    return out


def make_durable(directories: Iterable[str]) -> None:
    fsync_dirs(sorted(set(directories)))
