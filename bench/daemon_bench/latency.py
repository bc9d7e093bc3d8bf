"""Push latency: one kind of change at a time, N times, timed from the change to its arrival
on the other side (``events``), for mailtide's daemon and for a peer tool.

Names of the kinds (``KINDS``): ``server-inbox`` and ``server-other`` (another client APPENDs
to INBOX, watched by IDLE, or to a folder that is not: NOTIFY or the poll sees it), and the
Maildir changes ``flag``, ``delete``, ``move`` (INBOX to another folder) and ``new``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import imap_helpers as srv
from daemon_bench.events import (
    Event,
    LocalDelete,
    LocalFlag,
    LocalMove,
    LocalNew,
    Sample,
    ServerAppend,
    run_rounds,
)
from daemon_bench.local_tree import LocalMessage, LocalTree
from daemon_bench.mailtide_daemon import DaemonProcess
from daemon_bench.server_view import ServerView
from daemon_bench.stats import Spread, spread

KINDS = ("server-inbox", "server-other", "flag", "delete", "move", "new")


@dataclass(frozen=True, slots=True)
class Scene:
    """Where the events happen; ``tag`` makes every Message-ID of a run its own."""

    view: ServerView
    tree: LocalTree
    tag: str
    inbox: str = "INBOX"
    other: str = "Receipts"
    move_to: str = "Travel"


class Supply:
    """The local messages the events change, one each (the INBOX's unflagged ones)."""

    def __init__(self, scene: Scene) -> None:
        self._left = scene.tree.unflagged(scene.inbox)

    def take(self) -> LocalMessage:
        while self._left:
            message = self._left.pop()
            if message.path.exists():
                return message
        raise RuntimeError("no unflagged local message left to change: use a larger corpus")


def _new_message(scene: Scene, label: str, i: int) -> tuple[bytes, str]:
    name = f"{scene.tag}-{label}"
    return srv.make_message(i, name), srv.message_id(i, name)


def event_of(scene: Scene, supply: Supply, kind: str, label: str) -> Callable[[int], Event]:
    """The i-th event of ``kind``; ``label`` keeps the Message-IDs of two phases apart."""
    s = scene
    makers: dict[str, Callable[[int], Event]] = {
        "server-inbox": lambda i: ServerAppend(s.view, s.tree, s.inbox, *_new_message(s, label, i)),
        "server-other": lambda i: ServerAppend(s.view, s.tree, s.other, *_new_message(s, label, i)),
        "flag": lambda i: LocalFlag(s.view, s.inbox, supply.take()),
        "delete": lambda i: LocalDelete(s.view, s.inbox, supply.take()),
        "move": lambda i: LocalMove(s.view, s.tree, s.inbox, s.move_to, supply.take()),
        "new": lambda i: LocalNew(s.view, s.tree, s.inbox, *_new_message(s, label, i)),
    }
    return makers[kind]


@dataclass(frozen=True, slots=True)
class LatencyResult:
    tool: str
    mode: str  # how the tool watched: "NOTIFY", "IDLE + poll 10s", ...
    kind: str
    samples: list[Sample]
    # seconds from the change to the tool's first reaction (its first log line), where known
    reactions: list[float | None] = field(default_factory=list)

    @property
    def spread(self) -> Spread:
        return spread([s.seconds for s in self.samples])

    @property
    def reaction(self) -> Spread:
        return spread(self.reactions)

    def record(self) -> dict[str, object]:
        return {
            "kind": "latency",
            "tool": self.tool,
            "mode": self.mode,
            "event": self.kind,
            "what": self.samples[0].kind if self.samples else "",
            "spread": _plain(self.spread),
            "reaction": _plain(self.reaction),
            "fire_p50": _plain(spread([s.fire_seconds for s in self.samples])).get("p50"),
            "samples": [s.seconds for s in self.samples],
            "reactions": self.reactions,
        }


def _plain(x: Spread) -> dict[str, object]:
    return {k: getattr(x, k) for k in ("n", "missed", "p50", "p95", "max")}


def mailtide_latency(
    scene: Scene,
    supply: Supply,
    daemon: DaemonProcess,
    mode: str,
    kind: str,
    n: int,
    rng: random.Random,
    timer: float | None = None,
    timeout: float = 30,
    gap: float = 1.5,
    say: Callable[[str], None] = print,
) -> LatencyResult:
    """``n`` events of ``kind``, one at a time, each once the daemon has been idle for ``gap``
    seconds (isolated changes, not a burst merged into one sync); ``timer``:
    the change is seen by a timer of that period (the poll), so each event waits a random
    share of it first, or every event would meet the timer at the same phase."""
    make = event_of(scene, supply, kind, f"{mode}-{kind}".replace(" ", ""))
    last: list[Sample] = []

    def between() -> None:
        after = last[-1].fired_at if last and last[-1].seconds is not None else None
        daemon.settle(after=after, quiet=gap)
        if timer is not None:
            time.sleep(rng.uniform(0, timer))

    def progress(i: int, done: list[Sample]) -> None:
        last[:] = done
        if (i + 1) % max(1, n // 5) == 0:
            say(f"  {mode} {kind}: {i + 1}/{n}")

    samples = run_rounds(lambda i: [make(i)], n, between, timeout, progress)
    reactions = [
        (t - s.fired_at) if (t := daemon.first_log_after(s.fired_at)) is not None else None
        for s in samples
    ]
    return LatencyResult("mailtide", mode, kind, samples, reactions)
