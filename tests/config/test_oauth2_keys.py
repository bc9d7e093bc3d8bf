"""The OAuth2 keys of an IMAP repository: one credential source, the built-in flow's needs,
the provider presets, and keys that mean nothing with the source chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ImapRepository
from mailtide.config.oauth2 import PROVIDERS, OAuth2

from .remote_helpers import refused, remote_of

BASE = """\
[account.work]
local = "work-local"
remote = "work-remote"

[repository.work-local]
type = "maildir"
path = "Mail"

[repository.work-remote]
type = "imap"
host = "imap.example.org"
user = "me@example.org"
"""
BUILT_IN = 'oauth2_client_id = "id-1"\noauth2_refresh_token_file = "rt"\n'


def load(tmp_path: Path, extra: str) -> ImapRepository:
    (tmp_path / "config.toml").write_text(BASE + extra)
    return remote_of(tmp_path / "config.toml", "work")


def problems(tmp_path: Path, extra: str) -> list[str]:
    return refused(lambda: load(tmp_path, extra))


def test_a_token_command_is_the_credential_source(tmp_path: Path) -> None:
    remote = load(tmp_path, 'oauth2_token_command = ["oama", "access", "me@example.org"]\n')
    assert remote.oauth2 == OAuth2(token_command=("oama", "access", "me@example.org"))
    assert remote.password is None and remote.password_command is None


def test_a_provider_preset_fills_the_urls_and_scopes(tmp_path: Path) -> None:
    remote = load(tmp_path, 'oauth2_provider = "google"\n' + BUILT_IN)
    google = PROVIDERS["google"]
    assert remote.oauth2 == OAuth2(
        client_id="id-1",
        token_url=google.token_url,
        auth_url=google.auth_url,
        scopes=google.scopes,
        refresh_token_file=tmp_path / "rt",
    )


def test_any_provider_by_url_and_the_secret_is_not_shown(tmp_path: Path) -> None:
    remote = load(
        tmp_path,
        BUILT_IN + 'oauth2_token_url = "https://idp.example.org/token"\n'
        'oauth2_client_secret = "Cl1ent-S3cret"\noauth2_scopes = ["imap"]\n',
    )
    assert remote.oauth2 is not None
    assert remote.oauth2.token_url == "https://idp.example.org/token"
    assert remote.oauth2.scopes == ("imap",)
    assert remote.oauth2.client_secret == "Cl1ent-S3cret"
    assert "Cl1ent-S3cret" not in repr(remote)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'password = "x"\noauth2_token_command = ["oama"]\n',
            'sets 2 credential sources ("password", "oauth2_token_command"): keep exactly one',
        ),
        (
            'oauth2_token_command = ["oama"]\n' + BUILT_IN,
            'sets 2 credential sources ("oauth2_token_command", "oauth2_client_id"): keep'
            " exactly one",
        ),
        (BUILT_IN, 'needs "oauth2_token_url" or "oauth2_provider" with "oauth2_client_id"'),
        (
            'oauth2_provider = "google"\noauth2_client_id = "id"\n',
            "needs the refresh token's place: one of",
        ),
        (
            'oauth2_provider = "google"\n' + BUILT_IN + "oauth2_refresh_token_command = ['x']\n",
            'sets 2 refresh-token places ("oauth2_refresh_token_file",'
            ' "oauth2_refresh_token_command"): keep exactly one',
        ),
        (
            'password = "x"\noauth2_refresh_token_file = "rt"\n',
            'oauth2_refresh_token_file: needs "oauth2_client_id" (the built-in OAuth2 flow)',
        ),
        (
            'oauth2_token_command = ["oama"]\noauth2_scopes = ["a"]\n',
            'oauth2_scopes: means nothing with "oauth2_token_command"',
        ),
        (
            'oauth2_provider = "yahoo"\n' + BUILT_IN,
            'oauth2_provider: must be "google" or "microsoft", not "yahoo"',
        ),
        (
            'oauth2_token_url = "http://idp.example.org/token"\n' + BUILT_IN,
            "oauth2_token_url: must be an https:// URL (http:// only for 127.0.0.1)",
        ),
        ("", 'needs a password source: one of "password",'),
        ('password = "x"\nauth = "xoauth2"\n', "auth: chooses an OAuth2 mechanism, which a"),
        ('oauth2_token_command = ["oama"]\nauth = "plain"\n', 'auth: must be "auto", "oauth'),
    ],
)
def test_mistakes_are_named(tmp_path: Path, extra: str, expected: str) -> None:
    found = problems(tmp_path, extra)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(("written", "mechanism"), [("auto", None), ("XOAUTH2", "XOAUTH2")])
def test_auth_chooses_the_mechanism(tmp_path: Path, written: str, mechanism: str | None) -> None:
    remote = load(tmp_path, f'oauth2_token_command = ["oama"]\nauth = "{written}"\n')
    assert remote.oauth2 == OAuth2(token_command=("oama",), mechanism=mechanism)


def test_no_source_names_the_oauth2_ones_too(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "")
    assert found.endswith('or an OAuth2 token source ("oauth2_token_command", "oauth2_client_id")')
