"""One command timed from outside: wall seconds, CPU seconds (user + system) and peak RSS of
the process and everything it waited for, from ``wait4``; a timeout kills its process group.

The peak RSS is the one ``/usr/bin/time`` reports of its child (Debian's ``time``): a process
started straight from the bench inherits the bench's own peak as its floor (Linux keeps the
high-water mark of the memory a process had before ``execve``), so every small run read as
big as the bench itself (40 MB here, for an mbsync that peaks at 22).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TIME = "/usr/bin/time"  # GNU time: the peak RSS of its child alone (``-f %M``)


@dataclass(frozen=True, slots=True)
class Timing:
    rc: int  # the exit status; -9 after a timeout
    wall: float
    user: float
    sys: float
    maxrss_kb: int
    timed_out: bool = False

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def timed(
    argv: Sequence[str], log: Path, timeout: float, env: Mapping[str, str] | None = None
) -> Timing:
    """Run ``argv`` with its output in ``log``; a run over ``timeout`` seconds is killed."""
    rss_file = log.with_name(log.name + ".maxrss")
    rss_file.unlink(missing_ok=True)
    measured = os.access(TIME, os.X_OK)
    if measured:
        argv = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True,  # its own group: a timeout ends its children too
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    return Timing(
        rc=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        maxrss_kb=_peak(rss_file) if measured else usage.ru_maxrss,
        timed_out=killed.is_set(),
    )


def _peak(rss_file: Path) -> int:
    """The peak RSS (KiB) ``time`` wrote; 0 where it wrote none (a run killed)."""
    try:
        words = rss_file.read_text().split()
    except OSError:
        return 0
    return int(words[-1]) if words and words[-1].isdigit() else 0
