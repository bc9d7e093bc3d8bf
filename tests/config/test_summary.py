"""``mailtide check-config`` shows every key each account resolves to (defaults, [general]'s
daemon defaults, the TLS, password and OAuth2 keys), and never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide import cli
from mailtide.config import daemon_keys, load, oauth2_keys, password_keys

PASSWORD = "Pw-hunter2-9x"
CLIENT_SECRET = "cs-7f3e-secret"
IN_COMMAND = "argument-secret-42"

CONFIG = f"""\
[general]
state_dir = "state"
autorefresh = "5m"

[account.work]
local = "work-local"
remote = "work-remote"
retries = 5
folders.exclude = ["Trash"]
folders.rename = [{{ from = "^Sent$", to = "root/Sent" }}]
postsync_hook = ["notmuch", "new"]

[account.cloud]
local = "cloud-local"
remote = "cloud-remote"
idle_folders = []

[repository.work-local]
type = "maildir"
path = "work"

[repository.cloud-local]
type = "maildir"
path = "cloud"
layout = "maildir++"

[repository.work-remote]
type = "imap"
host = "imap.example.org"
user = "me"
password = "{PASSWORD}"
tls_min_version = "1.3"
ca_file = "ca.pem"
client_cert = "client.pem"
client_key = "client.key"
cert_fingerprint = "sha256:{":".join(["AB"] * 32)}"
folders.exclude = ["Spam*"]

[repository.cloud-remote]
type = "imap"
host = "outlook.office365.com"
user = "me@example.org"
auth = "xoauth2"
oauth2_provider = "microsoft"
oauth2_client_id = "the-client-id"
oauth2_client_secret = "{CLIENT_SECRET}"
oauth2_refresh_token_command = ["sh", "-c", "echo {IN_COMMAND}"]
"""


@pytest.fixture
def shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    file = tmp_path / "config.toml"
    file.write_text(CONFIG)
    file.chmod(0o600)
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    assert cli.main(["check-config", "-c", str(file)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def block(lines: list[str], account: str) -> list[str]:
    """The lines of one account (to the next account)."""
    start = lines.index(f"account {account}")
    rest = lines[start + 1 :]
    end = next((i for i, line in enumerate(rest) if line.startswith("account ")), len(rest))
    return rest[:end]


def test_no_secret_is_shown(shown: list[str]) -> None:
    text = "\n".join(shown)
    for secret in (PASSWORD, CLIENT_SECRET, IN_COMMAND, "echo"):
        assert secret not in text, secret
    assert "    password = <redacted>" in shown
    assert "    oauth2_client_secret = <redacted>" in shown
    # the program that gives the refresh token by name only: its arguments may hold a secret
    assert '    oauth2_refresh_token_command = ["sh"]  # 2 argument(s) <redacted>' in shown


def test_every_key_an_account_resolves_to_is_shown(shown: list[str], tmp_path: Path) -> None:
    work = block(shown, "work")
    assert f"  local:  work-local (maildir, fs, {tmp_path}/work)" in work
    for line in (
        # the TLS keys of issue 10, resolved (paths absolute)
        '    tls_min_version = "1.3"',
        f'    ca_file = "{tmp_path}/ca.pem"',
        f'    client_cert = "{tmp_path}/client.pem"',
        f'    client_key = "{tmp_path}/client.key"',
        f'    cert_fingerprint = "sha256:{":".join(["AB"] * 32)}"',
        '    folders.exclude = ["Spam*"]',
        '    timeout = "1m"',
        # the account's own, [general]'s defaults for the daemon, and the built-in defaults
        "  retries = 5",
        '  retry_delay = "2s"',
        '  autorefresh = "5m"',
        '  idle_folders = ["INBOX"]',
        '  postsync_hook = ["notmuch", "new"]',
        '  hook_timeout = "1m"',
        # the account's folder rules in the config's own syntax
        '  folders.exclude = ["Trash"]',
        '  folders.rename = [{ from = "^Sent$", to = "root/Sent" }]',
        "  folders.map_special = false",
    ):
        assert line in work, line
    cloud = block(shown, "cloud")
    for line in (
        # OAuth2, the provider's preset resolved into its URLs and scopes
        '    auth = "xoauth2"',
        '    oauth2_client_id = "the-client-id"',
        '    oauth2_token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token"',
        '    oauth2_scopes = ["https://outlook.office.com/IMAP.AccessAsUser.All",'
        ' "offline_access"]',
        "  retries = 3",
        '  autorefresh = "5m"',
        "  idle_folders = []",
    ):
        assert line in cloud, line
    assert not any("postsync_hook" in line for line in cloud)


def test_every_field_of_the_model_shows_as_a_key_the_config_takes(shown: list[str]) -> None:
    """The summary is made from the model's fields: each set one shows (a field added later
    too), under the name the config file uses for it."""
    takes = {
        0: {*load._GENERAL_KEYS},
        2: {*load._ACCOUNT_KEYS, *daemon_keys.NAMES},
        4: {*load._IMAP_KEYS, *load._MAILDIR_KEYS},
    }
    keys: dict[int, set[str]] = {0: set(), 2: set(), 4: set()}
    for line in shown:
        if " = " in line:
            depth = len(line) - len(line.lstrip())
            keys[depth].add(line.strip().partition(" = ")[0].partition(".")[0])
    for depth, names in keys.items():
        assert names <= takes[depth], names - takes[depth]
    unset = {"presync_hook", "newmail_hook", "trash"}
    assert keys[2] == takes[2] - {"local", "remote"} - unset
    unset = {*password_keys.KEYS, *oauth2_keys.KEYS} - {"password", "auth"}
    unset -= {f"oauth2_{name}" for name in ("client_id", "client_secret", "token_url")}
    unset -= {"oauth2_auth_url", "oauth2_scopes", "oauth2_refresh_token_command"}
    assert keys[4] == takes[4] - unset - {"oauth2_provider"}  # the provider: its URLs


def test_no_python_value_is_shown(shown: list[str]) -> None:
    """Every value reads as TOML: no ``None``, no dataclass repr."""
    for line in (line for line in shown if " = " in line):
        value = line.partition(" = ")[2].partition("#")[0]
        assert value != "None" and "(" not in value, line
