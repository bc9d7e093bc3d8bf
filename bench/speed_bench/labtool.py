"""The lab's ``labtool.py`` (counts, digest, mutate, local-flags, check) run against one server,
and the lab's own IMAP helpers for what it lacks (``deletions``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemon_bench.lab import LabError, Server


class LabTool:
    def __init__(self, lab: Path, server: Server) -> None:
        self.lab = lab
        self.server = server

    def run(self, *args: str, check: bool = True) -> tuple[int, str]:
        """The exit status and the last line of output of ``labtool.py ARGS``."""
        done = subprocess.run(
            [sys.executable, str(self.lab / "labtool.py"), *args, *self.login()],
            capture_output=True,
            text=True,
        )
        last = (done.stdout.strip().splitlines() or [done.stderr.strip()[-300:]])[-1]
        if check and done.returncode != 0:
            raise LabError(f"labtool.py {args[0]} failed: {last}")
        return done.returncode, last

    def login(self) -> list[str]:
        s = self.server
        return ["--port", str(s.port), "--user", s.user, "--password", s.password]

    def populate(self, folders: int, messages: int, big: int, seed: int = 1) -> float:
        """Fill the server with the lab corpus (``big``: that many more messages of about
        20 MB); the seconds it took."""
        started = time.monotonic()
        argv = [sys.executable, str(self.lab / "populate.py"), *self.login()]
        argv += ["--folders", str(folders), "--messages", str(messages), "--seed", str(seed)]
        done = subprocess.run(argv + (["--big", str(big)] if big else []), capture_output=True)
        if done.returncode != 0:
            raise LabError(f"populate.py failed: {done.stderr.decode(errors='replace')[-500:]}")
        return time.monotonic() - started

    def digest(self) -> str:
        import hashlib

        return hashlib.sha256(self.run("digest")[1].encode()).hexdigest()[:16]

    def mutate(self, flags: int, new: int, seed: int) -> None:
        self.run("mutate", "--flags", str(flags), "--new", str(new), "--seed", str(seed))

    def local_flags(self, maildir: Path, layout: str, n: int, seed: int, out: Path) -> None:
        self.run(
            "local-flags", "--maildir", str(maildir), "--layout", layout,
            "--n", str(n), "--seed", str(seed), "--out", str(out),
        )  # fmt: skip

    def check(self, maildir: Path, layout: str, expect: Path | None) -> dict[str, Any]:
        """``labtool.py check``: counts per folder and S/F/R/D/T per Message-ID against the
        server (and the expected flags on the server); ``ok`` false on any difference."""
        args = ["check", "--maildir", str(maildir), "--layout", layout]
        args += ["--expect", str(expect)] if expect else []
        _, last = self.run(*args, check=False)
        try:
            result: dict[str, Any] = json.loads(last)
        except ValueError:
            result = {"ok": False, "problems": [f"labtool.py check: {last}"]}
        return result
