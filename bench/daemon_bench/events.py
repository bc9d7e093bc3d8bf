"""Changes made on one side and watched for on the other, timed.

An ``Event`` is one change: ``prepare`` (untimed: what it needs to recognise its arrival),
``fire`` (the change itself, timed from its start) and ``arrived`` (one cheap look: is it on
the other side yet?).  ``run_round`` fires a list of events at once and looks at each every
``grain`` seconds until it arrived or ``timeout`` ran out.

Kinds (each recognises its own message only, so kinds may run in the same round):

- ``ServerAppend``: another client APPENDs a new message; arrived once a file with its
  Message-ID is in the folder's new/.
- ``LocalFlag``: a flag rename (``F`` added); arrived once the server shows \\Flagged.
- ``LocalDelete``: a file unlinked; arrived once its UID is gone from the server.
- ``LocalMove``: a file renamed into another folder's cur/; arrived once its UID is gone from
  the first folder and its Message-ID is in the second.
- ``LocalNew``: a message delivered into new/; arrived once the server holds its Message-ID.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from daemon_bench.local_tree import LocalMessage, LocalTree, message_id_of
from daemon_bench.server_view import ServerView

FS_GRAIN = 0.005  # a look at a directory costs ~0.1 ms
SERVER_GRAIN = 0.010  # a look at the server is two round trips and work for Dovecot


class Event(Protocol):
    kind: str
    grain: float

    def prepare(self) -> None: ...
    def fire(self) -> None: ...
    def arrived(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str
    seconds: float | None  # None: not arrived within the timeout
    fired_at: float  # wall clock, to line up with a log
    fire_seconds: float  # the change itself (an APPEND's round trip, a rename)


class ServerAppend:
    grain = FS_GRAIN

    def __init__(
        self, view: ServerView, tree: LocalTree, folder: str, message: bytes, mid: str
    ) -> None:
        self.kind = f"server APPEND → {folder}/new"
        self.view, self.tree, self.folder = view, tree, folder
        self.message, self.mid = message, mid
        self._seen: set[str] = set()

    def prepare(self) -> None:
        self._seen = self.tree.names_in_new(self.folder)

    def fire(self) -> None:
        self.view.append(self.folder, self.message)

    def arrived(self) -> bool:
        for name in self.tree.names_in_new(self.folder) - self._seen:
            if message_id_of(self.tree.folder(self.folder) / "new" / name) == self.mid:
                return True
            self._seen.add(name)  # someone else's file (or one still being renamed)
        return False


class LocalFlag:
    grain = SERVER_GRAIN
    kind = "local flag rename → server"

    def __init__(self, view: ServerView, folder: str, message: LocalMessage) -> None:
        self.view, self.folder, self.message = view, folder, message

    def prepare(self) -> None:
        pass

    def fire(self) -> None:
        LocalTree.add_flag(self.message)

    def arrived(self) -> bool:
        flags = self.view.flags(self.folder, self.message.uid)
        return flags is not None and "\\Flagged" in flags


class LocalDelete:
    grain = SERVER_GRAIN
    kind = "local delete → server"

    def __init__(self, view: ServerView, folder: str, message: LocalMessage) -> None:
        self.view, self.folder, self.message = view, folder, message

    def prepare(self) -> None:
        pass

    def fire(self) -> None:
        LocalTree.delete(self.message)

    def arrived(self) -> bool:
        return self.view.flags(self.folder, self.message.uid) is None


class LocalMove:
    grain = SERVER_GRAIN

    def __init__(
        self, view: ServerView, tree: LocalTree, source: str, target: str, message: LocalMessage
    ) -> None:
        self.kind = f"local move {source} → {target} → server"
        self.view, self.tree, self.source, self.target = view, tree, source, target
        self.message = message
        self._uidnext = 0

    def prepare(self) -> None:
        self._uidnext = self.view.uidnext(self.target)

    def fire(self) -> None:
        self.tree.move(self.message, self.target)

    def arrived(self) -> bool:
        if self.view.flags(self.source, self.message.uid) is not None:
            return False
        found = self.view.message_ids_since(self.target, self._uidnext)
        return self.message.message_id in found.values()


class LocalNew:
    grain = SERVER_GRAIN
    kind = "local new file → server"

    def __init__(
        self, view: ServerView, tree: LocalTree, folder: str, message: bytes, mid: str
    ) -> None:
        self.view, self.tree, self.folder = view, tree, folder
        self.message, self.mid = message, mid
        self._uidnext = 0

    def prepare(self) -> None:
        self._uidnext = self.view.uidnext(self.folder)

    def fire(self) -> None:
        self.tree.deliver(self.folder, self.message)

    def arrived(self) -> bool:
        return self.mid in self.view.message_ids_since(self.folder, self._uidnext).values()


def run_round(events: list[Event], timeout: float) -> list[Sample]:
    """Fire ``events`` one right after the other, then time each until it arrived."""
    for event in events:
        event.prepare()
    started: list[tuple[float, float, float]] = []  # monotonic, wall, fire seconds
    for event in events:
        t, wall = time.monotonic(), time.time()
        event.fire()
        started.append((t, wall, time.monotonic() - t))
    took: dict[int, float] = {}
    due = [0.0] * len(events)
    deadline = time.monotonic() + timeout
    while len(took) < len(events) and time.monotonic() < deadline:
        for i, event in enumerate(events):
            if i in took or time.monotonic() < due[i]:
                continue
            if event.arrived():
                took[i] = time.monotonic() - started[i][0]
            due[i] = time.monotonic() + event.grain
        time.sleep(min(e.grain for e in events))
    return [Sample(e.kind, took.get(i), started[i][1], started[i][2]) for i, e in enumerate(events)]


def run_rounds(
    make: Callable[[int], list[Event]],
    rounds: int,
    between: Callable[[], None],
    timeout: float,
    progress: Callable[[int, list[Sample]], None] | None = None,
) -> list[Sample]:
    """``rounds`` rounds of ``make(i)``'s events; ``between()`` after each (let the tool settle,
    or wait a random share of its timer)."""
    samples: list[Sample] = []
    for i in range(rounds):
        done = run_round(make(i), timeout)
        samples += done
        if progress is not None:
            progress(i, done)
        between()
    return samples
