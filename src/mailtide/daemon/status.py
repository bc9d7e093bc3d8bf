"""What each account task is doing, for ``mailtide status``, systemd's ``STATUS=`` and the logs.

Plain values, updated by the account task that owns them; the supervisor reads them.  The JSON
form (``as_json``) is a documented interface: fields are only ever added.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Named(Protocol):
    @property
    def name(self) -> str: ...


class State(enum.Enum):
    STARTING = "starting"
    SYNCING = "syncing"
    IDLE = "idle"  # waiting for the next trigger
    WAITING = "waiting"  # backing off after a failure, until ``retry_at``
    OFFLINE = "offline"  # waiting, because the server could not be reached
    LOGIN_FAILED = "login failed"  # waiting, because the server refused the credentials
    STOPPED = "stopped"


@dataclass(slots=True)
class LastSync:
    started: float  # wall-clock seconds
    ended: float
    mode: str  # "full" or "quick"
    mailboxes: list[str] | None  # None: all
    result: str  # "ok", "stranded", "failed", "stopped"
    counts: dict[str, int]
    errors: list[str]


@dataclass(slots=True)
class AccountStatus:
    name: str
    state: State = State.STARTING
    sources: Sequence[Named] = ()  # the push sources, whose names say what they do now
    last: LastSync | None = None
    next_refresh: float | None = None  # wall-clock seconds of the next timer sync
    retry_at: float | None = None  # wall-clock seconds, while WAITING
    error: str | None = None  # why the account is WAITING (or why its last sync failed)
    syncs: int = 0
    progress: float = field(default_factory=time.monotonic)  # the last sign of life
    on_change: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def push(self) -> list[str]:
        """e.g. ["inotify", "IDLE on INBOX + poll every 2m"]."""
        return [s.name for s in self.sources]

    def alive(self) -> None:
        """The task made progress (a step, a wait begun, a sync ended): its status may have
        changed, which ``on_change`` is told."""
        self.progress = time.monotonic()
        if self.on_change is not None:
            self.on_change()

    def line(self) -> str:
        """One line for systemd's STATUS= and the log."""
        words = [f"{self.name}: {self.state.value}"]
        waiting = self.state in (State.WAITING, State.OFFLINE, State.LOGIN_FAILED)
        if waiting and self.retry_at is not None:
            words.append(f"retry in {max(0, round(self.retry_at - time.time()))} s")
        if self.error and waiting:
            words.append(self.error[:120])
        if self.last is not None:
            words.append(f"last sync {time.strftime('%H:%M', time.localtime(self.last.ended))}")
            if self.last.result != "ok":
                words.append(self.last.result)
        return " · ".join(words)

    def as_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "account": self.name,
            "state": self.state.value,
            "push": self.push,
            "last_sync": None
            if last is None
            else {
                "started": _iso(last.started),
                "ended": _iso(last.ended),
                "mode": last.mode,
                "mailboxes": last.mailboxes,
                "result": last.result,
                "counts": dict(last.counts),
                "errors": list(last.errors),
            },
            "next_sync": _iso(self.next_refresh),
            "retry_at": _iso(self.retry_at),
            "error": self.error,
            "syncs": self.syncs,
        }


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))
