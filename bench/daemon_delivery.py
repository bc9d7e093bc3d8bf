#!/usr/bin/env python3
"""One new message in a big INBOX, through ``mailtide daemon``: from the daemon's trigger to
the message's file durable in the Maildir (issue 12: ≤ 50 ms with 50k messages in INBOX).
Measured from outside, on the daemon's ``-v`` log.  By hand:

    .venv/bin/python bench/daemon_delivery.py                    # 50k in INBOX, 20 messages
    .venv/bin/python bench/daemon_delivery.py --messages 2000 -n 5   # a check of the script

A private lab Dovecot holds the corpus in one folder (populate.py --folders 1); a one-shot
``mailtide sync`` makes the Maildir; then ``mailtide daemon -vv`` runs with ``debounce = 0``
(NOTIFY, the default), and another client APPENDs one message at a time to INBOX, each once
the daemon is idle.  Per message, from the log's timestamps (``-vv`` logs every IMAP line):

- ``trigger → durable``: from the push (the NOTIFY ``* STATUS INBOX`` line that reports the
  message) to the step that made the file durable (``step.done what="append local"``:
  written, fsynced, renamed, directory fsynced).
- ``server's share``: the time Dovecot reports for the sync's own commands in that span (the
  first figure of each tagged ``OK ... (0.121 + 0.000 + 0.120 secs)``, the push connection's
  left out): Dovecot on Maildir re-reads a changed folder of 50k files, which no client can
  spare it; ``mailtide's share`` is the rest.
- ``APPEND → durable``: from the APPEND's completion (this script's clock) to the same step,
  which adds Dovecot's NOTIFY hold-back (0.4-0.5 s, see bench/README.md "Push latency").
- ``APPEND → sync done``: to the ``account.done`` line (state committed).

At the end ``labtool.py check`` compares the Maildir with the server; a difference exits 1.
Results: bench/results/daemon-delivery-STAMP.jsonl and .md (also printed)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]

from daemon_bench.lab import Server, server_down, server_settings, server_up  # noqa: E402
from daemon_bench.mailtide_daemon import DONE, DaemonProcess, log_time, write_config  # noqa: E402
from daemon_bench.stats import spread  # noqa: E402
from speed_bench.labtool import LabTool  # noqa: E402

import imap_helpers as srv  # noqa: E402

DURABLE = 'what="append local"'
TARGET = 0.050  # seconds, trigger → durable
PUSHED = re.compile(r'event=imap\.received .*conn=(\d+) line="\* STATUS INBOX ')
SERVER_TIME = re.compile(r'event=imap\.received .*conn=(\d+) line="\S+ OK .*\((\d+\.\d+) \+ ')


def one_message(daemon: DaemonProcess, server: Server, i: int, tag: str) -> dict[str, float]:
    """APPEND message ``i`` and wait for the daemon's sync of it; its times from the log."""
    daemon.settle(quiet=0.5, timeout=120)
    seen = len(daemon.read())
    srv.append(server, "INBOX", srv.make_message(i, tag))
    appended = time.time()

    def synced() -> bool:
        lines = daemon.read()[seen:]
        return any(DURABLE in x for x in lines) and any(DONE in x for x in lines)

    daemon.wait_until(synced, 60, f"syncing message {i}")
    stamped = [(log_time(x), x) for x in daemon.read()[seen:]]
    lines = [(t, x) for t, x in stamped if t is not None]
    pushed = next((t, m.group(1)) for t, x in lines if (m := PUSHED.search(x)))
    durable = next(t for t, x in lines if DURABLE in x)
    done = next(t for t, x in lines if DONE in x)
    server = 0.0
    for t, x in lines:
        m = SERVER_TIME.search(x)
        if m and m.group(1) != pushed[1] and pushed[0] <= t <= durable:
            server += float(m.group(2))
    return {
        "trigger_to_durable": durable - pushed[0],
        "server_share": server,
        "mailtide_share": durable - pushed[0] - server,
        "append_to_durable": durable - appended,
        "append_to_done": done - appended,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=50000, help="in INBOX before the test")
    ap.add_argument("-n", type=int, default=20, help="new messages, one at a time")
    ap.add_argument("--bench-dir", type=Path, default=Path("/tmp/mailtide-daemon-delivery"))
    ap.add_argument("--mailtide", type=Path, default=REPO / ".venv" / "bin" / "mailtide")
    ap.add_argument("--lab", type=Path, default=REPO.parent / "shared" / "lab")
    ap.add_argument("--label", default="")
    ap.add_argument(
        "--dovecot",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting added to the lab Dovecot's configuration (repeatable), e.g.\n"
        "maildir_very_dirty_syncs=yes: Dovecot trusts its index instead of reading a\n"
        "changed folder's 50k file names again",
    )
    args = ap.parse_args()
    lab_dir = args.lab.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"daemon-delivery-{stamp}.jsonl"
    where = args.bench_dir / "server"
    server_down(lab_dir, where)
    subprocess.run(["rm", "-rf", str(args.bench_dir)], check=True)
    server = server_up(lab_dir, where)
    server_settings(server, args.dovecot)
    daemon = None
    records: list[dict[str, object]] = []

    def emit(record: dict[str, object]) -> None:
        records.append(record)
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")

    try:
        lab = LabTool(lab_dir, server)
        lab.populate(1, args.messages, 0)
        config = write_config(args.bench_dir / "mailtide", server, debounce=0)
        started = time.monotonic()
        subprocess.run(
            [str(args.mailtide), "sync", "-c", str(config)], check=True, capture_output=True
        )
        emit({"kind": "initial", "messages": args.messages, "wall": time.monotonic() - started})
        daemon = running = DaemonProcess(args.mailtide, config, verbose=2)
        running.wait_until(lambda: running.syncs_done() >= 1, 600, "through its first sync")
        tag = f"delivery{int(time.time())}"
        for i in range(args.n):
            emit({"kind": "message", "i": i, **one_message(running, server, i, tag)})
        daemon.terminate()
        daemon = None
        check = lab.check(config.parent / "Mail", "mbsync", None)
        emit({"kind": "check", **check})
    finally:
        if daemon is not None:
            daemon.kill()
        server_down(lab_dir, where)
    md = report(records, args)
    out.with_suffix(".md").write_text(md)
    print(md)
    if not check.get("ok"):
        print(f"!!!!!!!! WRONG RESULT: {check.get('problems')}", file=sys.stderr)
        return 1
    return 0


def report(records: list[dict[str, object]], args: argparse.Namespace) -> str:
    rows = [r for r in records if r["kind"] == "message"]
    out = [
        f"# mailtide daemon: one new message in a {args.messages}-message INBOX",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M')} UTC, {len(rows)} messages one at a time, NOTIFY, "
        "debounce 0; times from the daemon's -vv log"
        + (f"; **{args.label}**" if args.label else "")
        + "".join(f"; Dovecot `{s}`" for s in args.dovecot),
        "",
        "| measure | p50 | p95 | max | target |",
        "|---|---|---|---|---|",
    ]
    for key, label, target in (
        ("trigger_to_durable", "push → file durable", TARGET),
        ("server_share", "… of which Dovecot's own time (its tagged OKs)", None),
        ("mailtide_share", "… of which the rest (mailtide, the wire)", None),
        ("append_to_durable", "APPEND → file durable", None),
        ("append_to_done", "APPEND → sync done (state committed)", None),
    ):
        s = spread([float(r[key]) for r in rows])  # type: ignore[arg-type]
        cells = [f"{v * 1000:.0f} ms" if v is not None else "–" for v in (s.p50, s.p95, s.max)]
        verdict = "–"
        if target is not None and s.p50 is not None:
            verdict = f"≤ {target * 1000:.0f} ms: " + ("met" if s.p50 <= target else "missed")
        out.append(f"| {label} | " + " | ".join(cells) + f" | {verdict} |")
    check = next((r for r in records if r["kind"] == "check"), {})
    out += ["", f"Check after the run (labtool.py check): {'ok' if check.get('ok') else check}"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
