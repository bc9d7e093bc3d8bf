"""Files that share an id in one folder: each but one gets a fresh unique name.

Two files named ``X`` and ``X:2,FS`` (or ``new/X`` and ``cur/X:2,S``) are one
message only when they are one file.  Distinct files with one unique name
(restored from a backup, copied by hand, a tool that does not make names
unique) are distinct messages, so, as Dovecot does, every file but the one
that keeps the id (see ``listing.list_folder``) is renamed to a fresh unique
name, in its subdirectory and with its info, and the rename is logged.

Only the renames are done here; the caller does them only after a listing
that ran while new/ and cur/ did not change (so all those names existed at
once) and never in a dry run.  They are made durable before any new id is
handed out: a rename lost in a crash after its id was recorded would look
like a deletion.
"""

from __future__ import annotations

import os

import structlog

from mailtide.stores.maildir.durability import fsync_dirs
from mailtide.stores.maildir.filenames import full_name, new_unique, split_name, with_size
from mailtide.stores.maildir.journal import FileChange, WriteJournal
from mailtide.stores.maildir.listing import Clash, Entry

log = structlog.get_logger("mailtide.stores.maildir")


def give_fresh_names(
    folder: str, clashes: list[Clash], journal: WriteJournal | None = None, name: str = ""
) -> dict[str, list[Entry]]:
    """Rename every name of each clashing file to one fresh id; the new ids with the file's
    names, best first.  A name gone meanwhile is left alone (a later scan sees what became of
    it).  Raises OSError when a rename or making it durable fails."""
    renamed: dict[str, list[Entry]] = {}
    touched: set[str] = set()
    for clash in clashes:
        fresh = with_size(new_unique(None), clash.size)
        for sub, filename in clash.entries:
            target = full_name(fresh, split_name(filename)[1])
            source, dest = os.path.join(folder, sub, filename), os.path.join(folder, sub, target)
            if journal is not None:
                journal.before(source, dest)
            try:
                os.rename(source, dest)
            except FileNotFoundError:
                continue
            if journal is not None:
                journal.done(FileChange("renamed", name, dest, source))
            touched.add(sub)
            renamed.setdefault(fresh, []).append((sub, target))
            log.warning(
                "maildir.duplicate_renamed",
                folder=folder,
                file=f"{sub}/{filename}",
                renamed=f"{sub}/{target}",
                reason=f"another file in this folder has the same unique name {clash.id}; "
                "renamed so that each file is a message of its own",
            )
    fsync_dirs(os.path.join(folder, sub) for sub in sorted(touched))
    return renamed
