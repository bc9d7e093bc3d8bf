"""What mailtide itself changes in one Maildir tree: told *before* each change (so that the
watcher, through ``OwnChanges``, does not take mailtide's own writes for a mail client's), and
recorded *after* it (so that the hooks can be told which files were added, renamed, removed).

Only messages count (files in ``cur/`` and ``new/``) and folders created; mailtide's files of
its own (``dovecot-keywords``, ``.mailtide-id``, ``tmp/``) are neither announced nor recorded.
Paths are spelt as the watcher sees them: below the root with symlinks resolved.
Thread-safe: the store writes from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from mailtide.stores.maildir.own_changes import OwnChanges


@dataclass(frozen=True, slots=True)
class FileChange:
    kind: str  # "added", "renamed" (a flag change), "moved" (to another folder), "removed"
    folder: str  # canonical name (for "moved": the folder it went to)
    path: str
    old_path: str | None = None  # for "renamed" and "moved"


class WriteJournal:
    def __init__(self, own: OwnChanges | None = None, keep: bool = True) -> None:
        """``own``: the watcher's registry (None: no watcher); ``keep``: record the changes
        for ``take`` (off when nobody asks for them)."""
        self.own = own
        self.keep = keep
        self._lock = threading.Lock()
        self._changes: list[FileChange] = []
        self._observer: Callable[[FileChange], None] | None = None

    def observed(self, observer: Callable[[FileChange], None]) -> WriteJournal:
        """This journal as one writer uses it: the same record, and ``observer`` is also told
        of each change that writer makes (a folder's own writes, for its ``Witness``)."""
        view = WriteJournal(self.own, self.keep)
        view._lock, view._changes, view._observer = self._lock, self._changes, observer
        return view

    def before(self, *paths: str) -> None:
        """About to create or unlink ``paths[0]``, or rename ``paths[0]`` to ``paths[1]``."""
        if self.own is not None:
            self.own.expect(*paths)

    def before_dirs(self, *paths: str) -> None:
        """About to create these directories (a folder)."""
        if self.own is not None:
            self.own.expect_dirs(*paths)

    def done(self, change: FileChange) -> None:
        if self._observer is not None:
            self._observer(change)
        if self.keep:
            with self._lock:
                self._changes.append(change)

    def take(self) -> list[FileChange]:
        """The changes recorded since the last ``take``."""
        with self._lock:
            changes = list(self._changes)
            self._changes.clear()  # in place: writers' views share the list
        return changes
