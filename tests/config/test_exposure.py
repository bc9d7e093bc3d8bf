"""A password in a config file that group or others can read gives one warning, with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide import cli
from mailtide.config import load_config
from mailtide.ui import log as ui_log

from .test_config_load import GOOD

WITH_PASSWORD = GOOD.replace('password_command = ["pass", "show", "mail/work"]', 'password = "pw"')


def warnings(tmp_path: Path, text: str, mode: int, name: str = "config.toml") -> tuple[str, ...]:
    file = tmp_path / name
    file.write_text(text)
    file.chmod(mode)
    return load_config(str(file)).warnings


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o444])
def test_readable_by_others_warns(tmp_path: Path, mode: int) -> None:
    file = tmp_path / "config.toml"
    assert warnings(tmp_path, WITH_PASSWORD, mode) == (
        f"{file}:17: repository.work-remote.password: the file holds a password and can be read"
        f" by other users (mode {mode:04o}): run chmod 600 {file}, or use password_command"
        " instead",
    )


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o620, 0o602])
def test_private_file_does_not_warn(tmp_path: Path, mode: int) -> None:
    assert warnings(tmp_path, WITH_PASSWORD, mode) == ()


def test_password_command_does_not_warn(tmp_path: Path) -> None:
    assert warnings(tmp_path, GOOD, 0o644) == ()


def test_one_warning_for_several_passwords(tmp_path: Path) -> None:
    text = WITH_PASSWORD + (
        '\n[repository.spare]\ntype = "imap"\nhost = "h"\nuser = "u"\npassword = "pw2"\n'
    )
    (warning,) = warnings(tmp_path, text, 0o644)
    assert "repository.work-remote.password" in warning


def test_the_fix_is_a_command_that_works(tmp_path: Path) -> None:
    (warning,) = warnings(tmp_path, WITH_PASSWORD, 0o644, name="my config.toml")
    assert f"run chmod 600 '{tmp_path}/my config.toml', or use" in warning


WITH_CLIENT_SECRET = GOOD.replace(
    'password_command = ["pass", "show", "mail/work"]',
    'oauth2_client_id = "id-1"\noauth2_client_secret = "cs-4f1e9a"\n'
    'oauth2_token_url = "https://auth.example.org/token"\noauth2_refresh_token_file = "rt"',
)


def test_a_client_secret_readable_by_others_warns(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    assert warnings(tmp_path, WITH_CLIENT_SECRET, 0o644) == (
        f"{file}:18: repository.work-remote.oauth2_client_secret: the file holds an OAuth2"
        f" client secret and can be read by other users (mode 0644): run chmod 600 {file}, or"
        " use oauth2_client_secret_command instead",
    )
    assert warnings(tmp_path, WITH_CLIENT_SECRET, 0o600) == ()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (WITH_PASSWORD.replace('"pw"', '"pw-7c2d81b0"'), "pw-7c2d81b0"),
        (WITH_CLIENT_SECRET.replace("cs-4f1e9a", "cs-93be02d7"), "cs-93be02d7"),
    ],
)
def test_secrets_in_the_config_are_masked_before_anything_connects(
    tmp_path: Path, text: str, secret: str
) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text)
    file.chmod(0o600)
    cli._prepare(load_config(str(file)))
    assert ui_log.redact(f"error: {secret} was refused") == "error: *** was refused"
