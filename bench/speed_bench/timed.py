"""One command timed from outside: wall seconds, CPU seconds (user + system) and peak RSS of
the process and everything it waited for, from ``wait4``; a timeout kills its process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


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
        maxrss_kb=usage.ru_maxrss,
        timed_out=killed.is_set(),
    )
