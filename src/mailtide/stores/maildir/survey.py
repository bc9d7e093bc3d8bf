"""What an existing Maildir root holds, looked at before an account's first sync.

The wrong ``layout`` on an existing tree lists none of its folders, so the
first sync would download every message again beside them; a root that is
not a Maildir at all (a home directory) would get folders among the user's
files.  So a root is classified before the first sync:

============== =========================================================
empty          nothing, or only Maildir data of no folder (below)
fs             only fs folders: directories with cur/ and new/ (such as
               ``INBOX``), or directories leading only to such folders
maildir++      only maildir++ signs: cur/, new/ or tmp/ at the root,
               hidden directories with cur/ and new/ (``.Archive.2024``)
mixed          both
not a Maildir  anything else: a file, or a directory holding files but no
               folder, at the root or among the directories leading to fs
               folders
============== =========================================================

Maildir data that is neither layout's sign and never "other": every hidden
entry that is no maildir++ folder (``.mailtide-id``, mbsync's
``.mbsyncstate`` and ``.uidvalidity``, notmuch's ``.notmuch``), Dovecot's
and Courier's files (``dovecot*``, ``courier*``), ``subscriptions``,
``maildirfolder``, ``maildirsize``, and a file system's ``lost+found``.
Inside an fs folder nothing is looked at: what a folder holds is its own.

Cost: one listing of the root and of the plain directories above fs folders
(a directory with a file in it ends its branch at once), one stat per entry
there to tell folders; run once, at an account's first sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from mailtide.stores.maildir.layout import MAILDIR_SUBDIRS, is_maildir
from mailtide.stores.maildir.settings import Layout

RootKind = Literal["empty", "fs", "maildir++", "mixed", "not a Maildir"]
Verdict = Literal["mail", "nothing", "other"]

_TOOL_PREFIXES = ("dovecot", "courier")
_TOOL_NAMES = frozenset({"subscriptions", "maildirfolder", "maildirsize", "lost+found"})
MAX_DEPTH = 32  # nested plain directories above an fs folder; deeper is taken for other data
SHOWN = 3  # names quoted in a message


@dataclass(frozen=True, slots=True)
class RootSurvey:
    """What a root holds: entries at the root, sorted, by what they are."""

    root: str
    fs: tuple[str, ...] = ()  # fs folders, or directories leading only to fs folders
    maildirpp: tuple[str, ...] = ()  # "cur/", "new/", "tmp/" and ".A.B" folders
    other: tuple[str, ...] = ()  # neither Maildir folders nor Maildir data

    @property
    def kind(self) -> RootKind:
        if self.other:
            return "not a Maildir"
        if self.fs and self.maildirpp:
            return "mixed"
        if self.fs:
            return "fs"
        return "maildir++" if self.maildirpp else "empty"

    def refusal(self, layout: Layout, table: str) -> str | None:
        """Why a first sync with ``layout`` must not start here (None: it may), in one line
        that says what to change in the repository's config ``table`` ("[repository.NAME]")."""
        kind = self.kind
        if kind in ("empty", layout):
            return None
        if kind == "not a Maildir":
            return (
                f"Maildir root {self.root} holds other things than a Maildir "
                f"({_some(self.other)}): mailtide does not put its folders among them; set path "
                f"in {table} to a directory of its own (new, empty, or holding only a Maildir)"
            )
        if kind == "mixed":
            return (
                f"Maildir root {self.root} holds folders of both layouts (fs: {_some(self.fs)}; "
                f"maildir++: {self._maildirpp_signs()}), and a sync would see only the {layout} "
                f"ones: move the others out of it, or set path in {table} to another directory"
            )
        found = f"folders {_some(self.fs)}" if kind == "fs" else self._maildirpp_signs()
        return (
            f"Maildir root {self.root} looks like a Maildir in the {kind} layout ({found}), but "
            f'{table} has layout = "{layout}", which would copy every message again beside it: '
            f'set layout = "{kind}" in {table}'
        )

    def _maildirpp_signs(self) -> str:
        at_root = [n for n in self.maildirpp if n.endswith("/")]
        folders = tuple(n for n in self.maildirpp if not n.endswith("/"))
        signs = [f"{', '.join(at_root)} at the root"] if at_root else []
        signs += [f"folders {_some(folders)}"] if folders else []
        return "; ".join(signs)


def survey_root(root: str) -> RootSurvey:
    """Classify the existing directory ``root`` (OSError when it cannot be listed)."""
    fs: list[str] = []
    maildirpp: list[str] = []
    other: list[str] = []
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        if name in MAILDIR_SUBDIRS and _plain_dir(entry):
            maildirpp.append(name + "/")
        elif name.startswith("."):
            if _plain_dir(entry) and is_maildir(entry.path):
                maildirpp.append(name)
        elif not _tool_data(name):
            verdict = _fs_tree(entry, 0)
            if verdict == "mail":
                fs.append(name)
            elif verdict == "other":
                other.append(name)
    return RootSurvey(root, tuple(fs), tuple(maildirpp), tuple(other))


def _fs_tree(entry: os.DirEntry[str], depth: int) -> Verdict:
    """Whether ``entry`` is an fs folder or leads only to fs folders ("mail"), holds nothing
    but Maildir data ("nothing"), or holds anything else ("other")."""
    if entry.is_symlink() or not _plain_dir(entry):
        # a symlink is an fs folder when it leads to one (the fs layout checks where to)
        return "mail" if is_maildir(entry.path) else "other"
    if is_maildir(entry.path):
        return "mail"
    if depth >= MAX_DEPTH:
        return "other"
    try:
        with os.scandir(entry.path) as it:
            inner = sorted(it, key=lambda e: e.name)
    except OSError:
        return "other"  # what it holds cannot be told
    verdict: Verdict = "nothing"
    for sub in inner:
        if sub.name.startswith(".") or _tool_data(sub.name):
            continue
        found = _fs_tree(sub, depth + 1)
        if found == "other":
            return "other"
        if found == "mail":
            verdict = "mail"
    return verdict


def _plain_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _tool_data(name: str) -> bool:
    return name in _TOOL_NAMES or name.startswith(_TOOL_PREFIXES)


def _some(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:SHOWN])
    more = len(names) - SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
