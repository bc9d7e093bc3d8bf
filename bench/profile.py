#!/usr/bin/env python3
"""Where a one-shot sync's time goes: ``mailtide sync`` under cProfile on the lab corpus, for
the no-change re-sync and the re-sync after +100 server flag changes and +100 new messages
(bench/speed.py's ``nochange`` and ``server``), plus ``-X importtime`` of the start-up.  By hand:

    .venv/bin/python bench/profile.py                      # 10k, 20 folders
    .venv/bin/python bench/profile.py --messages 50000 --top 40

It starts a private lab Dovecot under --bench-dir, fills it, runs the initial sync (not
profiled), then each profiled step.  Output: bench/results/profile-STAMP/{STEP}.pstats (open
with ``python -m pstats`` or snakeviz), STEP.txt (the top functions by own and by cumulative
time) and importtime.txt; the tops are printed.  With py-spy installed (``pip install py-spy``)
each step also runs under ``py-spy record --idle`` (wall-clock samples, no tracing overhead):
STEP.spy.txt says what the main thread was doing: importing, waiting in the event loop
(server, disk, threads), or running which mailtide function.  See bench/README.md, "Where the
time goes"."""

from __future__ import annotations

import argparse
import collections
import io
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]

from daemon_bench.lab import server_down, server_up  # noqa: E402
from speed_bench.labtool import LabTool  # noqa: E402
from speed_bench.tools import Tool  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--bench-dir", type=Path, default=Path("/tmp/mailtide-profile"))
    ap.add_argument("--lab", type=Path, default=REPO.parent / "shared" / "lab")
    args = ap.parse_args()
    out = REPO / "bench" / "results" / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    lab_dir = args.lab.resolve()
    where = args.bench_dir / "server"
    server_down(lab_dir, where)
    subprocess.run(["rm", "-rf", str(args.bench_dir)], check=True)
    server = server_up(lab_dir, where)
    try:
        lab = LabTool(lab_dir, server)
        lab.populate(args.folders, args.messages, 0)
        tool = Tool("mailtide", args.bench_dir / "mailtide", server)
        tool.prepare()
        sync = [sys.executable, "-m", "mailtide", "sync", "-c", str(tool.dir / "config.toml")]
        subprocess.run(sync, check=True, capture_output=True)
        imports = subprocess.run(
            [sys.executable, "-X", "importtime", *sync[1:]], capture_output=True, text=True
        )
        (out / "importtime.txt").write_text(imports.stderr)
        for step in ("nochange", "server"):
            if step == "server":
                lab.mutate(flags=100, new=100, seed=101)
            time.sleep(1.1)
            stats = out / f"{step}.pstats"
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "cProfile", "-o", str(stats), *sync[1:]],
                check=True,
                capture_output=True,
            )
            took = time.monotonic() - started
            text = f"== {step}: {took:.2f} s wall under cProfile\n" + tops(stats, args.top)
            (out / f"{step}.txt").write_text(text)
            print(text)
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if Path(spy).exists():
                if step == "server":  # changes of its own, as the cProfile run had
                    lab.mutate(flags=100, new=100, seed=102)
                time.sleep(1.1)
                raw = out / f"{step}.raw"
                record = [spy, "record", "--idle", "--threads", "-r", "500", "-f", "raw"]
                record += ["-o", str(raw)]
                subprocess.run([*record, "--", *sync], check=True, capture_output=True)
                text = f"== {step} under py-spy (main thread)\n" + main_thread(raw, args.top)
                (out / f"{step}.spy.txt").write_text(text)
                print(text)
        check = lab.check(tool.maildir, tool.layout, None)
        if not check.get("ok"):
            print(f"!!!!!!!! WRONG RESULT after the profiled syncs: {check}", file=sys.stderr)
            return 1
    finally:
        server_down(lab_dir, where)
    print(f"profiles in {out}", file=sys.stderr)
    return 0


def tops(stats_file: Path, n: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=buf)
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        buf.write(f"\n-- by {order}\n")
        stats.sort_stats(order).print_stats(n)
    return buf.getvalue().replace(str(stats_file), stats_file.name)  # no path of this machine


def main_thread(raw: Path, n: int) -> str:
    """py-spy's raw stacks of the main thread, grouped: importing (by the module that began
    the import), waiting in the event loop, or the innermost mailtide function running."""
    groups: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" not in frames[0]:
            continue
        ours = [f for f in frames if "mailtide/" in f]
        if len(frames) == 1:
            key = "no Python frame (interpreter start-up and shutdown, native code)"
        elif any("_find_and_load" in f for f in frames):
            key = "importing: " + (ours[0] if ours else frames[1])
        elif frames[-1].startswith("EpollSelector.select"):
            key = "waiting in the event loop (server, disk, worker threads)"
        else:
            key = ours[-1] if ours else frames[-1]
        groups[key] += int(count)
    total = sum(groups.values()) or 1
    rows = [f"{v / 500:7.3f} s {100 * v / total:5.1f}%  {k}" for k, v in groups.most_common(n)]
    return f"{total / 500:.3f} s of main-thread samples\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
