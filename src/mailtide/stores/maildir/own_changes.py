"""mailtide's own writes to a Maildir, announced so that its watcher does not report them.

The contract for a writer (the Maildir store):

- call ``expect(path)`` *before* creating or unlinking ``path``, and
  ``expect(old, new)`` before ``rename(old, new)``, with the paths spelt as
  the watcher sees them: below the account's root with symlinks resolved (what
  ``MaildirStore.folder_path`` builds on);
- one call per operation: each expectation matches one event on that path
  and is then gone, so a path written twice is expected twice.

The watcher calls ``consume(path)`` for each path of each event: a path that
was expected is mailtide's own doing and is not reported; any other path is.
So another client's change in the same folder at the same moment is still
reported, and a rename is reported for whichever of its two paths was not
expected.

Directories may be expected too (a folder mailtide creates), but watchdog
reports the contents of a directory that appears by walking it, besides the
kernel's own events, so one path can have two creation events and the second
is reported: one spurious change, which costs a sync that finds nothing to do
and writes nothing, so never a loop.

An expectation whose event never comes (the write failed, the watcher was
polling) must not hide a later change by another client to the same path, so
it lapses: it is honoured for at least ``ttl / 2`` seconds after ``expect``
and never after ``ttl``.  Expectations live in two generations of ``ttl / 2``
each; the older one is dropped whole when a new one begins.  Memory is what
was expected in the last ``ttl`` seconds and not yet seen: a consumed
expectation is dropped at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

DEFAULT_TTL = 60.0  # s; events normally arrive within milliseconds of the write


class OwnChanges:
    """Thread-safe: the store expects from worker threads, the watcher consumes from its own."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl!r}")
        self._half = ttl / 2
        self._clock = clock
        self._lock = threading.Lock()
        self._epoch = self._epoch_now()
        self._newer: dict[str, int] = {}  # path -> expectations made in the current epoch
        self._older: dict[str, int] = {}  # ... and in the one before
        self._ttl = ttl
        self._dirs: dict[str, float] = {}  # directory -> until when any event of it is ours

    def expect(self, *paths: str) -> None:
        """Announce that mailtide is about to create, rename or unlink these paths."""
        with self._lock:
            self._rotate()
            for path in paths:
                key = os.path.normpath(path)
                self._newer[key] = self._newer.get(key, 0) + 1

    def expect_dirs(self, *paths: str) -> None:
        """Announce directories mailtide is about to create: every event of such a path for
        ``ttl`` seconds is its own (watchdog reports a new directory once from the kernel and
        again from its walk of it), not only the first."""
        until = self._clock() + self._ttl
        with self._lock:
            for path in paths:
                self._dirs[os.path.normpath(path)] = until

    def consume(self, path: str) -> bool:
        """True (and one expectation fewer) when a change of ``path`` was expected."""
        key = os.path.normpath(path)
        with self._lock:
            self._rotate()
            if key in self._dirs:
                if self._dirs[key] >= self._clock():
                    return True
                del self._dirs[key]
            for generation in (self._older, self._newer):  # the oldest expectation first
                count = generation.get(key)
                if count:
                    if count == 1:
                        del generation[key]
                    else:
                        generation[key] = count - 1
                    return True
        return False

    def __len__(self) -> int:
        """Expectations still waiting for their event."""
        with self._lock:
            self._rotate()
            return sum(self._older.values()) + sum(self._newer.values())

    def _epoch_now(self) -> int:
        return int(self._clock() // self._half)

    def _rotate(self) -> None:
        """Start a new generation when an epoch has passed; the lock is held."""
        epoch = self._epoch_now()
        if epoch == self._epoch:
            return
        now = self._clock()
        self._dirs = {p: until for p, until in self._dirs.items() if until >= now}
        self._older = self._newer if epoch == self._epoch + 1 else {}
        self._newer = {}
        self._epoch = epoch
