"""No OAuth2 secret leaks: with ``oauth2_token_command`` (through XOAUTH2) and with the
built-in flow (a refresh token from a file, through OAUTHBEARER), a sync at -vv and with JSON
logs, with a good and a refused token, a TLS failure and (for the command) a failing
command, a ``--dry-run`` and a daemon with ``status --json``
write neither the access tokens, nor the refresh tokens, nor the client secret, as they are,
in base64 or inside the SASL responses, anywhere (leak_helpers.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from oauth2_provider import CLIENT_ID, CLIENT_SECRET

from .conftest import OAuth2Servers
from .leak_helpers import Runs, encoded, logins, token_forms
from .oauth2_helpers import write_config


def private(path: Path, text: str) -> None:
    path.write_text(text + "\n")
    path.chmod(0o600)


@pytest.mark.parametrize("source", ["oauth2_token_command", "oauth2_refresh_token_file"])
def test_no_oauth2_secret_leaks_from_any_run(
    source: str, oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    provider, user = oauth2.provider, oauth2_account.user
    config = write_config(tmp_path, provider, oauth2_account, CLIENT_ID)
    holder = tmp_path / "refresh-token"
    good, refused = provider.refresh_token_for(user), "rt-" + secrets.token_urlsafe(24)
    if source == "oauth2_token_command":
        # The command prints an access token the provider gave; the refused one it never gave.
        good, refused = provider.access_token_for(user), "at-" + secrets.token_urlsafe(24)
        holder = tmp_path / "access-token"
        command = f'oauth2_token_command = ["head", "-n", "1", "{holder}"]\nauth = "xoauth2"\n'
        text = config.read_text().split("oauth2_client_id")[0]
        config.write_text(text + command)
    private(holder, good)
    srv.append(oauth2_account, "INBOX", srv.make_message(1, "INBOX"))
    loc.deliver(tmp_path / "Mail", "fs", "INBOX", srv.make_message(2, "INBOX"))
    runs = Runs(config)

    runs.sync(0, "--dry-run", "-vv")
    assert logins(runs.sync(0, "-vv")) >= 1  # the conversation is logged, the login included
    assert '"event": "imap.sent"' in runs.sync_json(0)
    runs.daemon_with_status("work")

    runs.sync_failing_tls(oauth2.dovecot.imaps_port)
    if source == "oauth2_token_command":
        # A failing command that printed the token: neither is shown but its stderr.
        text = config.read_text()
        failing = f'["sh", "-c", "head -n 1 \\"$0\\"; echo oops >&2; exit 3", "{holder}"]'
        config.write_text(text.replace(f'["head", "-n", "1", "{holder}"]', failing))
        assert "failed with exit 3: oops" in runs.sync(1, "-vv")
        config.write_text(text)

    private(holder, refused)
    assert " refused the " in runs.sync(1, "-vv", "--full")  # the server, or the provider
    runs.sync_json(1)

    access = [t for t, (owner, _) in provider.access_tokens.items() if owner == user]
    forms = token_forms(user, oauth2_account.host, oauth2_account.port, *access, refused)
    forms += encoded(good, refused, CLIENT_SECRET)
    runs.assert_nowhere(forms, tmp_path / "state", tmp_path / "Mail", tmp_path / "run")
