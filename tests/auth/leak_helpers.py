"""The runs of the "no secret leaks" tests, and the search of all they wrote: every run's
output (-vv, JSON logs, stderr; a failed login, a failed command, a TLS failure), a daemon's
log and ``status --json``, and the files under the state dir, the Maildir and the runtime
dir."""

from __future__ import annotations

import base64
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

from daemon_helpers import Daemon, cli, eventually
from engine_helpers import run_forked


def logins(output: str) -> int:
    sent = [line for line in output.splitlines() if "imap.sent" in line]
    return sum(" LOGIN " in line or " AUTHENTICATE " in line for line in sent)


def encoded(*texts: str) -> list[str]:
    """Each text as it is and in base64."""
    return [form for t in texts for form in (t, base64.b64encode(t.encode()).decode())]


def plain_forms(user: str, *passwords: str) -> list[str]:
    """Each password as it is, in base64, and as AUTHENTICATE PLAIN's base64."""
    return encoded(*passwords) + encoded(*(f"\0{user}\0{p}" for p in passwords))[1::2]


def token_forms(user: str, host: str, port: int, *tokens: str) -> list[str]:
    """Each access token as it is, in base64, and as XOAUTH2's and OAUTHBEARER's base64."""
    xoauth2 = [f"user={user}\x01auth=Bearer {t}\x01\x01" for t in tokens]
    gs2 = f"n,a={user},\x01host={host}\x01port={port}\x01"
    oauthbearer = [f"{gs2}auth=Bearer {t}\x01\x01" for t in tokens]
    return encoded(*tokens) + encoded(*xoauth2, *oauthbearer)[1::2]


def written_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


@dataclass
class Runs:
    """``mailtide`` runs with ``config``, each checked for its exit status; their output is
    kept for ``assert_nowhere``."""

    config: Path
    outputs: list[str] = field(default_factory=list)

    def sync(self, expected: int, *args: str) -> str:
        code, output = run_forked(self.config, *args)
        self.outputs.append(output)
        assert code == expected, output
        return output

    def sync_json(self, expected: int) -> str:
        done = cli(self.config, "--log-format", "json", "sync", "-c", str(self.config), "-vv")
        self.outputs.append(done.stdout + done.stderr)
        assert done.returncode == expected, done.stderr
        return done.stdout + done.stderr

    def sync_failing_tls(self, tls_port: int) -> None:
        """A sync at -vv and one with JSON logs against the server's implicit-TLS port, whose
        self-signed certificate is not trusted: each fails (exit 1) and says why."""
        text = self.config.read_text()
        failing, n = re.subn(
            r'^port = \d+\ntls = "none"$', f'port = {tls_port}\ntls = "implicit"', text, flags=re.M
        )
        assert n == 1, text
        self.config.write_text(failing)
        try:
            assert "TLS certificate verify failed" in self.sync(1, "-vv")
            self.sync_json(1)
        finally:
            self.config.write_text(text)

    def daemon_with_status(self, account: str) -> None:
        """A daemon at -vv until its first sync is done, ``status --json``, a clean stop."""
        daemon = Daemon(self.config, None, "-v")  # -vv: the daemon's own -v and this one
        try:
            eventually(lambda: "event=account.done" in daemon.output, 60, "a first sync", daemon)
            status = cli(self.config, "status", "--json")
            self.outputs.append(status.stdout + status.stderr)
            assert status.returncode == 0, status.stderr
            assert f'"account": "{account}"' in status.stdout, status.stdout
            daemon.signal(signal.SIGTERM)
            code, _ = daemon.wait_exit(30)
            assert code == 0, daemon.output
        finally:
            daemon.close()
        self.outputs.append(daemon.output)

    def assert_nowhere(self, forms: list[str], *roots: Path) -> None:
        """None of ``forms`` in any output or any file under ``roots``."""
        searched = {"output": "\n".join(self.outputs)}
        for path in written_files(*roots):
            searched[str(path)] = path.read_bytes().decode("latin-1")
        for form in forms:
            for where, text in searched.items():
                assert form not in text, f"{form!r} in {where}"
