"""``type = "gmail"``: an IMAP repository with Gmail's host, TLS, OAuth2 provider and left-out
folders filled in; every other key and mistake as for ``type = "imap"``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailtide.config import ConfigError, ImapRepository, gmail, load_config
from mailtide.config.oauth2 import PROVIDERS, OAuth2

from .remote_helpers import refused, remote_of

BASE = """\
[account.mail]
local = "mail-local"
remote = "gmail"

[repository.mail-local]
type = "maildir"
path = "Mail"

[repository.gmail]
type = "gmail"
user = "me@gmail.com"
"""
BUILT_IN = 'oauth2_client_id = "id-1"\noauth2_refresh_token_file = "rt"\n'


def write(tmp_path: Path, extra: str) -> Path:
    file = tmp_path / "config.toml"
    file.write_text(BASE + extra)
    return file


def load(tmp_path: Path, extra: str) -> ImapRepository:
    return remote_of(write(tmp_path, extra), "mail")


def problems(tmp_path: Path, extra: str) -> list[str]:
    return refused(lambda: load(tmp_path, extra))


def test_the_preset_is_gmails_server_and_googles_oauth2(tmp_path: Path) -> None:
    remote = load(tmp_path, BUILT_IN)
    google = PROVIDERS["google"]
    assert (remote.kind, remote.host, remote.port, remote.tls) == (
        "gmail",
        "imap.gmail.com",
        993,
        "implicit",
    )
    assert remote.oauth2 == OAuth2(
        client_id="id-1",
        token_url=google.token_url,
        auth_url=google.auth_url,
        scopes=google.scopes,
        refresh_token_file=tmp_path / "rt",
    )
    assert remote.left_out == ("\\All", "\\Junk", "\\Trash")


def test_host_port_and_tls_are_settable_for_a_test_server(tmp_path: Path) -> None:
    remote = load(tmp_path, 'host = "127.0.0.1"\nport = 1143\ntls = "none"\npassword = "x"\n')
    assert (remote.kind, remote.host, remote.port, remote.tls) == (
        "gmail",
        "127.0.0.1",
        1143,
        "none",
    )
    assert remote.oauth2 is None and remote.password == "x"  # an app password works too


def test_an_own_token_service_is_not_replaced_by_googles(tmp_path: Path) -> None:
    remote = load(tmp_path, BUILT_IN + 'oauth2_token_url = "http://127.0.0.1:9/token"\n')
    assert remote.oauth2 is not None and remote.oauth2.token_url == "http://127.0.0.1:9/token"
    assert remote.oauth2.auth_url is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            BUILT_IN + 'folder.include = ["*"]\n',
            'config.toml:14: repository.gmail.folder: unknown key (did you mean "folders"?)',
        ),
        (
            BUILT_IN + 'path = "Mail"\n',
            'config.toml:14: repository.gmail.path: not a key for type = "gmail" (it is one for'
            ' "maildir")',
        ),
        (
            BUILT_IN + 'tls = "none"\n',
            'config.toml:14: repository.gmail.tls: "none" is refused for host "imap.gmail.com"',
        ),
        (
            'port = 0\npassword = "x"\n',
            "config.toml:12: repository.gmail.port: must be between 1 and 65535, not 0",
        ),
        ("", "config.toml:9: repository.gmail: needs a password source"),
        (
            BUILT_IN + 'folders.exclude = ["[Gmail]/Important"]\n',
            'config.toml:14: repository.gmail.folders.exclude: pattern "[Gmail]/Important" does'
            " not select the folder of that name: [Gmail] is a set of letters in a glob; write"
            ' "[[]Gmail]/Important"',
        ),
        (
            BUILT_IN + 'folders.include = ["INBOX", "[Google Mail]/Trash"]\n',
            "config.toml:14: repository.gmail.folders.include: pattern",
        ),
    ],
    ids=[
        "unknown-key",
        "maildir-key",
        "tls-none",
        "port",
        "no-credentials",
        "gmail-glob",
        "google-mail-glob",
    ],
)
def test_mistakes_are_named_like_any_imap_repositorys(
    tmp_path: Path, extra: str, expected: str
) -> None:
    found = [p[p.index("config.toml:") :] for p in problems(tmp_path, extra)]
    assert any(p.startswith(expected) for p in found), found


def test_a_misspelt_type_suggests_gmail(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        BASE.replace('type = "gmail"', 'type = "gmial"') + BUILT_IN
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "config.toml"))
    (problem,) = info.value.problems
    assert problem.endswith(
        'config.toml:10: repository.gmail.type: must be "maildir", "imap" or "gmail", not "gmial"'
        ' (did you mean "gmail"?)'
    )


def test_a_user_is_still_required(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BASE.replace('user = "me@gmail.com"\n', "") + BUILT_IN)
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "config.toml"))
    assert 'repository.gmail: missing key "user"' in info.value.problems[0]


def test_check_config_shows_the_gmail_repository(tmp_path: Path) -> None:
    file = write(tmp_path, BUILT_IN)
    result = subprocess.run(
        [sys.executable, "-m", "mailtide", "check-config", "-c", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "remote: gmail (gmail, imap.gmail.com:993, tls implicit, user me@gmail.com)" in (
        result.stdout
    )


def test_only_patterns_naming_one_folder_bring_a_left_out_folder_back() -> None:
    named = gmail.named(("*", "[[]Gmail]/*", "[[]Gmail]/Trash", "Lists/?"))
    assert named.selects("[Gmail]/Trash")
    assert not named.selects("[Gmail]/All Mail") and not named.selects("Lists/a")


def test_the_labels_mode_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert load(tmp_path, BUILT_IN).gmail_labels is False
    on = load(tmp_path, BUILT_IN + 'gmail_labels = true\ngmail_labels_as = "folders"\n')
    assert on.gmail_labels is True and on.gmail_folders and not on.gmail_keywords


def test_labels_as_keywords_is_the_labels_mode_with_all_mail_alone(tmp_path: Path) -> None:
    on = load(tmp_path, BUILT_IN + 'gmail_labels = true\ngmail_labels_as = "keywords"\n')
    assert on.gmail_keywords and not on.gmail_folders


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'gmail_labels = "yes"\n',
            "config.toml:14: repository.gmail.gmail_labels: must be true or false",
        ),
        (
            'gmail_labels_as = "keywords"\n',
            "config.toml:14: repository.gmail.gmail_labels_as: has no effect without"
            " gmail_labels = true; set that too",
        ),
        (
            'gmail_labels_as = "tags"\n',
            "config.toml:14: repository.gmail.gmail_labels_as: must be",
        ),
    ],
    ids=["not-a-bool", "keywords-without-labels", "unknown-choice"],
)
def test_labels_mode_mistakes_are_named(tmp_path: Path, extra: str, expected: str) -> None:
    found = [p[p.index("config.toml:") :] for p in problems(tmp_path, BUILT_IN + extra)]
    assert any(p.startswith(expected) for p in found), found


def test_the_labels_mode_is_a_key_of_gmail_repositories_only(tmp_path: Path) -> None:
    file = write(tmp_path, BUILT_IN + "gmail_labels = true\n")
    file.write_text(file.read_text().replace('type = "gmail"', 'type = "imap"\nhost = "h"'))
    found = refused(lambda: remote_of(file, "mail"))
    assert any('repository.gmail.gmail_labels: not a key for type = "imap"' in p for p in found), (
        found
    )


def test_the_labels_mode_needs_a_maildir_on_the_other_side(tmp_path: Path) -> None:
    file = write(tmp_path, BUILT_IN + "gmail_labels = true\n")
    imap = 'type = "imap"\nhost = "h"\nuser = "u"\npassword = "p"'
    file.write_text(file.read_text().replace('type = "maildir"\npath = "Mail"', imap))
    found = refused(lambda: remote_of(file, "mail"))
    assert any(
        "account.mail.local: gmail_labels of the remote repository needs a Maildir here" in p
        for p in found
    ), found
