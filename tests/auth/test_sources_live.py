"""Every password source against the real Dovecot: a real ``mailtide sync`` logs in with it,
a wrong password through it fails once with one clear line, and the password never shows
anywhere mailtide writes (logs at -vv and in JSON, stdout and stderr, ``--dry-run``, a
daemon's log, ``mailtide status --json``, the state directory, the Maildir), with a good and
a wrong password, a failing command and a TLS failure, neither as it is nor in base64
(AUTHENTICATE PLAIN carries ``\\0user\\0password`` so)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config
from password_sources import ORIGINS, SOURCES, random_password, use_source

from .leak_helpers import Runs, logins, plain_forms

pytestmark = pytest.mark.parametrize("source", list(SOURCES))


def configured(source: str, s: Setup, tmp: Path, password: str, env: pytest.MonkeyPatch) -> Path:
    """The config of ``s`` whose password comes from ``source``, which gives ``password``."""
    return use_source(write_config(s), SOURCES[source](tmp, s.imap, password, env))


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("mailtide: ")]


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
    runs = Runs(configured(source, s, tmp_path, good, monkeypatch))

    runs.sync(0, "--dry-run", "-vv")
    assert logins(runs.sync(0, "-vv")) >= 1  # the conversation is logged, the login included
    srv.append(account, "INBOX", srv.make_message(3, "INBOX"))  # a mailbox to log in for
    assert '"event": "imap.sent"' in runs.sync_json(0)
    runs.daemon_with_status("test")

    runs.sync_failing_tls(dovecot.imaps_port)
    configured(source, s, tmp_path, wrong, monkeypatch)
    runs.sync(1, "-vv", "--full")
    runs.sync_json(1)
    if source == "password_command":
        # A failing command whose stdout holds the password: neither is shown.
        head = 'head -n 1 \\"$0\\"'
        text = runs.config.read_text()
        runs.config.write_text(text.replace(head, f"echo oops >&2; {head}; exit 3", 1))
        assert errors(runs.sync(1, "-vv")) == [
            'mailtide: account test: password_command "sh" failed with exit 3: oops'
        ]
    runs.assert_nowhere(
        plain_forms(account.user, good, wrong), tmp_path / "state", s.root, tmp_path / "run"
    )
