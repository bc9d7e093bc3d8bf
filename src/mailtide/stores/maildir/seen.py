"""What a Maildir store reads before a sync decides its folders are unchanged, kept for the
quiet check (quiet/), and the check itself: whether the tree is still as it was then.

A quick sync takes a folder as unchanged when its stamp (stamp.py) and its id (folder_id.py)
are what the last complete sync recorded; which folders there are comes from the layout's
scan of the root.  The facts are those: the root (as configured and resolved), the layout,
the folder names the scan found, and each opened folder's directory, id and
stamp.  A stamp is only kept when it proves something (None, a time too recent, keeps none),
so the same stamp read later means the folder lists as it did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir.folder_id import folder_id
from mailtide.stores.maildir.layout import layout_for
from mailtide.stores.maildir.stamp import folder_stamp


def facts(
    root: str,
    real: str,
    layout: str,
    folders: Iterable[str],
    opened: Mapping[str, tuple[str, str | None]],
) -> dict[str, Any] | None:
    """The facts of one run (``opened``: each folder's directory -> its id and stamp as the
    run read them); None when a stamp proved nothing."""
    if any(stamp is None for _, stamp in opened.values()):
        return None
    return {
        "kind": "maildir",
        "root": root,
        "real": real,
        "layout": layout,
        "folders": sorted(folders),
        "opened": sorted([path, validity, stamp] for path, (validity, stamp) in opened.items()),
    }


def still(facts: Mapping[str, Any]) -> bool:
    """Whether the tree is as ``facts`` say: the same root, the same folders, each opened one
    with the same id and a stamp equal to the one recorded; False when anything cannot be
    read or is out of the ordinary (a folder the scan refuses, a read-only file system)."""
    try:
        real = os.path.realpath(os.path.expanduser(facts["root"]))
        if real != facts["real"] or not os.path.isdir(real):
            return False
        if os.statvfs(real).f_flag & os.ST_RDONLY:
            return False  # a sync refuses to write there, and says so
        listing = layout_for(facts["layout"]).scan(real)
        if listing.refused or sorted(listing.folders) != facts["folders"]:
            return False
        for path, validity, stamp in facts["opened"]:
            if folder_id(path, create=False) != validity or folder_stamp(path) != stamp:
                return False
    except (OSError, MailboxError, KeyError, TypeError, ValueError):
        return False
    return True
