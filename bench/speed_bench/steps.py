"""The steps: what each one changes before its sync, and what the check after it expects.

Every tool gets the same server-side changes (the same seeds on byte-identical servers); the
local changes pick among the tool's own files, by the same seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from speed_bench.deletions import Deleted, delete_local
from speed_bench.labtool import LabTool
from speed_bench.tools import Tool

LABELS = {
    "initial": "initial sync",
    "nochange": "no-change re-sync",
    "server": "+100 server flag changes, +100 new",
    "local": "100 local flag changes, 20 local deletions",
    "flag1": "1 server flag change",
    "changes": "+100 server flags, +100 new, 100 local flags: one sync",
}
STEPS = tuple(LABELS)


@dataclass(frozen=True, slots=True)
class Expected:
    """What the check after a sync wants beyond equal counts and flags on both sides."""

    flags: Path | None = None  # ``local-flags``' record: these flags must be on the server
    deleted: Deleted = field(default_factory=dict)  # these must be gone from the server


def prepare(step: str, rep: int, tool: Tool, lab: LabTool, deletions: int) -> Expected:
    """Make the changes ``step`` syncs, for ``tool`` (repetition ``rep``, from 1)."""
    d = tool.dir
    if step == "server":
        lab.mutate(flags=100, new=100, seed=100 + rep)
    elif step == "flag1":
        lab.mutate(flags=1, new=0, seed=600 + rep)
    elif step == "local":
        expect = d / f"expect-local-{rep}.json"
        lab.local_flags(tool.maildir, tool.layout, 100, 200 + rep, expect)
        gone = delete_local(lab.lab, tool.maildir, tool.layout, deletions, 500 + rep, expect)
        (d / f"deleted-{rep}.json").write_text(json.dumps(gone, ensure_ascii=False))
        return Expected(expect, gone)
    elif step == "changes":
        return _changes(rep, tool, lab)
    return Expected()


def _changes(rep: int, tool: Tool, lab: LabTool) -> Expected:
    """Both sides change, then one sync: the expectation merged per flag (bench/expect.py)."""
    d, s = tool.dir, lab.server
    helper = [sys.executable, str(Path(__file__).resolve().parent.parent / "expect.py")]
    login = ["--port", str(s.port), "--user", s.user, "--password", s.password]
    before, expect = d / "before.json", d / f"expect-changes-{rep}.json"
    env = {**os.environ, "LAB": str(lab.lab)}
    subprocess.run([*helper, "snapshot", *login, "--out", str(before)], check=True, env=env)
    lab.mutate(flags=100, new=100, seed=300 + rep)
    lab.local_flags(tool.maildir, tool.layout, 100, 400 + rep, expect)
    subprocess.run(
        [*helper, "merge", *login, "--before", str(before), "--expect", str(expect)],
        check=True,
        env=env,
        capture_output=True,
    )
    return Expected(expect)
