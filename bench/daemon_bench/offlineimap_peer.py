"""OfflineIMAP (Debian's offlineimap3) as a long-running peer: the lab's config
(``peer-run.sh``, plain IMAP, ``maxconnections = 3``) plus ``autorefresh`` (minutes, may be
fractional), ``quick``, and IDLE on ``idlefolders`` (which needs ``holdconnectionopen``).

OfflineIMAP has no Maildir watch: a local change waits for the next autorefresh.  A folder
not in ``idlefolders`` likewise.  So those kinds are timed several at once per round (each
recognises its own message), a round starting at a random phase of the timer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from daemon_bench.events import Event, Sample, run_rounds
from daemon_bench.lab import Server
from daemon_bench.latency import LatencyResult, Scene, Supply, event_of
from daemon_bench.local_tree import LocalTree
from daemon_bench.server_view import ServerView

TIMER_KINDS = ("server-other", "flag", "delete", "move", "new")


class OfflineImap:
    def __init__(
        self, lab: Path, where: Path, server: Server, autorefresh_min: float, idle: list[str]
    ) -> None:
        self.where = where
        self.maildir = where / "Mail"
        self.autorefresh = autorefresh_min * 60
        env = {
            **os.environ,
            "IMAP_USER": server.user,
            "IMAP_PASS": server.password,
            "PEER_GENONLY": "1",
        }
        conf = subprocess.run(
            [
                "bash",
                str(lab / "peer-run.sh"),
                "offlineimap",
                str(where / "state"),
                str(server.port),
                str(self.maildir),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.config = Path(conf)
        text = self.config.read_text()
        text = text.replace(
            "[Account lab]\n", f"[Account lab]\nautorefresh = {autorefresh_min}\nquick = 10\n"
        )
        text = text.replace(
            "[Repository lab-remote]\n",
            f"[Repository lab-remote]\nidlefolders = {idle!r}\nholdconnectionopen = yes\n"
            "keepalive = 60\n",
        )
        self.config.write_text(text)
        self.log_path = where / "offlineimap.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            ["offlineimap", "-c", str(self.config), "-u", "basic"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_synced(self, view: ServerView, tree: LocalTree, timeout: float) -> float:
        """Wait until the Maildir holds as many messages as the server; the seconds it took."""
        started = time.monotonic()
        want = view.total_messages()
        while time.monotonic() - started < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"offlineimap exited {self.proc.returncode}: see {self.log_path}"
                )
            if self.maildir.exists() and tree.count() >= want:
                return time.monotonic() - started
            time.sleep(1)
        raise RuntimeError(f"offlineimap: not synced within {timeout} s (see {self.log_path})")

    def terminate(self, timeout: float = 60) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        self._log.close()
        return code, time.monotonic() - started


def idle_latency(
    peer: OfflineImap, scene: Scene, n: int, rng: random.Random, say: Callable[[str], None]
) -> LatencyResult:
    """APPENDs to the IDLE folder, one at a time, a second or two apart."""
    make = event_of(scene, Supply(scene), "server-inbox", "oi-idle")
    samples = run_rounds(
        lambda i: [make(i)],
        n,
        lambda: time.sleep(1 + rng.uniform(0, 1)),
        30,
        lambda i, _: (
            say(f"  offlineimap IDLE: {i + 1}/{n}") if (i + 1) % max(1, n // 5) == 0 else None
        ),
    )
    return LatencyResult("offlineimap", "IDLE on INBOX", "server-inbox", samples)


def timer_latency(
    peer: OfflineImap, scene: Scene, rounds: int, rng: random.Random, say: Callable[[str], None]
) -> list[LatencyResult]:
    """Each round: one change of every timer-bound kind at once, after a random share of the
    autorefresh period."""
    supply = Supply(scene)
    makers = {k: event_of(scene, supply, k, f"oi-{k}") for k in TIMER_KINDS}

    def make(i: int) -> list[Event]:
        return [makers[k](i) for k in TIMER_KINDS]

    def between() -> None:
        time.sleep(rng.uniform(0, peer.autorefresh))

    samples: list[Sample] = run_rounds(
        make,
        rounds,
        between,
        3 * peer.autorefresh + 60,
        lambda i, _: say(f"  offlineimap autorefresh: round {i + 1}/{rounds}"),
    )
    mode = f"autorefresh {peer.autorefresh:g}s"
    return [
        LatencyResult("offlineimap", mode, k, samples[j :: len(TIMER_KINDS)])
        for j, k in enumerate(TIMER_KINDS)
    ]
