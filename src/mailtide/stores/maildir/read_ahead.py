"""Listings read ahead (issue 12: the sync after reading mail).

A sync lists every Maildir folder whose stamp moved since the last sync, a few hundred
milliseconds of work at 50k messages, and it used to do so only once the server had answered
its LIST (a login, then a LIST that Dovecot answers only after reading its own folders).
While the run waits for that, one worker thread lists those folders now, in the order the
move pass takes them; a folder's open then takes its listing (``take``) instead of listing
again.

A listing read ahead stands for the folder only while the folder has not changed since:
it must have been quiet (new/ and cur/ alike before and after it, and their times old enough
that a later change moves them: ``MaildirMailbox._scan``), and new/ and cur/ must still have
the times it ended with when it is taken.  Otherwise the open lists as before.  A folder not
reached yet when its open wants it is not listed twice: the open takes it over.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from dataclasses import dataclass

from mailtide.stores.maildir.listing import FolderListing, list_folder

STILL = 0.05  # s: a directory changed more recently than this may change unseen (coarse mtime)
# Messages in the listings read ahead and not yet taken, at most (about 12 MB of them): past
# that the opens list their folders themselves, as without a read-ahead.
MAX_HELD = 50_000


def still(before: tuple[float, ...], after: tuple[float, ...]) -> bool:
    """Whether a listing between ``before`` and ``after`` (``dir_times``) stands for the
    folder: nothing changed while it ran, and the times are old enough that a later change
    moves them."""
    return before == after and time.time() - max(after) > STILL


def dir_times(folder: str) -> tuple[float, ...]:
    """The modification and change times of ``folder``'s new/ and cur/ (a rename in or out
    sets both); OSError when either cannot be read."""
    out: list[float] = []
    for sub in ("new", "cur"):
        st = os.stat(os.path.join(folder, sub))
        out += (st.st_mtime, st.st_ctime)
    return tuple(out)


class _Held:
    """The messages in listings made and not yet taken, counted across threads."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.count = 0
        self.lock = threading.Lock()

    def room(self) -> bool:
        with self.lock:
            return self.count < self.most

    def add(self, n: int) -> None:
        with self.lock:
            self.count += n


@dataclass(frozen=True, slots=True)
class Ahead:
    """A folder's listing, and the times of its new/ and cur/ right after it."""

    listing: FolderListing
    after: tuple[float, ...]
    held: _Held  # where it is counted until taken


class ReadAhead:
    """Listings of some folders, made in one worker thread ahead of their opens."""

    def __init__(self, most: int = MAX_HELD) -> None:
        """``most``: messages held in listings not yet taken, at most (``MAX_HELD``)."""
        self._most = most
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._ahead: dict[str, concurrent.futures.Future[Ahead | None]] = {}

    def start(self, paths: list[str]) -> None:
        """List ``paths`` (folder directories), in this order; what an earlier start left
        untaken is dropped."""
        self.stop()
        if not paths:
            return
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="mailtide-read-ahead"
        )
        held = _Held(self._most)  # a listing of an earlier start counts no more
        self._ahead = {path: self._executor.submit(_read, path, held) for path in paths}

    def take(self, path: str) -> FolderListing | None:
        """The listing read ahead for ``path`` while it still stands for the folder (waiting
        for one under way), else None: a folder not reached yet is left to the caller."""
        future = self._ahead.pop(path, None)
        if future is None or future.cancel():
            return None
        try:
            ahead = future.result()
        except Exception:  # an unreadable folder: the caller's own listing says why
            return None
        if ahead is None:
            return None
        ahead.held.add(-len(ahead.listing.index))
        try:
            if dir_times(path) != ahead.after:
                return None
        except OSError:  # gone meanwhile: the caller's own listing says so
            return None
        return ahead.listing

    def stop(self) -> None:
        """Drop what was not taken; a listing under way ends in its thread."""
        for future in self._ahead.values():
            future.cancel()
        self._ahead = {}
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _read(path: str, held: _Held) -> Ahead | None:
    """One listing of ``path``; None where it was not quiet, or where the listings not yet
    taken hold ``held.most`` messages already."""
    if not held.room():
        return None
    before = dir_times(path)
    listing = list_folder(path)
    after = dir_times(path)
    if not still(before, after):
        return None
    held.add(len(listing.index))
    return Ahead(listing, after, held)
