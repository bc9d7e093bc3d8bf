"""A Maildir tree as a ``Store``: folders on disk, one account's root.

The root must exist: a missing or unmounted root is an error, never an
empty account (which a sync would take for "everything was deleted").
Only ``create_root`` makes it, and only when asked (first sync).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import structlog

from mailtide.core.names import is_inbox
from mailtide.private import make_dirs, touch_file
from mailtide.stores.base import (
    FolderInfo,
    MailboxError,
    MailboxStatus,
    StoreError,
    UnsafeFolderName,
)
from mailtide.stores.maildir import seen
from mailtide.stores.maildir.delivery import DEFAULT_DURABILITY, Durability
from mailtide.stores.maildir.durability import fsync_dir
from mailtide.stores.maildir.folder_id import folder_id
from mailtide.stores.maildir.folder_ops import remove_empty_folder, rename_dir
from mailtide.stores.maildir.journal import WriteJournal
from mailtide.stores.maildir.layout import (
    MAILDIR_SUBDIRS,
    is_inside,
    is_maildir,
    layout_for,
    normalized,
)
from mailtide.stores.maildir.mailbox import MaildirMailbox
from mailtide.stores.maildir.read_ahead import ReadAhead
from mailtide.stores.maildir.settings import MaildirSettings
from mailtide.stores.maildir.stamp import folder_stamp
from mailtide.stores.maildir.survey import survey_root

log = structlog.get_logger("mailtide.stores.maildir")


class MaildirStore:
    """The Maildir repository of one account (``fs`` or ``maildir++`` layout)."""

    def __init__(
        self,
        settings: MaildirSettings,
        durability: Durability = DEFAULT_DURABILITY,
        read_only: bool = False,
        journal: WriteJournal | None = None,
    ) -> None:
        """``read_only``: for a dry run; every write is refused and nothing is created.
        ``journal``: told of every message written, renamed or removed, and folder made."""
        self.settings = settings
        self.journal = journal or WriteJournal(keep=False)
        self.read_only = read_only
        self.root = os.path.expanduser(settings.path)
        self._layout = layout_for(settings.layout)
        self._durability: Durability = durability
        self._refused: list[tuple[str, str]] = []
        # What this run's decisions may rest on (seen.py): the root as the last scan resolved
        # it and the folders it found, each opened folder's id and stamp (None where two
        # reads differed), and whether the tree was changed.
        self._scanned: tuple[str, list[str]] | None = None
        self._opened: dict[str, tuple[str, str | None] | None] = {}
        # The folders this run wrote to, and the stamp the run recorded for each after its
        # writes (``stamped``): what ``seen`` gives for them.
        self._written: set[str] = set()
        self._stamped: dict[str, str] = {}
        self._tree_changed = False
        self._ahead = ReadAhead()
        self._changed: set[str] = set()  # folders whose stamp the read-ahead found moved

    @property
    def refused(self) -> list[tuple[str, str]]:
        return list(self._refused)

    def _checked_root(self) -> str:
        """The root, symlinks resolved; StoreError when it is missing or not a directory."""
        try:
            if not os.path.isdir(self.root):
                if os.path.exists(self.root):
                    raise StoreError(f"Maildir root {self.root} is not a directory")
                # also a symlink whose target is gone: typically a drive not mounted
                raise StoreError(f"Maildir root {self.root} does not exist (is it mounted?)")
        except OSError as err:
            raise StoreError(f"Maildir root {self.root} cannot be read: {err}") from err
        return os.path.realpath(self.root)

    def create_root(self) -> None:
        """Make the root directory, 0700 (first sync only; ``connect`` never does this)."""
        try:
            for made in make_dirs(self.root):
                fsync_dir(os.path.dirname(made))
        except OSError as err:
            raise StoreError(f"cannot create Maildir root {self.root}: {err}") from err

    def prepare_first_sync(self) -> bool:
        """Before an account's first sync: make a missing root (True; never in a dry run) or
        raise StoreError when the existing root does not hold a Maildir of this layout, or
        holds other data (see survey.py)."""
        if not os.path.exists(self.root):
            if self.read_only:
                return False  # a dry run: connect says the root is missing
            self.create_root()
            return True
        self._checked_root()
        try:
            survey = survey_root(self.root)  # named as configured, a symlink followed
        except OSError as err:
            raise StoreError(f"Maildir root {self.root} cannot be read: {err}") from err
        refusal = survey.refusal(self.settings.layout, self.settings.table)
        if refusal is not None:
            raise StoreError(refusal)
        return False

    def memo(self) -> str | None:
        return None  # a local tree has nothing to learn

    def recall(self, memo: str | None) -> None:
        pass

    async def connect(self, first_sync: bool = False) -> None:
        """``first_sync``: make a missing root, or refuse one that holds another layout or
        other data (``prepare_first_sync``)."""
        if first_sync and await asyncio.to_thread(self.prepare_first_sync):
            log.info("maildir.root_created", path=self.root)
        await asyncio.to_thread(self._checked_root)

    async def list_folders(self) -> list[FolderInfo]:
        root = await asyncio.to_thread(self._checked_root)
        listing = await asyncio.to_thread(self._layout.scan, root)
        self._refused = listing.refused
        self._scanned = None if listing.refused else (root, list(listing.folders))
        for raw, reason in listing.refused:
            log.warning("maildir.folder_refused", root=self.root, folder=raw, reason=reason)
        return await asyncio.to_thread(
            lambda: [FolderInfo(name, identity=self._identity(name)) for name in listing.folders]
        )

    def _identity(self, name: str, create: bool = False) -> str:
        try:
            return folder_id(self.folder_path(name), create=create and not self.read_only)
        except StoreError:  # an id file that cannot be read: the mailbox's sync says why
            if create:
                raise
            return ""

    async def folder_identity(self, name: str, create: bool = False) -> str:
        return await asyncio.to_thread(self._identity, name, create)

    async def rename_folder(self, old: str, new: str) -> None:
        """One directory rename (maildir++: the subfolders' too); see folder_ops.py."""
        self._tree_changed = True
        if self.read_only:
            raise StoreError(f"Maildir {self.root} is open read-only (dry run)")
        await asyncio.to_thread(self._rename_folder, old, new)

    def _rename_folder(self, old: str, new: str) -> None:
        if is_inbox(old) or is_inbox(new):
            raise StoreError("INBOX is never renamed (its mail would move)")
        source, target = self.folder_path(old), self.folder_path(new)
        children: list[tuple[str, str]] = []
        if self.settings.layout == "maildir++":
            root = self._checked_root()
            before, after = os.path.basename(source) + ".", os.path.basename(target) + "."
            children = [
                (os.path.join(root, e), os.path.join(root, after + e[len(before) :]))
                for e in sorted(os.listdir(root))
                if e.startswith(before)
            ]
        self.journal.before_dirs(target, *(t for _, t in children))
        try:
            rename_dir(source, target, children)
        except StoreError as err:
            raise StoreError(f"cannot rename folder {old!r} to {new!r}: {err}") from None
        log.debug("maildir.folder_renamed", old=old, new=new)

    async def delete_folder(self, name: str) -> None:
        self._tree_changed = True
        if self.read_only:
            raise StoreError(f"Maildir {self.root} is open read-only (dry run)")
        if is_inbox(name):
            raise StoreError("INBOX is never deleted")
        path = await asyncio.to_thread(self.folder_path, name)
        try:
            await asyncio.to_thread(remove_empty_folder, path)
        except StoreError as err:
            raise StoreError(f"cannot delete folder {name!r}: {err}") from None

    async def subscribed(self) -> set[str] | None:
        return None  # a Maildir has no subscriptions: every folder counts

    async def subscribe(self, name: str, on: bool = True) -> None:
        """Nothing: a Maildir has no subscriptions."""

    def folder_path(self, name: str) -> str:
        """The directory of folder ``name``; UnsafeFolderName when it cannot be mapped safely."""
        root = self._checked_root()
        path = os.path.join(root, *self._layout.relative(name))
        if not is_inside(root, path):
            raise UnsafeFolderName(f"folder {name!r} leads outside the Maildir root {self.root}")
        return path

    def _existing(self, name: str) -> str:
        """``folder_path(name)``, where that is a Maildir folder (in one trip off the loop:
        a sync opens each folder twice, for its move pass and for its pair)."""
        path = self.folder_path(name)
        if not is_maildir(path):
            raise MailboxError(f"folder {name!r} does not exist in Maildir {self.root}")
        return path

    def check_name(self, name: str) -> None:
        self._layout.relative(name)

    async def create_folder(self, name: str) -> None:
        """Create the folder (cur/, new/, tmp/; parents as plain directories) durably; what
        it creates is 0700."""
        self._tree_changed = True
        if self.read_only:
            raise StoreError(f"Maildir {self.root} is open read-only (dry run)")
        await asyncio.to_thread(self._create_folder, name)

    def _create_folder(self, name: str) -> None:
        path = self.folder_path(name)
        root = self._checked_root()
        missing = [p for p in _ancestors(path, root) if not os.path.lexists(p)]
        self.journal.before_dirs(*missing, *(os.path.join(path, sub) for sub in MAILDIR_SUBDIRS))
        try:
            made = make_dirs(path)
            marker = self._layout.marker(name)
            if marker is not None:  # before cur/ and new/, which make it a folder
                touch_file(os.path.join(path, marker))
            for sub in MAILDIR_SUBDIRS:
                make_dirs(os.path.join(path, sub))
            if not is_inside(root, path):  # a symlink swapped in while we worked
                raise UnsafeFolderName(f"folder {name!r} leads outside the Maildir root")
            fsync_dir(path)
            if made:
                # every directory from the folder up to the root may have a new entry
                parent = path
                while parent != root and parent.startswith(root):
                    parent = os.path.dirname(parent)
                    fsync_dir(parent)
        except OSError as err:
            raise StoreError(f"cannot create folder {name!r} in {self.root}: {err}") from err

    async def read_ahead(self, recorded: Mapping[str, str | None]) -> None:
        """List now, in a worker thread, each folder of ``recorded`` (name -> the stamp the
        last sync left) whose stamp moved, for its open to take (read_ahead.py): while the
        caller waits for the other side's folders.  Returns at once."""
        if recorded:
            await asyncio.to_thread(self._read_ahead, recorded)
        else:
            self._ahead.stop()
            self._changed = set()  # what it found was this run's (``known_changed``)

    def _read_ahead(self, recorded: Mapping[str, str | None]) -> None:
        moved: list[str] = []
        changed: set[str] = set()
        for name in sorted(recorded):
            try:
                path = self.folder_path(name)
                now = folder_stamp(path)  # None: too recent to prove it unchanged
                if now is None or now != recorded[name]:
                    moved.append(path)
                    if recorded[name] is not None:  # a stamp that moved: changed since
                        changed.add(name)
            except (StoreError, MailboxError, OSError, ValueError):
                continue  # not a folder here now, or a name refused: its open says so
        self._changed = changed
        self._ahead.start(moved)

    def known_changed(self, name: str, since: tuple[str | None, int | None] | None) -> bool:
        """Whether the read-ahead found the folder's stamp moved since the last sync left it
        (a folder with no stamp recorded cannot tell)."""
        return name in self._changed

    def warm(self, count: int) -> None:
        """Nothing to begin: a folder needs no connection."""

    async def open(self, name: str, planned: bool = False) -> MaildirMailbox:
        path = await asyncio.to_thread(self._existing, name)
        return MaildirMailbox(
            normalized(name),
            path,
            self._durability,
            self.read_only,
            self.journal,
            locate=self.folder_path,
            on_status=self._saw_status,
            read_ahead=self._ahead,
            on_write=self._written.add,
        )

    def _saw_status(self, path: str, status: MailboxStatus) -> None:
        now = (status.validity, status.stamp)
        self._opened[path] = now if self._opened.get(path, now) == now else None

    def stamped(self, name: str, stamp: str) -> None:
        self._stamped[self.folder_path(name)] = stamp

    def seen(self) -> dict[str, Any] | None:
        """What this run's decisions rest on, for the quiet check (quiet/): the root, its
        folders and each opened folder's id and stamp (seen.py): the stamp its status gave,
        or for a folder this run wrote to, the one the run recorded after its writes
        (``stamped``); when the tree was not changed, every stamp proved something and every
        folder written was stamped.  Else None."""
        opened: dict[str, tuple[str, str | None]] = {}
        for path, read in self._opened.items():
            if read is None:
                return None
            if path in self._written:
                stamp = self._stamped.get(path)
                if stamp is None:
                    return None
                read = (read[0], stamp)
            opened[path] = read
        if self._scanned is None or self._tree_changed or not self._written <= opened.keys():
            return None
        root, folders = self._scanned
        return seen.facts(self.root, root, self.settings.layout, folders, opened)

    async def special_folder(self, use: str) -> str | None:
        """A Maildir marks no folder with a special use."""
        return None

    async def keepalive(self) -> None:
        """Nothing to keep alive on a local tree."""

    async def drop(self) -> None:
        """Nothing held to let go of on a local tree."""

    async def close(self, hurry: bool = False) -> None:
        self._refused = []
        self._ahead.stop()


def _ancestors(path: str, root: str) -> list[str]:
    """``path`` and the directories above it, up to (not including) ``root``."""
    out = []
    while path != root and path.startswith(root.rstrip(os.sep) + os.sep):
        out.append(path)
        path = os.path.dirname(path)
    return out
