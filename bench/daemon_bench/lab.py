"""The lab's private Dovecot (``../shared/lab/dovecot-up.sh``) and its corpus (``populate.py``).

The server runs as root under ``DIR`` with the lab's user ``test`` / ``secret``, plain IMAP on
127.0.0.1, like ``bench/run.sh``.  ``Server`` satisfies ``tests/imap_helpers.Account``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Server:
    dir: Path
    port: int
    user: str
    password: str
    host: str = "127.0.0.1"


class LabError(RuntimeError):
    """A lab script failed; the message says which and how to see why."""


def server_up(lab: Path, where: Path) -> Server:
    """A fresh private Dovecot under ``where`` (anything there before is the caller's to
    remove)."""
    done = subprocess.run(
        ["bash", str(lab / "dovecot-up.sh"), str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise LabError(f"dovecot-up.sh failed: {done.stderr.strip()[-500:]}")
    env = dict(
        line.split("=", 1) for line in (where / "env").read_text().splitlines() if "=" in line
    )
    return Server(where, int(env["IMAP_PORT"]), env["IMAP_USER"], env["IMAP_PASS"])


def server_settings(server: Server, settings: list[str]) -> None:
    """Add ``KEY = VALUE`` lines to the lab Dovecot's configuration and make its master read
    it again (SIGHUP): processes started afterwards (each new login's) use them."""
    if not settings:
        return
    conf = server.dir / "dovecot.conf"
    lines = [s.replace("=", " = ", 1) for s in settings]
    conf.write_text(conf.read_text() + "\n# added by the benchmark\n" + "\n".join(lines) + "\n")
    master = int((server.dir / "pid").read_text())
    os.kill(master, signal.SIGHUP)
    time.sleep(1.0)  # the master re-reads its configuration before the next login


def server_down(lab: Path, where: Path) -> None:
    subprocess.run(
        ["bash", str(lab / "dovecot-down.sh"), str(where)], capture_output=True, check=False
    )


def index_log_rotations(server: Server) -> dict[str, float]:
    """When Dovecot last rotated each index log of the lab user (``*.index.log.2``, by the
    name of the folder's directory: ``.`` for INBOX and the list index): a NOTIFY session
    opened before a rotation may keep watching the old file (see bench/README.md)."""
    maildir = server.dir / "home" / server.user / "Maildir"
    found = {}
    for log in maildir.glob("**/dovecot*.index.log.2"):
        where = log.parent.relative_to(maildir).as_posix()
        found[f"{where}/{log.name}"] = log.stat().st_mtime
    return found


def populate(lab: Path, server: Server, folders: int, messages: int, seed: int = 1) -> float:
    """Fill the server with the lab corpus; the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            str(lab / "populate.py"),
            "--port",
            str(server.port),
            "--user",
            server.user,
            "--password",
            server.password,
            "--folders",
            str(folders),
            "--messages",
            str(messages),
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise LabError(f"populate.py failed: {done.stderr.strip()[-500:]}")
    return time.monotonic() - started
