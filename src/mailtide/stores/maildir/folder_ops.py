"""Renaming and removing a Maildir folder as a whole, without touching a message file.

A rename is one ``rename(2)`` of the folder's directory: its files keep their names and
inodes, and its ``.mailtide-id`` goes with it, so the folder is known again by its id.  In the
``fs`` layout the folders under it move with it (they are below it); in ``maildir++`` each is
its own ``.A.B`` directory beside it, renamed one after the other, the folder itself last (a
crash in between leaves children already renamed, which the next run recognises by their ids).

A removal takes only an empty folder: ``cur/`` and ``new/`` are removed with ``rmdir``, which
fails on a file delivered meanwhile (then what was removed is made again and nothing else is
touched); mailtide's own files go with them; the directory itself only when nothing else (a
subfolder, another program's file) is left in it.
"""

from __future__ import annotations

import contextlib
import os

from mailtide.private import make_dirs
from mailtide.stores.base import StoreError
from mailtide.stores.maildir.durability import fsync_dir
from mailtide.stores.maildir.layout import SUBFOLDER_MARKER

# mailtide's own files in a folder (folder_id.FOLDER_ID_FILE, flags.KEYWORDS_FILE), removed with it
OWN_FILES = (".mailtide-id", "dovecot-keywords", SUBFOLDER_MARKER)


def rename_dir(old: str, new: str, children: list[tuple[str, str]]) -> None:
    """Rename directory ``old`` to ``new`` (its missing parents made 0700), after each
    (old, new) of ``children`` (maildir++ subfolders beside it); durably.  StoreError when a
    target exists: nothing is renamed then."""
    for _, target in [*children, (old, new)]:
        if os.path.lexists(target):
            raise StoreError(f"{target} exists already")
    try:
        for source, target in [*children, (old, new)]:
            for made in make_dirs(os.path.dirname(target)):
                fsync_dir(os.path.dirname(made))
            # rename(2) onto an empty directory would replace it: lexists above says no
            os.rename(source, target)
            fsync_dir(os.path.dirname(target))
            if os.path.dirname(source) != os.path.dirname(target):
                fsync_dir(os.path.dirname(source))
    except OSError as err:
        raise StoreError(f"cannot rename {old} to {new}: {err}") from err


def remove_empty_folder(path: str) -> None:
    """Remove the Maildir folder at ``path`` if it holds no message (StoreError otherwise)."""
    for sub in ("cur", "new", "tmp"):
        with contextlib.suppress(FileNotFoundError), os.scandir(os.path.join(path, sub)) as it:
            if next(it, None) is not None:
                raise StoreError(f"{path} is not empty (its {sub}/ holds a file)")
    removed: list[str] = []
    try:
        for sub in ("tmp", "new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(os.path.join(path, sub))
                removed.append(sub)
    except OSError as err:  # a message arrived meanwhile: put the folder back as it was
        for sub in removed:
            with contextlib.suppress(OSError):
                os.mkdir(os.path.join(path, sub), 0o700)
        raise StoreError(f"{path} is not empty: {err}") from err
    try:
        for name in OWN_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
        with contextlib.suppress(OSError):  # not empty: a subfolder or another's file stays
            os.rmdir(path)
        fsync_dir(os.path.dirname(path) if not os.path.isdir(path) else path)
    except OSError as err:
        raise StoreError(f"cannot remove {path}: {err}") from err
