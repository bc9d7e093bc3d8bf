#!/usr/bin/env python3
"""One-shot sync speed: mailtide against mbsync (and OfflineIMAP where installed) on the same
Dovecot build and byte-identical corpora, the tools in alternating order, every sync checked.
By hand or ``make bench`` (bench/run.sh), never in ``make test``:

    .venv/bin/python bench/speed.py                          # 10k, 20 folders, every tool
    .venv/bin/python bench/speed.py --messages 50000 --reps 3
    .venv/bin/python bench/speed.py --messages 100000 --one-folder --steps initial,nochange,flag1
    .venv/bin/python bench/speed.py --link                   # through 25 ms RTT, 100 Mbit/s
    .venv/bin/python bench/speed.py --big 3                  # plus three 20 MB messages
    .venv/bin/python bench/speed.py --summary bench/results/speed-STAMP.jsonl

Results: bench/results/speed-STAMP.jsonl (one JSON object per measurement), .json (the table
as data) and .md (the table), also printed.  Exit 1 when a sync failed or a check found a
wrong result, 2 on a setup error.  See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]

from daemon_bench.lab import LabError, Server, server_down, server_up  # noqa: E402
from speed_bench import link, report  # noqa: E402
from speed_bench.deletions import still_on_server  # noqa: E402
from speed_bench.labtool import LabTool  # noqa: E402
from speed_bench.steps import STEPS, Expected, prepare  # noqa: E402
from speed_bench.timed import Timing, timed  # noqa: E402
from speed_bench.tools import TOOLS, Tool, installed, offlineimap_too_slow  # noqa: E402

from fault_proxy import FaultProxy, Shape  # noqa: E402


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=int(_env("N", "10000")))
    ap.add_argument("--folders", type=int, default=int(_env("FOLDERS", "20")))
    ap.add_argument("--one-folder", action="store_true", help="every message in INBOX")
    ap.add_argument("--steps", default=_env("STEPS", "initial nochange server local flag1"))
    ap.add_argument("--tools", default=os.environ.get("TOOLS"), help="default: all installed")
    ap.add_argument("--reps", type=int, default=int(_env("REPS", "3")), help="of each re-sync")
    ap.add_argument("--big", type=int, default=0, help="that many more messages of ~20 MB")
    ap.add_argument("--deletions", type=int, default=20, help="local deletions in 'local'")
    ap.add_argument("--link", action="store_true", help="every sync through the shaped link")
    ap.add_argument("--rtt-ms", type=float, default=25.0)
    ap.add_argument("--mbit", type=float, default=100.0)
    ap.add_argument("--settle", type=float, default=float(_env("SETTLE", "1.1")))
    ap.add_argument("--timeout", type=float, default=float(_env("TIMEOUT", "1800")))
    ap.add_argument("--offlineimap-budget", type=float, default=900.0, help="seconds")
    ap.add_argument("--label", default="", help="a note for the table (e.g. a loaded machine)")
    ap.add_argument("--bench-dir", type=Path, default=_env("BENCH_DIR", "/tmp/mailtide-bench"))
    ap.add_argument("--mailtide", type=Path, default=_env("MAILTIDE", f"{REPO}/.venv/bin/mailtide"))
    ap.add_argument("--lab", type=Path, default=_env("LAB", f"{REPO.parent}/shared/lab"))
    ap.add_argument("--out", type=Path, default=os.environ.get("OUT") or None)
    ap.add_argument("--summary", type=Path, help="only print the table of a results file")
    ap.add_argument(
        "--growth",
        type=Path,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="only compare the no-change re-sync of two results files",
    )
    return ap.parse_args(argv)  # fmt: skip


class Run:
    """One benchmark run: the tools, their servers, the records."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lab: Path = args.lab.resolve()
        self.mode = "inbox" if args.one_folder else "folders"
        self.folders = 1 if args.one_folder else args.folders
        self.steps = args.steps.replace(",", " ").split()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out: Path = args.out or REPO / "bench" / "results" / f"speed-{stamp}.jsonl"
        self.records: list[dict[str, Any]] = []
        self.tools: list[Tool] = []
        self.servers: dict[str, Server] = {}
        self.proxies: list[FaultProxy] = []
        self.wrong = 0

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with self.out.open("a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def loud(self, text: str) -> None:
        """A wrong result: said at once, in capitals, and the run will exit 1."""
        self.wrong += 1
        self.say(f"!!!!!!!! WRONG RESULT: {text}")

    # --- set-up -----------------------------------------------------------------------

    def choose_tools(self) -> list[str]:
        names = (self.args.tools or " ".join(TOOLS)).replace(",", " ").split()
        for name in names:
            if name not in TOOLS:
                raise LabError(f"unknown tool {name!r} (choose from {', '.join(TOOLS)})")
        chosen = []
        for name in names:
            why = None
            if not installed(name, self.args.mailtide):
                why = f"{name} skipped: not installed"
                if self.args.tools:  # asked for by name: a mistake, not a note
                    raise LabError(f"{name} is not installed ({self.args.mailtide} for mailtide)")
            elif name == "offlineimap":
                why = offlineimap_too_slow(self.args.messages, self.args.offlineimap_budget)
            if why:
                self.say(why)
                self.emit({"kind": "skipped", "tool": name, "reason": why})
            else:
                chosen.append(name)
        return chosen

    def meta(self, names: list[str]) -> dict[str, Any]:
        a = self.args

        def out(*argv: str) -> str:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            except OSError:
                return "unknown"
            return ((done.stdout or done.stderr).strip().splitlines() or ["unknown"])[0]

        meta: dict[str, Any] = {
            "kind": "meta", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host_nproc": os.cpu_count(), "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "n": a.messages, "folders": self.folders, "mode": self.mode, "big": a.big,
            "steps": self.steps, "reps": a.reps, "settle": a.settle, "label": a.label,
            "link": f"{a.rtt_ms:g} ms RTT, {a.mbit:g} Mbit/s" if a.link else None,
            "commit": out("git", "-C", str(REPO), "describe", "--always", "--dirty"),
            "dovecot": out("dovecot", "--version"),
        }  # fmt: skip
        versions = {"mailtide": [str(a.mailtide), "--version"], "mbsync": ["mbsync", "--version"],
                    "offlineimap": ["offlineimap", "--version"]}  # fmt: skip
        meta.update({n: out(*versions[n]) for n in names})
        return meta

    def precompile(self) -> None:
        """Byte-compile the measured mailtide's own modules, as an install does: without
        their .pyc (PYTHONDONTWRITEBYTECODE, or a fresh checkout) every run compiles them
        again, about 0.1 s of CPU a start on this machine.  Then one start writes the kept
        methods of mailtide's value classes (``mailtide/compiled_methods.py``), as the first
        run after an install does where Python writes bytecode."""
        script = self.args.mailtide.read_text(errors="replace").splitlines()[0]
        python = script[2:].strip() if script.startswith("#!") else sys.executable
        where = subprocess.run(
            [python, "-c", "import mailtide, os; print(os.path.dirname(mailtide.__file__))"],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if where:
            subprocess.run([python, "-m", "compileall", "-q", where], capture_output=True)
            # and the value classes' methods (mailtide/compiled_methods.py), kept the same way
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            warm = (
                "import mailtide.cli, mailtide.wiring, mailtide.daemon.control, "
                "mailtide.quiet.check, mailtide.stores.imap.probe, mailtide.stores.maildir.seen"
            )
            subprocess.run([python, "-c", warm], capture_output=True, env=env)

    def servers_up(self, names: list[str]) -> None:
        """A fresh server per tool, all filled with the same corpus (the digests prove it)."""
        a = self.args
        for name in names:
            where = a.bench_dir / f"server-{name}"
            server_down(self.lab, where)
            subprocess.run(["rm", "-rf", str(where)], check=True)
            self.say(f"{name}: a fresh server, {a.messages} messages in {self.folders} folder(s)")
            server = server_up(self.lab, where)
            self.servers[name] = server
            lab = LabTool(self.lab, server)
            took = lab.populate(self.folders, a.messages, a.big)
            digest = lab.digest()
            self.emit({"kind": "populate", "tool": name, "wall": round(took, 2), "digest": digest})
            self.tools.append(Tool(name, a.bench_dir / name, server))
        if len({x["digest"] for x in self.records if x.get("kind") == "populate"}) > 1:
            raise LabError("the servers' corpora differ (labtool.py digest): no fair comparison")

    def link_up(self) -> None:
        """Each tool syncs through a shaped link of its own; the link is measured first."""
        a = self.args
        shape = Shape.of(a.rtt_ms, a.mbit)
        got = link.measure(shape, self.tools[0].server.port)
        self.emit(got.record())
        self.say(f"link: RTT {got.rtt_ms_median:.1f} ms median, {got.mbit:.0f} Mbit/s")
        if got.rtt_ms_min < a.rtt_ms or got.mbit > a.mbit * 1.05:
            raise LabError(f"the shaped link is not what was asked for: {got.record()}")
        for i, tool in enumerate(self.tools):
            proxy = FaultProxy(tool.server.port, shape=shape)
            self.proxies.append(proxy)
            self.tools[i] = tool.through(proxy.port)

    def down(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        for server in self.servers.values():
            server_down(self.lab, server.dir)

    # --- the steps --------------------------------------------------------------------

    def run_steps(self) -> None:
        failed: set[str] = set()
        slot = 0
        for step in self.steps:
            for rep in range(1, 1 + (1 if step == "initial" else self.args.reps)):
                tools = [t for t in self.tools if t.name not in failed]
                order = tools if slot % 2 == 0 else tools[::-1]
                slot += 1
                expected = {t.name: self.prepare(step, rep, t) for t in order}
                if step != "initial":
                    time.sleep(self.args.settle)
                for place, tool in enumerate(order):
                    ok = self.measure(tool, step, rep, place, expected[tool.name])
                    if step == "initial" and not ok:
                        failed.add(tool.name)
                        why = f"{tool.name}: no initial sync, its other steps not run"
                        self.emit({"kind": "skipped", "tool": tool.name, "reason": why})

    def lab_for(self, tool: Tool) -> LabTool:
        """The lab tool on ``tool``'s server itself, never through the link."""
        return LabTool(self.lab, self.servers[tool.name])

    def prepare(self, step: str, rep: int, tool: Tool) -> Expected:
        if step == "initial":
            tool.prepare()
        return prepare(step, rep, tool, self.lab_for(tool), self.args.deletions)

    def measure(self, tool: Tool, step: str, rep: int, place: int, want: Expected) -> bool:
        a = self.args
        limit = a.timeout
        if tool.name == "offlineimap" and step == "initial":
            limit = min(limit, a.offlineimap_budget)
        log = tool.dir / f"{step}-{rep}.log"
        t = timed(tool.argv(self.lab, a.mailtide), log, limit, tool.env())
        if limit < a.timeout and t.timed_out:  # over OfflineIMAP's budget: a note, not a failure
            why = f"{tool.name} skipped: its initial sync took over {limit:.0f} s (the budget)"
            self.say(why)
            self.emit({"kind": "skipped", "tool": tool.name, "reason": why})
            return False
        check = self.check(tool, want, t)
        correct = t.rc == 0 and bool(check.get("ok"))
        error = None
        if t.rc != 0:
            lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            error = ("timed out: " if t.timed_out else f"rc {t.rc}: ") + " | ".join(lines[-3:])
        self.emit({
            "kind": "sync", "tool": tool.name, "n": a.messages, "mode": self.mode,
            "link": bool(a.link), "step": step, "rep": rep, "place": place, "rc": t.rc,
            "wall": round(t.wall, 3), "user": round(t.user, 3), "sys": round(t.sys, 3),
            "maxrss_kb": t.maxrss_kb, "correct": correct, "error": error, "check": check,
        })  # fmt: skip
        self.say(
            f"{tool.name} {step}#{rep}: rc={t.rc} wall={t.wall:.2f}s cpu={t.cpu:.2f}s "
            f"rss={t.maxrss_kb // 1024}MB correct={correct}"
        )
        if not correct:
            problems = "; ".join(check.get("problems", [])[:3])
            self.loud(f"{tool.name} {step}#{rep}: {error or problems}")
        return t.rc == 0

    def check(self, tool: Tool, want: Expected, t: Timing) -> dict[str, Any]:
        if t.timed_out:
            return {"ok": False, "problems": ["timed out"]}
        lab = self.lab_for(tool)
        check = lab.check(tool.maildir, tool.layout, want.flags)
        if want.deleted:
            gone = still_on_server(self.lab, lab.server, want.deleted)
            check["deletions_checked"] = sum(map(len, want.deleted.values()))
            if gone:
                check["ok"] = False
                check["problems"] = check.get("problems", []) + gone[:5]
        return check

    # --- the end ----------------------------------------------------------------------

    def finish(self) -> int:
        md = report.markdown(self.records)
        self.out.with_suffix(".md").write_text(md)
        summary = report.summary(self.records)
        self.out.with_suffix(".json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        print(md)
        self.say(f"results: {self.out} (.md, .json beside it)")
        if self.wrong:
            self.say(f"!!!!!!!! {self.wrong} sync(s) FAILED or gave a WRONG RESULT: see above")
            return 1
        return 0


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.summary:
        print(report.markdown(_records(args.summary)))
        return 0
    if args.growth:
        print(report.growth(*map(_records, args.growth)))
        return 0
    run = Run(args)
    for step in run.steps:
        if step not in STEPS:
            run.say(f"unknown step {step!r} (choose from {', '.join(STEPS)})")
            return 2
    if REPO in args.bench_dir.resolve().parents or args.bench_dir.resolve() == REPO:
        run.say("--bench-dir must be outside the repository")
        return 2
    args.bench_dir.mkdir(parents=True, exist_ok=True)
    run.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        names = run.choose_tools()
        run.emit(run.meta(names))
        if "mailtide" in names:
            run.precompile()
        run.servers_up(names)
        if args.link:
            run.link_up()
        run.run_steps()
    except LabError as e:
        run.say(f"setup failed: {e}")
        return 2
    except KeyboardInterrupt:
        run.say("interrupted")
        return 130
    finally:
        run.down()
    return run.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
