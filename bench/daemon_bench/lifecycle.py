"""Stopping and recovering: SIGTERM to exit (idle, and in the middle of a first sync), the
time until mail flows again after every connection was cut or reset, and after a simulated
suspend and resume.

A resume is simulated the way the daemon's own tests do it (``MAILTIDE_TEST_SLEPT_FILE``,
see ``src/mailtide/daemon/clock.py``: seconds written there count as time slept), with what
a real suspend does to connections: they go silent (``Relay.stall``), and mail arrives that no
push reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon_bench.events import Event, Sample, ServerAppend, run_round
from daemon_bench.local_tree import LocalTree
from daemon_bench.mailtide_daemon import DONE, DaemonProcess
from daemon_bench.relay import Relay


@dataclass(frozen=True, slots=True)
class Stopped:
    state: str  # "idle", "mid first sync"
    code: int
    seconds: float
    note: str = ""

    def record(self) -> dict[str, object]:
        return {
            "kind": "stop",
            "state": self.state,
            "code": self.code,
            "seconds": round(self.seconds, 3),
            "note": self.note,
        }


def stop_idle(start: Callable[[], DaemonProcess]) -> Stopped:
    daemon = start()
    daemon.wait_until(lambda: daemon.syncs_done() > 0, 300, "through its first sync")
    daemon.settle(quiet=1.0)
    code, took = daemon.terminate()
    return Stopped("idle", code, took)


def stop_mid_sync(start: Callable[[], DaemonProcess], tree: LocalTree, at: int) -> Stopped:
    """SIGTERM once the first sync of an empty Maildir has written ``at`` messages."""
    daemon = start()
    daemon.wait_until(lambda: tree.root.exists() and tree.count() >= at, 300, f"at {at} messages")
    had = tree.count()
    code, took = daemon.terminate()
    return Stopped("mid first sync", code, took, f"{had} messages down; {_how_it_ended(daemon)}")


def _how_it_ended(daemon: DaemonProcess) -> str:
    """What the daemon's log says became of the sync in flight at the SIGTERM."""
    lines = daemon.read()
    if any("event=daemon.sync_cancelled" in line for line in lines):
        return "the sync was cancelled where it waited"
    if any("event=account.stopped" in line for line in lines):
        return "the sync stopped after a durable step"
    if any(DONE in line for line in lines):
        return "the sync had finished before the signal"
    return "no sync had started"


class AfterFault:
    """An event whose change is made right after ``fault`` (cut, reset): timed from the fault."""

    def __init__(self, event: Event, fault: Callable[[], object]) -> None:
        self.event, self.fault = event, fault
        self.kind, self.grain = event.kind, event.grain

    def prepare(self) -> None:
        self.event.prepare()

    def fire(self) -> None:
        self.fault()
        self.event.fire()

    def arrived(self) -> bool:
        return self.event.arrived()


class AfterResume:
    """Connections stalled, a message APPENDed meanwhile (no push reports it), then the clock
    jump: timed from the jump until the message is in new/."""

    def __init__(self, append: ServerAppend, relay: Relay, slept_file: Path, slept: float) -> None:
        self.append, self.relay = append, relay
        self.slept_file, self.slept = slept_file, slept
        self.kind, self.grain = "resume: mail that came while asleep → new/", append.grain

    def prepare(self) -> None:
        self.append.prepare()
        self.relay.stall()
        self.append.fire()
        time.sleep(1.0)  # the stalled push would have had it by now

    def fire(self) -> None:
        self.slept_file.write_text(f"{self.slept:.0f}\n")

    def arrived(self) -> bool:
        return self.append.arrived()


@dataclass(frozen=True, slots=True)
class Recovered:
    sample: Sample

    def record(self, fault: str, what: str) -> dict[str, object]:
        s = self.sample.seconds
        return {
            "kind": "recover",
            "fault": fault,
            "event": what,
            "seconds": None if s is None else round(s, 3),
        }


def recover(daemon: DaemonProcess, events: list[Event], timeout: float) -> list[Recovered]:
    """Run ``events`` as one round, then let the daemon settle."""
    done = run_round(events, timeout)
    arrived = [s.fired_at for s in done if s.seconds is not None]
    daemon.settle(after=min(arrived) if arrived else None, quiet=1.0)
    return [Recovered(s) for s in done]
