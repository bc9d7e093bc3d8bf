"""Every password source against the real Dovecot: a real ``mailtide sync`` logs in with it,
a wrong password through it fails once with one clear line, and the password never shows
anywhere mailtide writes (logs at -vv and in JSON, stdout and stderr, ``--dry-run``, a
daemon's log, ``mailtide status --json``, the state directory, the Maildir), neither as it is
nor in base64 (AUTHENTICATE PLAIN carries ``\\0user\\0password`` so)."""

from __future__ import annotations

import base64
import re
import signal
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, cli, eventually
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config
from password_sources import ORIGINS, SOURCES, random_password, use_source

pytestmark = pytest.mark.parametrize("source", list(SOURCES))


def configured(
    source: str, s: Setup, tmp: Path, password: str, env: pytest.MonkeyPatch
) -> Path:
    """The config of ``s`` whose password comes from ``source``, which gives ``password``."""
    return use_source(write_config(s), SOURCES[source](tmp, s.imap, password, env))


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("mailtide: ")]


def logins(output: str) -> int:
    sent = [line for line in output.splitlines() if "imap.sent" in line]
    return sum(" LOGIN " in line or " AUTHENTICATE " in line for line in sent)


def test_sync_logs_in_with_the_source_and_a_wrong_password_fails_once(
    source: str,
    dovecot: Dovecot,
    imap_account: ImapAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good, wrong = random_password(), random_password()
    account = dovecot.account(imap_account.user, good)
    s = make_setup(account, tmp_path)
    srv.append(account, "INBOX", srv.make_message(1, "INBOX"))
    config = configured(source, s, tmp_path, good, monkeypatch)
    code, output = run_forked(config, "-vv")
    assert code == 0, output
    assert [m.message_id for m in loc.messages(s.root, s.layout, "INBOX")] == [
        srv.message_id(1, "INBOX")
    ]

    configured(source, s, tmp_path, wrong, monkeypatch)
    code, output = run_forked(config, "-vv", "--full")
    assert code == 1, output
    (line,) = errors(output)
    assert line.startswith(
        f"mailtide: account test: authentication failed for user {account.user} at"
        f" 127.0.0.1:{account.port}: the server refused the password "
    ), line
    assert line.endswith(": Authentication failed."), line
    assert re.search(ORIGINS[source], line), line
    assert logins(output) == 1, output  # once, not retried as a network fault


def forms(user: str, *passwords: str) -> list[str]:
    """Each password as it is, in base64, and as AUTHENTICATE PLAIN's base64."""
    found = []
    for password in passwords:
        found.append(password)
        found.append(base64.b64encode(password.encode()).decode())
        found.append(base64.b64encode(f"\0{user}\0{password}".encode()).decode())
    return found


def written_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_no_password_leaks_from_any_run(
    source: str,
    dovecot: Dovecot,
    imap_account: ImapAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good, wrong = random_password(), random_password()
    account = dovecot.account(imap_account.user, good)
    s = make_setup(account, tmp_path)
    srv.append(account, "INBOX", srv.make_message(1, "INBOX"))
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(2, "INBOX"))
    config = configured(source, s, tmp_path, good, monkeypatch)
    outputs: list[str] = []

    def run(expected: int, *args: str) -> None:
        code, output = run_forked(config, *args)
        outputs.append(output)
        assert code == expected, output

    def run_json(expected: int) -> None:
        done = cli(config, "--log-format", "json", "sync", "-c", str(config), "-vv")
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == expected, done.stderr

    run(0, "--dry-run", "-vv")
    run(0, "-vv")
    assert logins(outputs[-1]) >= 1  # the conversation is logged, the login included
    run_json(0)
    assert '"event": "imap.sent"' in outputs[-1]
    daemon = Daemon(config, None, "-v")  # -vv: the daemon's own -v and this one
    try:
        eventually(lambda: "event=account.done" in daemon.output, 60, "a first sync", daemon)
        status = cli(config, "status", "--json")
        outputs.append(status.stdout + status.stderr)
        assert status.returncode == 0 and '"account": "test"' in status.stdout, status.stderr
        daemon.signal(signal.SIGTERM)
        code, _ = daemon.wait_exit(30)
        assert code == 0, daemon.output
    finally:
        daemon.close()
    outputs.append(daemon.output)

    configured(source, s, tmp_path, wrong, monkeypatch)
    run(1, "-vv", "--full")
    run_json(1)
    if source == "password_command":
        # A failing command whose stdout holds the password: neither is shown.
        head = 'head -n 1 \\"$0\\"'
        config.write_text(config.read_text().replace(head, f"echo oops >&2; {head}; exit 3", 1))
        run(1, "-vv")
        assert errors(outputs[-1]) == [
            'mailtide: account test: password_command "sh" failed with exit 3: oops'
        ], outputs[-1]

    searched = {"output": "\n".join(outputs)}
    for path in written_files(tmp_path / "state", s.root, tmp_path / "run"):
        searched[str(path)] = path.read_bytes().decode("latin-1")
    for form in forms(account.user, good, wrong):
        for where, text in searched.items():
            assert form not in text, f"{form!r} in {where}"
