"""A running process's cost, read from /proc: CPU time of all its threads (utime + stime in
/proc/PID/stat), its resident memory, and each thread's context switches (a voluntary switch
is the thread going to sleep: counted over a window, it is how often the thread wakes up)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ThreadSample:
    name: str
    voluntary: int
    involuntary: int


@dataclass(frozen=True, slots=True)
class ProcSample:
    at: float  # monotonic seconds
    cpu: float  # seconds of CPU (user + system), every thread
    rss_kb: int
    hwm_kb: int  # the peak RSS so far
    threads: dict[int, ThreadSample]


def _status(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def sample(pid: int) -> ProcSample:
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    cpu = (int(after_name[11]) + int(after_name[12])) / TICK  # fields 14 and 15
    status = _status(Path(f"/proc/{pid}/status"))
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _status(task / "status")
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        threads[int(task.name)] = ThreadSample(
            fields["Name"],
            int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]),
        )
    return ProcSample(
        at, cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]), threads
    )


@dataclass(frozen=True, slots=True)
class Window:
    """What a process cost between two samples."""

    seconds: float
    cpu_percent: float  # of one core
    wakeups_per_minute: float  # voluntary switches, all threads alive at both ends
    involuntary_per_minute: float
    rss_start_kb: int
    rss_end_kb: int
    per_thread: dict[str, float]  # thread name -> voluntary switches per minute
    threads_lost: int  # threads present at the start and gone at the end (not counted)


def window(a: ProcSample, b: ProcSample) -> Window:
    seconds = b.at - a.at
    minutes = seconds / 60
    both = a.threads.keys() & b.threads.keys()
    per_thread: dict[str, float] = {}
    for tid in sorted(both):
        name = f"{b.threads[tid].name}:{tid}"
        per_thread[name] = (b.threads[tid].voluntary - a.threads[tid].voluntary) / minutes
    new = b.threads.keys() - a.threads.keys()
    voluntary = sum(per_thread.values()) + sum(b.threads[t].voluntary for t in new) / minutes
    involuntary = sum(b.threads[t].involuntary - a.threads[t].involuntary for t in both) + sum(
        b.threads[t].involuntary for t in new
    )
    return Window(
        seconds,
        100 * (b.cpu - a.cpu) / seconds,
        voluntary,
        involuntary / minutes,
        a.rss_kb,
        b.rss_kb,
        per_thread,
        len(a.threads.keys() - b.threads.keys()),
    )
