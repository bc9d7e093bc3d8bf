#!/usr/bin/env python3
"""mailtide's daemon measured from outside, in one run: push latency both ways (NOTIFY; IDLE
plus the poll), the same for OfflineIMAP (idlefolders + autorefresh), the cost of an idle
daemon, SIGTERM to exit, and recovery after a cut connection and a resume.  By hand, not in CI:

    .venv/bin/python bench/daemon.py --quick          # about 10 minutes: a check of the script
    .venv/bin/python bench/daemon.py                  # the real run: about 1.5 hours
    .venv/bin/python bench/daemon.py --phases latency,idle -n 50 --idle-window 300
    .venv/bin/python bench/daemon.py --summary bench/results/daemon-STAMP.jsonl

It starts a private Dovecot with ../shared/lab/dovecot-up.sh, fills it with the lab corpus
(populate.py, 20 folders), runs ``mailtide daemon`` (and ``offlineimap``) as subprocesses and
makes changes as other clients would.  Results: bench/results/daemon-STAMP.jsonl (one JSON
object per measurement) and the tables in bench/results/daemon-STAMP.md, also printed.  See
bench/README.md, "The daemon"."""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import imaplib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]

from daemon_bench import lifecycle, offlineimap_peer  # noqa: E402
from daemon_bench.events import LocalNew, ServerAppend  # noqa: E402
from daemon_bench.idle_cost import idle_window  # noqa: E402
from daemon_bench.lab import Server, index_log_rotations, populate, server_down, server_up  # noqa: E402
from daemon_bench.latency import LatencyResult, Scene, Supply, mailtide_latency  # noqa: E402
from daemon_bench.local_tree import LocalTree  # noqa: E402
from daemon_bench.mailtide_daemon import DaemonProcess, write_config  # noqa: E402
from daemon_bench.procfs import ProcSample, sample  # noqa: E402
from daemon_bench.relay import Relay  # noqa: E402
from daemon_bench.report import markdown  # noqa: E402
from daemon_bench.server_view import ServerView  # noqa: E402

import imap_helpers as srv  # noqa: E402

PHASES = ("latency", "offlineimap", "idle", "stop", "recover")
LATENCY_MODES = ("notify", "idle", "debounce0", "quiet")  # --modes, in this order
PUSH_KINDS = ("server-inbox", "server-other", "flag", "delete", "move", "new")
IDLE_KINDS = ("server-inbox", "flag", "delete", "move", "new")
DEBOUNCE_KINDS = ("server-inbox", "server-other", "flag")
WHATS = ("server APPEND → new/", "local new file → server")  # the changes after a fault


class Run:
    """One bench run: its settings, its server, where it writes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lab: Path = args.lab.resolve()
        self.dir: Path = args.bench_dir
        self.rng = random.Random(args.seed)
        self.tag = f"b{int(time.time())}"  # every Message-ID of this run is its own
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out: Path = args.out or REPO / "bench" / "results" / f"daemon-{stamp}.jsonl"
        self.records: list[dict[str, object]] = []
        self.server: Server | None = None
        self.view: ServerView | None = None
        self.daemons: list[DaemonProcess] = []  # killed at the end if still running

    def say(self, text: str) -> None:
        print(f"[daemon-bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def emit(self, record: dict[str, object]) -> None:
        self.records.append(record)
        with self.out.open("a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    # --- the mailtide daemon -------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.dir / "mailtide"

    def daemon(
        self,
        keys: Mapping[str, object],
        verbose: bool = True,
        where: Path | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> DaemonProcess:
        """A daemon on ``where`` (default: the shared Maildir), not yet through its first sync."""
        assert self.server is not None
        server = self.server if port is None else dataclasses.replace(self.server, port=port)
        config = write_config(where or self.home, server, **keys)
        d = DaemonProcess(self.args.mailtide, config, verbose=verbose, env=env)
        self.daemons.append(d)
        return d

    def settled_daemon(self, keys: Mapping[str, object], **options: object) -> DaemonProcess:
        d = self.daemon(keys, **options)  # type: ignore[arg-type]
        d.wait_until(lambda: d.syncs_done() > 0, 900, "through its first sync")
        d.settle(quiet=2.0, timeout=300)
        return d


# --- phases ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mode:
    """One latency daemon: its name, its account keys, the kinds of change (with the poll's
    period for a kind a timer sees, else None), events per kind, and the quiet before each."""

    name: str
    keys: dict[str, object]
    kinds: list[tuple[str, float | None]]
    n: int
    gap: float


def latency_modes(a: argparse.Namespace) -> dict[str, Mode]:
    """The latency daemons by their ``--modes`` name, in the order they run."""
    push: list[tuple[str, float | None]] = [(k, None) for k in PUSH_KINDS]
    debounce_n = a.debounce0_n if a.debounce0_n is not None else max(10, a.n // 4)
    return {
        "notify": Mode("NOTIFY", {}, push, a.n, a.gap),
        "idle": Mode(
            f"IDLE on INBOX + poll {a.poll:g}s",
            {"notify": False, "poll": f"{a.poll:g}s"},
            [(k, None) for k in IDLE_KINDS] + [("server-other", a.poll)],
            a.n,
            a.gap,
        ),
        # what the debounce costs: the same server push without it
        "debounce0": Mode("NOTIFY, debounce = 0", {"debounce": 0}, push[:3], debounce_n, a.gap),
        # a change after a quiet spell, as most are: the held connections have been silent
        # longer than `timeout` (60 s) but not yet dropped by the keepalive (2 min)
        "quiet": Mode(
            f"NOTIFY, {a.quiet_gap:g} s quiet before each",
            {},
            [push[0], push[2]],
            a.quiet_n,
            a.quiet_gap,
        ),
    }


def phase_latency(run: Run) -> None:
    modes = latency_modes(run.args)
    for name in run.args.modes.split(","):
        if modes[name].n > 0:
            latency_mode(run, modes[name])


def latency_mode(run: Run, mode: Mode) -> None:
    """One daemon, ``mode.n`` events of each kind, one at a time."""
    view, server = run.view, run.server
    assert view is not None and server is not None
    run.say(f"mailtide, {mode.name}: starting the daemon")
    d = run.settled_daemon(mode.keys)
    scene = Scene(view, LocalTree(run.home / "Mail", run.rng), run.tag)
    supply = Supply(scene)
    rss, counts = [sample(d.pid)], []  # RSS after the first sync, then after each kind
    for kind, timer in mode.kinds:
        timeout = 30 if timer is None else 3 * timer + 30
        rotated = index_log_rotations(server)
        result = mailtide_latency(
            scene, supply, d, mode.name, kind, mode.n, run.rng, timer, timeout, mode.gap, run.say
        )
        now = index_log_rotations(server)
        report_latency(run, result, sorted(k for k in now if now[k] != rotated.get(k)))
        d.settle(quiet=1.0)
        rss.append(sample(d.pid))
        counts.append(len(result.samples))
    run.emit(churn_record(f"mailtide, {mode.name}", rss, sum(counts[1:])))
    code, took = d.terminate()
    run.emit(lifecycle.Stopped("idle", code, took, "after a latency run").record())


def churn_record(mode: str, rss: list[ProcSample], events: int) -> dict[str, object]:
    """RSS while changes kept coming: from after the first kind's events (warm: caches,
    connections and the interpreter's pools filled) to the end; the cold start is kept too."""
    return {
        "kind": "rss",
        "mode": mode,
        "minutes": (rss[-1].at - rss[1].at) / 60,
        "events": events,
        "rss_cold_kb": rss[0].rss_kb,
        "rss_start_kb": rss[1].rss_kb,
        "rss_end_kb": rss[-1].rss_kb,
        "rss_series_kb": [x.rss_kb for x in rss],
    }


def report_latency(run: Run, result: LatencyResult, rotated: list[str] | None = None) -> None:
    """Emit and say a latency result; ``rotated``: Dovecot index logs rotated meanwhile."""
    run.emit({**result.record(), "index_logs_rotated": rotated or []})
    reaction = f"; first reaction {result.reaction.text()}" if result.reactions else ""
    note = f"; Dovecot rotated {', '.join(rotated)}" if rotated else ""
    run.say(f"{result.tool} {result.mode} {result.kind}: {result.spread.text()}{reaction}{note}")


def phase_offlineimap(run: Run) -> None:
    a, view, server = run.args, run.view, run.server
    assert view is not None and server is not None
    where = run.dir / "offlineimap"
    shutil.rmtree(where, ignore_errors=True)
    peer = offlineimap_peer.OfflineImap(run.lab, where, server, a.autorefresh_minutes, ["INBOX"])
    tree = LocalTree(peer.maildir, run.rng)
    run.say("offlineimap: first sync")
    peer.start()
    try:
        took = peer.wait_synced(view, tree, 1800)
        run.say(f"offlineimap: first sync took {took:.0f} s")
        time.sleep(5)
        scene = Scene(view, tree, run.tag)
        report_latency(run, offlineimap_peer.idle_latency(peer, scene, a.n, run.rng, run.say))
        for result in offlineimap_peer.timer_latency(peer, scene, a.peer_n, run.rng, run.say):
            report_latency(run, result)
    finally:
        code, took = peer.terminate()
        run.emit({**lifecycle.Stopped("idle", code, took).record(), "tool": "offlineimap"})


def phase_idle(run: Run) -> None:
    modes = {
        "notify": ("NOTIFY (defaults)", {}),
        "idle": ("IDLE on INBOX + poll 2m (defaults, notify = false)", {"notify": False}),
    }
    for name in run.args.idle_modes.split(","):
        mode, keys = modes[name]
        run.say(f"idle window, {mode}: {run.args.idle_window:g} s")
        d = run.settled_daemon(keys, verbose=False)
        d.settle(quiet=5.0)
        result = idle_window(d, mode, run.args.idle_window, say=run.say)
        run.emit(result.record())
        w = result.window
        run.say(
            f"  CPU {w.cpu_percent:.3f} % of a core, {w.wakeups_per_minute:.0f} wake-ups/min,"
            f" RSS {w.rss_start_kb} → {w.rss_end_kb} kB, {result.syncs} syncs"
        )
        d.terminate()


def phase_stop(run: Run) -> None:
    a = run.args
    for i in range(a.stop_reps):
        stopped = lifecycle.stop_idle(lambda: run.daemon({}, verbose=False))
        run.emit(stopped.record())
        run.say(f"SIGTERM idle #{i + 1}: exit {stopped.code} after {stopped.seconds:.3f} s")
    for i in range(a.stop_reps):
        where = run.dir / f"first-sync-{i}"
        shutil.rmtree(where, ignore_errors=True)

        def start(where: Path = where) -> DaemonProcess:
            return run.daemon({}, verbose=False, where=where)

        stopped = lifecycle.stop_mid_sync(
            start, LocalTree(where / "Mail", run.rng), a.messages // 4
        )
        run.emit(stopped.record())
        run.say(
            f"SIGTERM mid first sync #{i + 1}: exit {stopped.code} after "
            f"{stopped.seconds:.3f} s ({stopped.note})"
        )
        shutil.rmtree(where, ignore_errors=True)


def phase_recover(run: Run) -> None:
    server = run.server
    assert server is not None
    relay = Relay(server.port)
    slept = run.dir / "slept"
    slept.write_text("0\n")
    d = run.settled_daemon({}, port=relay.port, env={"MAILTIDE_TEST_SLEPT_FILE": str(slept)})
    try:
        recover_after_faults(run, d, relay)
        recover_after_resumes(run, d, relay, slept)
    finally:
        d.terminate()
        relay.close()


def recover_after_faults(run: Run, d: DaemonProcess, relay: Relay) -> None:
    """Every connection cut (or reset), then at once a change on each side: until each
    arrived.  Faults come a minute apart, with the push back up: the daemon starts a push
    source's backoff over once it ran well for a minute, and a lone fault is what is measured."""
    view, tree = run.view, LocalTree(run.home / "Mail", run.rng)
    assert view is not None
    faults: dict[str, Callable[[], int]] = {"cut": relay.cut, "reset": relay.reset}
    last = 0.0  # no fault yet: the push is up once it was ever up
    for fault, act in faults.items():
        for i in range(run.args.recover_reps):
            ready_for_fault(d, last)
            server = ServerAppend(view, tree, "INBOX", *message(run, f"{fault}s", i))
            local = LocalNew(view, tree, "INBOX", *message(run, f"{fault}l", i))
            done = lifecycle.recover(d, [lifecycle.AfterFault(server, act), local], 120)
            last = done[0].sample.fired_at
            for what, result in zip(WHATS, done, strict=True):
                run.emit(result.record(fault, what))
                run.say(f"{fault} #{i + 1}, then {what}: {result.sample.seconds} s")


def ready_for_fault(d: DaemonProcess, last: float, apart: float = 61) -> None:
    """The server push up again since the fault at wall time ``last``, and ``apart`` seconds
    since it."""
    d.wait_until(lambda: d.logged_since("event=imap.push", last), 600, "pushing again")
    time.sleep(max(0.0, last + apart - time.time()))
    d.settle(quiet=1.0)


def recover_after_resumes(run: Run, d: DaemonProcess, relay: Relay, slept: Path) -> None:
    """A simulated suspend: mail that came meanwhile, then the next mail pushed."""
    view, tree = run.view, LocalTree(run.home / "Mail", run.rng)
    assert view is not None
    last = 0.0  # no fault yet: the push is up once it was ever up
    for i in range(run.args.resume_reps):
        ready_for_fault(d, last)
        append = ServerAppend(view, tree, "INBOX", *message(run, "resume", i))
        resume = lifecycle.AfterResume(append, relay, slept, 3600.0 * (i + 1))
        [done] = lifecycle.recover(d, [resume], 120)
        last = done.sample.fired_at
        run.emit(done.record("resume", "mail that came while asleep → new/"))
        after = ServerAppend(view, tree, "INBOX", *message(run, "resumed", i))
        [push] = lifecycle.recover(d, [after], 400)
        run.emit(push.record("resume", "then the next server APPEND → new/"))
        run.say(
            f"resume #{i + 1}: caught up in {done.sample.seconds} s, "
            f"next push in {push.sample.seconds} s"
        )


def message(run: Run, label: str, i: int) -> tuple[bytes, str]:
    """A new message for the i-th event ``label`` of this run, and its Message-ID."""
    name = f"{run.tag}-{label}"
    return srv.make_message(i, name), srv.message_id(i, name)


# --- the run -----------------------------------------------------------------------------------


def meta(run: Run) -> dict[str, object]:
    def out(*cmd: str) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    a = run.args
    return {
        "kind": "meta",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(
            shlex.quote(x) for x in [".venv/bin/python", "bench/daemon.py", *sys.argv[1:]]
        ),
        "nproc": len(os.sched_getaffinity(0)),
        "loadavg": os.getloadavg(),  # the machine is shared: how busy it was at the start
        "commit": out("git", "-C", str(REPO), "describe", "--always", "--dirty"),
        "dovecot": "Dovecot " + out("dovecot", "--version"),
        "offlineimap": "OfflineIMAP " + out("offlineimap", "--version"),
        "messages": a.messages,
        "folders": a.folders,
        "seed": a.seed,
        "n": a.n,
        "peer_n": a.peer_n,
        "poll": a.poll,
        "phases": a.phases,
        "modes": a.modes,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.summary is not None:
        lines = args.summary.read_text().splitlines()
        print(markdown([json.loads(line) for line in lines if line.strip()]))
        return 0
    run = Run(args)
    if run.dir.resolve().is_relative_to(REPO):
        run.say("--bench-dir must be outside the repository")
        return 2
    if not (run.lab / "dovecot-up.sh").exists():
        run.say(f"the lab is not at {run.lab} (use --lab DIR)")
        return 2
    if not args.mailtide.exists():
        run.say(f"{args.mailtide} not found: run 'make venv' (or use --mailtide PATH)")
        return 2
    with open(f"{run.dir}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            run.say(f"another bench/daemon.py is using {run.dir}: wait for it or use --bench-dir")
            return 2
        return run_all(run)


def run_all(run: Run) -> int:
    args = run.args
    shutil.rmtree(run.dir, ignore_errors=True)
    run.dir.mkdir(parents=True)
    run.dir.chmod(0o755)  # Dovecot's mail user walks into it
    run.out.parent.mkdir(parents=True, exist_ok=True)
    run.say(f"results -> {run.out}")
    try:
        run.server = server_up(run.lab, run.dir / "server")
        run.emit(meta(run))
        took = populate(run.lab, run.server, args.folders, args.messages, args.seed)
        run.say(f"populated {args.messages} messages in {args.folders} folders in {took:.1f} s")
        with ServerView(run.server) as run.view:
            for phase in args.phases.split(","):
                globals()[f"phase_{phase}"](run)
    except KeyboardInterrupt:
        run.say("interrupted")
        return 130
    except (RuntimeError, OSError, imaplib.IMAP4.error) as exc:  # LabError is a RuntimeError
        run.say(f"stopped: {exc}")
        return 1
    finally:
        run.emit(
            {
                "kind": "end",
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "loadavg": os.getloadavg(),
            }
        )
        for d in run.daemons:
            d.kill()
        server_down(run.lab, run.dir / "server")
        md = run.out.with_suffix(".md")
        md.write_text(markdown(run.records))
        print(md.read_text())
        run.say(f"raw: {run.out}; tables: {md}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=100, help="events per kind (default 100)")
    p.add_argument(
        "--peer-n",
        type=int,
        default=20,
        help="OfflineIMAP rounds of its timer-bound kinds (default 20)",
    )
    p.add_argument("--messages", type=int, default=10000, help="corpus size (default 10000)")
    p.add_argument("--folders", type=int, default=20, help="corpus folders (default 20)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--gap",
        type=float,
        default=1.5,
        help="seconds the daemon must have been quiet before the next event (default 1.5: "
        "Dovecot reports the daemon's own changes 0.5 s late, which would sync early)",
    )
    p.add_argument(
        "--modes",
        default=",".join(LATENCY_MODES),
        help=f"the latency daemons to run, any of {','.join(LATENCY_MODES)} (default all)",
    )
    p.add_argument(
        "--debounce0-n", type=int, help="events per kind with debounce = 0 (default n/4, >= 10)"
    )
    p.add_argument("--quiet-n", type=int, default=4, help="changes after a quiet spell (default 4)")
    p.add_argument("--quiet-gap", type=float, default=90, help="the quiet spell (default 90 s)")
    p.add_argument("--poll", type=float, default=10, help="poll in the IDLE mode (default 10 s)")
    p.add_argument(
        "--autorefresh-minutes",
        type=float,
        default=0.5,
        help="OfflineIMAP's autorefresh (default 0.5: its own unit is minutes)",
    )
    p.add_argument("--idle-window", type=float, default=600, help="seconds (default 600)")
    p.add_argument("--idle-modes", default="notify,idle", help="notify, idle or both")
    p.add_argument("--stop-reps", type=int, default=5)
    p.add_argument("--recover-reps", type=int, default=5, help="cuts and resets (default 5)")
    p.add_argument("--resume-reps", type=int, default=3)
    p.add_argument("--phases", default=",".join(PHASES), help=f"any of {','.join(PHASES)}")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a check of the script: -n 5, --peer-n 2, --messages 1000, --idle-window 60, 2 reps",
    )
    p.add_argument("--bench-dir", type=Path, default=Path("/tmp/mailtide-daemon-bench"))
    p.add_argument("--lab", type=Path, default=REPO.parent / "shared" / "lab")
    p.add_argument("--mailtide", type=Path, default=REPO / ".venv" / "bin" / "mailtide")
    p.add_argument(
        "--out", type=Path, help="results file (default bench/results/daemon-STAMP.jsonl)"
    )
    p.add_argument("--summary", type=Path, help="print the tables of a results file and exit")
    if p.parse_args(argv).quick:  # smaller defaults; options given still win
        p.set_defaults(n=5, peer_n=2, messages=1000, idle_window=60, stop_reps=2, quiet_n=1)
        p.set_defaults(recover_reps=2, resume_reps=2)
    args = p.parse_args(argv)
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        p.error(f"unknown phase {', '.join(sorted(unknown))} (known: {', '.join(PHASES)})")
    unknown = set(args.modes.split(",")) - set(LATENCY_MODES)
    if unknown:
        p.error(f"unknown mode {', '.join(sorted(unknown))} (known: {', '.join(LATENCY_MODES)})")
    return args


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
