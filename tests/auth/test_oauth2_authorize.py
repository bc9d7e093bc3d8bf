"""``mailtide oauth2 authorize ACCOUNT`` end to end: the test plays the browser (opens the
printed URL at the test provider, whose consent redirects to mailtide's loopback), then the
refresh token stored logs in to the OAuth2 Dovecot; and each failing step is named."""

from __future__ import annotations

import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from dovecot import ImapAccount
from oauth2_provider import CLIENT_ID

from .conftest import OAuth2Servers
from .oauth2_helpers import write_config


def mailtide(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mailtide", "-c", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def authorize(config: Path) -> subprocess.CompletedProcess[str]:
    """Run the command and open the URL it prints, as a browser would (following the
    provider's redirect to the loopback)."""
    command = [sys.executable, "-m", "mailtide", "-c", str(config), "oauth2", "authorize", "work"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    if first.startswith("Open this URL"):
        url = process.stdout.readline().strip()
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"mailtide" in page.read()
    out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(command, process.returncode, first + out, err)


def test_authorize_stores_a_refresh_token_that_logs_in(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    provider = oauth2.provider
    config = write_config(tmp_path, provider, oauth2_account, CLIENT_ID)
    done = authorize(config)
    assert done.returncode == 0, done.stderr
    stored = tmp_path / "refresh-token"
    where = f"oauth2_refresh_token_file {stored}"
    assert done.stdout.endswith(f"stored the refresh token of {oauth2_account.user} in {where}\n")
    token = stored.read_text().strip()
    assert provider.refresh_tokens[token] == oauth2_account.user
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert token not in done.stdout + done.stderr
    grants = [r["grant_type"] for r in provider.token_requests]
    assert grants == ["authorization_code"]
    # The stored token is what the next sync logs in with.
    sync = mailtide(config, "sync")
    assert sync.returncode == 0, sync.stderr
    assert [r["grant_type"] for r in provider.token_requests] == [*grants, "refresh_token"]


def test_a_refused_client_names_the_step_and_the_providers_words(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    config = write_config(tmp_path, oauth2.provider, oauth2_account, "unknown-client")
    done = authorize(config)
    assert done.returncode == 1
    assert done.stderr == "mailtide: authorization: the provider said invalid_request\n"
    assert not (tmp_path / "refresh-token").exists()


def test_a_place_that_cannot_be_written_is_refused_before_the_browser(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    config = write_config(tmp_path, oauth2.provider, oauth2_account, CLIENT_ID)
    text = config.read_text().replace(
        'oauth2_refresh_token_file = "refresh-token"', 'oauth2_refresh_token_credential = "rt"'
    )
    config.write_text(text)
    done = authorize(config)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "mailtide: the refresh token cannot be written to oauth2_refresh_token_credential:"
        " set oauth2_refresh_token_file or oauth2_refresh_token_keyring = true\n"
    )


def test_the_keyring_holds_the_token_and_its_rotated_successor(
    oauth2: OAuth2Servers,
    oauth2_account: ImapAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real keyring backend in a file of the test's own (keyrings.alt), as in
    tests/password_sources.py, for this process and the mailtide processes it starts."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "keyring-data"))
    from keyrings.alt.file import PlaintextKeyring

    provider = oauth2.provider
    config = write_config(tmp_path, provider, oauth2_account, CLIENT_ID)
    config.write_text(
        config.read_text().replace(
            'oauth2_refresh_token_file = "refresh-token"', "oauth2_refresh_token_keyring = true"
        )
    )
    done = authorize(config)
    assert done.returncode == 0, done.stderr
    item = f"oauth2-refresh-token:{oauth2_account.user}@{oauth2_account.host}"
    first = PlaintextKeyring().get_password("mailtide", item)
    assert first is not None and provider.refresh_tokens[first] == oauth2_account.user
    provider.rotate = True
    sync = mailtide(config, "sync")
    assert sync.returncode == 0, sync.stderr
    second = PlaintextKeyring().get_password("mailtide", item)
    assert second not in (None, first) and second in provider.refresh_tokens
