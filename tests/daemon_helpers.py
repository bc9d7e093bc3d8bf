"""The daemon as a process under test: start it, wait for what it does, talk to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import maildir_helpers as loc
from engine_helpers import Setup


def private_env(config: Path) -> dict[str, str]:
    """The environment of a daemon and its clients: a runtime dir of this test's own, so that
    the control sockets of other tests' daemons are never seen."""
    run = config.parent / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "XDG_RUNTIME_DIR": str(run)}


def cli(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailtide", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=private_env(config),
    )


class Daemon:
    def __init__(self, config: Path, env: dict[str, str] | None = None, *args: str) -> None:
        self.config = config
        self.log = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailtide", "daemon", "-c", str(config), "-v", *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**private_env(config), **(env or {})},
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        start = time.monotonic()
        code = self.proc.wait(timeout)
        return code, time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def eventually(check: Callable[[], bool], timeout: float, what: str, daemon: Daemon) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if daemon.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s\n{daemon.output[-4000:]}")


def local_ids(s: Setup, folder: str = "INBOX") -> set[str]:
    try:
        return set(loc.by_message_id(s.root, s.layout, folder))
    except FileNotFoundError:
        return set()


def with_account_keys(config: Path, **keys: object) -> Path:
    """Add ``keys`` (TOML values written as JSON, which TOML reads alike for these) to the
    config's ``[account.test]`` table."""
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
    config.write_text(config.read_text().replace("[account.test]\n", "[account.test]\n" + lines, 1))
    return config


def settled(daemon: Daemon, quiet: float = 1.5, timeout: float = 20) -> None:
    """Wait until the daemon has finished no sync for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    count, since = daemon.output.count("event=account.done"), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"still syncing after {timeout} s\n{daemon.output[-3000:]}")
        time.sleep(0.1)
        now = daemon.output.count("event=account.done")
        if now != count:
            count, since = now, time.monotonic()
