"""What an idle daemon costs: CPU, wake-ups and memory over a window with nothing to do but
its own timers (keepalives, re-IDLE, polls, autorefresh if it falls due)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon_bench.mailtide_daemon import DaemonProcess
from daemon_bench.procfs import Window, sample, window


@dataclass(frozen=True, slots=True)
class IdleResult:
    mode: str
    window: Window
    rss_max_kb: int  # the largest of the samples taken every ``every`` seconds
    syncs: int  # syncs the daemon ran in the window (timers)

    def record(self) -> dict[str, object]:
        w = self.window
        return {
            "kind": "idle",
            "mode": self.mode,
            "seconds": round(w.seconds, 1),
            "cpu_percent": round(w.cpu_percent, 4),
            "wakeups_per_minute": round(w.wakeups_per_minute, 1),
            "involuntary_per_minute": round(w.involuntary_per_minute, 1),
            "rss_start_kb": w.rss_start_kb,
            "rss_end_kb": w.rss_end_kb,
            "rss_max_kb": self.rss_max_kb,
            "syncs": self.syncs,
            "per_thread": {k: round(v, 1) for k, v in w.per_thread.items()},
            "threads_lost": w.threads_lost,
        }


def idle_window(
    daemon: DaemonProcess,
    mode: str,
    seconds: float,
    every: float = 10,
    say: Callable[[str], None] = print,
) -> IdleResult:
    """Sample the settled ``daemon`` at the start and end of ``seconds`` (RSS every
    ``every`` seconds between)."""
    syncs = daemon.syncs_done()
    first = sample(daemon.pid)
    rss_max = first.rss_kb
    end = first.at + seconds
    next_say = first.at + 60
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(every, left))
        now = sample(daemon.pid)
        rss_max = max(rss_max, now.rss_kb)
        if now.at >= next_say:
            say(f"  idle {mode}: {int(now.at - first.at)}/{int(seconds)} s")
            next_say += 60
    last = sample(daemon.pid)
    return IdleResult(
        mode, window(first, last), max(rss_max, last.rss_kb), daemon.syncs_done() - syncs
    )
