"""The markdown summary of a ``bench/daemon.py`` results file (one JSON object per line)."""

from __future__ import annotations

import statistics
from typing import Any

Record = dict[str, Any]
RunRecords = tuple[Record, Record | None]  # a run's meta and end records

SERVER_TO_MAILDIR = 0.5  # target p95, seconds
MAILDIR_TO_SERVER = 1.0
IDLE_CPU = 0.2  # percent of a core
RSS_GROWTH_KB = 2048

EVENT_LABELS = {
    "server-inbox": "server APPEND to INBOX → new/",
    "server-other": "server APPEND to Receipts (not IDLE'd) → new/",
    "flag": "local flag rename → server",
    "delete": "local delete → server",
    "move": "local move INBOX → Travel → server",
    "new": "local new file → server",
}


def _s(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _target(r: Record, poll: float | None) -> tuple[str, bool | None]:
    p95 = r["spread"]["p95"]
    if r["tool"] != "mailtide" or p95 is None:
        return "", None
    if r["event"] == "server-other" and r["mode"].startswith("IDLE"):
        limit = poll or 0.0
        return f"≤ poll ({limit:g} s)", p95 <= limit and r["spread"]["missed"] == 0
    limit = SERVER_TO_MAILDIR if r["event"].startswith("server") else MAILDIR_TO_SERVER
    return f"p95 ≤ {limit:g} s", p95 <= limit and r["spread"]["missed"] == 0


def latency_table(records: list[Record], poll: float | None) -> list[str]:
    out = [
        "| tool | watching with | change | n | p50 | p95 | max | target | met"
        " | first reaction p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["kind"] != "latency":
            continue
        sp, target = r["spread"], _target(r, poll)
        mark = " †" if r.get("index_logs_rotated") else ""
        met = {None: "", True: "yes", False: "**no**"}[target[1]]
        missed = f" ({sp['missed']} missed)" if sp["missed"] else ""
        out.append(
            f"| {r['tool']} | {r['mode']} | {EVENT_LABELS.get(r['event'], r['event'])}{mark} | "
            f"{sp['n']}{missed} | {_s(sp['p50'])} s | {_s(sp['p95'])} s | {_s(sp['max'])} s | "
            f"{target[0]} | {met} | {_s(r['reaction']['p50'])} s |"
        )
    return out


def rotation_note(records: list[Record]) -> list[str]:
    if not any(r.get("index_logs_rotated") for r in records if r["kind"] == "latency"):
        return []
    return [
        "",
        "† Dovecot rotated an index log of the lab user (`dovecot.index.log` of INBOX, or the"
        " mailbox list's) during these events: see bench/README.md on NOTIFY after a rotation.",
    ]


def idle_table(records: list[Record]) -> list[str]:
    out = [
        "| watching with | window | CPU (% of a core) | wake-ups / min | RSS start → end (max) |"
        " syncs in the window |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["kind"] == "idle":
            ok = "" if r["cpu_percent"] <= IDLE_CPU else " (**over 0.2 %**)"
            out.append(
                f"| {r['mode']} | {r['seconds'] / 60:.1f} min | {r['cpu_percent']:.3f}{ok} | "
                f"{r['wakeups_per_minute']:.0f} | {r['rss_start_kb'] / 1024:.1f} → "
                f"{r['rss_end_kb'] / 1024:.1f} MB ({r['rss_max_kb'] / 1024:.1f}) | {r['syncs']} |"
            )
    return out


def churn_table(records: list[Record]) -> list[str]:
    out = [
        "| daemon run | minutes | changes | RSS start → end | growth |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        if r["kind"] == "rss":
            grown = r["rss_end_kb"] - r["rss_start_kb"]
            flag = "" if grown <= RSS_GROWTH_KB else " (**over 2 MB**)"
            out.append(
                f"| {r['mode']} | {r['minutes']:.1f} | {r['events']} | "
                f"{r['rss_start_kb'] / 1024:.1f} → {r['rss_end_kb'] / 1024:.1f} MB | "
                f"{grown / 1024:+.1f} MB{flag} |"
            )
    return out


def stop_table(records: list[Record]) -> list[str]:
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        if r["kind"] == "stop":
            groups.setdefault((r.get("tool", "mailtide"), r["state"]), []).append(r)
    out = [
        "| tool | state | n | exit codes | median | max | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for (tool, state), rs in groups.items():
        secs = [r["seconds"] for r in rs]
        codes = ",".join(sorted({str(r["code"]) for r in rs}))
        notes = "; ".join(r["note"] for r in rs if r.get("note"))
        out.append(
            f"| {tool} | {state} | {len(rs)} | {codes} | {statistics.median(secs):.2f} s | "
            f"{max(secs):.2f} s | {notes} |"
        )
    return out


def recover_table(records: list[Record]) -> list[str]:
    groups: dict[tuple[str, str], list[float | None]] = {}
    for r in records:
        if r["kind"] == "recover":
            groups.setdefault((r["fault"], r["event"]), []).append(r["seconds"])
    out = [
        "| fault | then | n | median | max | not within the timeout |",
        "|---|---|---|---|---|---|",
    ]
    for (fault, event), secs in groups.items():
        got = [s for s in secs if s is not None]
        med = statistics.median(got) if got else None
        out.append(
            f"| {fault} | {event} | {len(secs)} | {_s(med)} s | {_s(max(got) if got else None)} s"
            f" | {len(secs) - len(got)} |"
        )
    return out


def runs(records: list[Record]) -> list[RunRecords]:
    """Each run in ``records`` (one file, or several run side by side and concatenated): its
    meta record and the end record that follows it (None if it never ended)."""
    out: list[RunRecords] = []
    for r in records:
        if r["kind"] == "meta":
            out.append((r, None))
        elif r["kind"] == "end" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], r)
    return out


def run_line(meta: Record, end: Record | None) -> str:
    load = f"load average {meta.get('loadavg', ['?'])[0]:.1f} at the start"
    if end:
        load += f", {end['loadavg'][0]:.1f} at the end ({end['date']})"
    when, commit = meta.get("date", ""), meta.get("commit", "?")
    return f"`{meta.get('command', '')}` ({when}; commit {commit}; {load})"


def markdown(records: list[Record]) -> str:
    parts = runs(records) or [({}, None)]
    meta = parts[0][0]
    poll = next((m["poll"] for m, _ in parts if "poll" in m), None)
    if len(parts) == 1:
        header = [f"- command: {run_line(*parts[0])}"]
    else:
        header = [
            f"- {len(parts)} runs side by side, each with its own Dovecot, corpus and daemons:",
            *(f"  - {run_line(m, e)}" for m, e in parts),
        ]
    lines = [
        f"# mailtide daemon: push latency, idle cost, stop and recovery ({meta.get('date', '')})",
        "",
        *header,
        f"- {meta.get('nproc', '?')} cores, {meta.get('dovecot', '')}, "
        f"{meta.get('offlineimap', '')}",
        f"- lab corpus: {meta.get('messages')} messages in {meta.get('folders')} folders "
        f"(populate.py --seed {meta.get('seed')}); plain IMAP on 127.0.0.1",
        f"- events per kind: {meta.get('n')}; OfflineIMAP timer-bound rounds: "
        f"{meta.get('peer_n')}; IDLE mode polls every {poll} s",
        "",
        "## Push latency (seconds from the change to its arrival on the other side)",
        "",
        *latency_table(records, poll),
        *rotation_note(records),
        "",
        "mbsync has no daemon: run from a timer of period T (e.g. a 5 min systemd timer) a change"
        " waits T/2 on average (2.5 min) and T at worst, plus its sync (0.1–0.4 s here at 10k,"
        " see bench/run.sh).",
        "",
        "## Idle daemon",
        "",
        *idle_table(records),
        "",
        "## Memory under churn (the latency runs)",
        "",
        *churn_table(records),
        "",
        "From the end of the first kind's events (warm) to the end of the run; the 30-minute"
        " soak with random changes on both sides is `tests/daemon/test_soak.py::test_soak_long`"
        " (`MAILTIDE_SOAK_LONG_SECONDS`).",
        "",
        "## SIGTERM to exit",
        "",
        *stop_table(records),
        "",
        "## Recovery",
        "",
        *recover_table(records),
        "",
    ]
    return "\n".join(lines)
