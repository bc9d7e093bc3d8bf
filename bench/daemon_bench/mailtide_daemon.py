"""``mailtide daemon`` as a subprocess: its config, its log, when it has settled, its stop.

Each daemon gets a runtime directory of its own (``XDG_RUNTIME_DIR``), so its control
socket never meets another's.  Its log (key=value lines with a UTC timestamp) goes to a
file beside the config and is read incrementally."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from daemon_bench.lab import Server

_STAMP = re.compile(r"timestamp=(\S+)")
DONE = "event=account.done"


def write_config(
    where: Path,
    server: Server,
    remote_keys: dict[str, object] | None = None,
    **account_keys: object,
) -> Path:
    """A config for one account ``bench``: the lab server (plain IMAP, 127.0.0.1) and an fs
    Maildir at ``where/Mail``, state in ``where/state``; ``account_keys`` (TOML values, written
    as JSON, which TOML reads alike for strings, numbers, booleans and lists) go into
    ``[account.bench]``, ``remote_keys`` into the IMAP repository's table."""
    where.mkdir(parents=True, exist_ok=True)
    keys = "".join(f"{k} = {json.dumps(v)}\n" for k, v in account_keys.items())
    remote = "".join(f"{k} = {json.dumps(v)}\n" for k, v in (remote_keys or {}).items())
    config = where / "config.toml"
    config.write_text(
        "# written by bench/daemon.py\n"
        f"[general]\nstate_dir = {json.dumps(str(where / 'state'))}\n\n"
        f'[account.bench]\nlocal = "bench-local"\nremote = "bench-remote"\n{keys}\n'
        '[repository.bench-local]\ntype = "maildir"\n'
        f'path = {json.dumps(str(where / "Mail"))}\nlayout = "fs"\n\n'
        '[repository.bench-remote]\ntype = "imap"\nhost = "127.0.0.1"\n'
        f'port = {server.port}\ntls = "none"\nuser = {json.dumps(server.user)}\n'
        f"password = {json.dumps(server.password)}\n{remote}"
    )
    config.chmod(0o600)
    return config


def log_time(line: str) -> float | None:
    """The wall-clock time of a log line (its ``timestamp=``), or None."""
    m = _STAMP.search(line)
    return datetime.fromisoformat(m.group(1)).timestamp() if m else None


class DaemonProcess:
    def __init__(
        self,
        mailtide: Path,
        config: Path,
        verbose: bool | int = False,
        env: dict[str, str] | None = None,
    ) -> None:
        """``verbose``: True or 1 for ``-v``, 2 for ``-vv`` (the IMAP conversation too)."""
        run = config.parent / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        self.log_path = config.parent / f"daemon-{time.strftime('%H%M%S')}-{os.getpid()}.log"
        self._log = self.log_path.open("wb")
        self.lines: list[str] = []
        self._offset = 0
        self._partial = b""
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(mailtide),
                "daemon",
                "-c",
                str(config),
                *(["-" + "v" * int(verbose)] if verbose else []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "XDG_RUNTIME_DIR": str(run), **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self) -> list[str]:
        """Every log line so far (the new ones read now)."""
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        self.lines += [line.decode(errors="replace") for line in complete]
        return self.lines

    def syncs_done(self) -> int:
        return sum(DONE in line for line in self.read())

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mailtide daemon exited ({self.proc.returncode}) {what}: "
                    + " | ".join(self.read()[-5:])
                )
            time.sleep(0.05)
        raise RuntimeError(
            f"mailtide daemon: not {what} within {timeout} s: " + " | ".join(self.read()[-5:])
        )

    def settle(self, after: float | None = None, quiet: float = 0.5, timeout: float = 120) -> None:
        """Wait until a sync ended at or after wall time ``after`` (if given) and the log has
        not grown for ``quiet`` seconds: the daemon is idle again."""
        seen, since = len(self.read()), time.monotonic()

        def idle() -> bool:
            nonlocal seen, since
            lines = self.read()
            if len(lines) != seen:
                seen, since = len(lines), time.monotonic()
                return False
            if after is not None and not any(
                DONE in line and (log_time(line) or 0) >= after for line in lines[-200:]
            ):
                return False
            return time.monotonic() - since >= quiet

        self.wait_until(idle, timeout, "idle")

    def logged_since(self, text: str, wall: float) -> bool:
        """Whether a line holding ``text`` was logged at or after wall time ``wall``."""
        return any(text in line and (log_time(line) or 0) >= wall for line in self.read())

    def first_log_after(self, wall: float) -> float | None:
        """The time of the first log line at or after ``wall`` (the daemon began to act)."""
        for line in self.read():
            t = log_time(line)
            if t is not None and t >= wall:
                return t
        return None

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; the exit status and the seconds until the process was gone (-9: it was
        still there after ``timeout`` and was killed)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9, time.monotonic() - started
        took = time.monotonic() - started
        self._log.close()
        return code, took

    def kill(self) -> None:
        """SIGKILL unless it has exited (safe to call again)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
