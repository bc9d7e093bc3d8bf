"""Each password source as a test writes it: the config lines that choose it and the files or
environment it reads, for an account of the test Dovecot (``tests/auth``)."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from dovecot import ImapAccount

# Writes the source so that it gives ``password``; returns the config lines choosing it.
Writer = Callable[[Path, ImapAccount, str, pytest.MonkeyPatch], str]


def random_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def literal(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    return f"password = {_toml(password)}\n"


def command(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    path = _private(tmp / "secrets" / "for-command", password + "\n")
    return f'password_command = ["sh", "-c", "head -n 1 \\"$0\\"", {_toml(str(path))}]\n'


def file(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    path = _private(tmp / "secrets" / "password", password + "\n")
    return f"password_file = {_toml(str(path))}\n"


def credential(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    directory = tmp / "credentials"
    _private(directory / "mail-test", password + "\n")
    env.setenv("CREDENTIALS_DIRECTORY", str(directory))
    return 'password_credential = "mail-test"\n'


def netrc(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    # Another user on the same host comes first, and a default: each must find its own.
    path = _private(
        tmp / "secrets" / "netrc",
        f"machine {account.host} login someone-else password Not-{password}\n"
        f"machine {account.host}\n  login {account.user}\n  password {password}\n"
        "default login anyone password Default-pw\n",
    )
    return f"netrc = {_toml(str(path))}\n"


def keyring(tmp: Path, account: ImapAccount, password: str, env: pytest.MonkeyPatch) -> str:
    """A real keyring backend in a file of the test's own (keyrings.alt), for this process
    and the mailtide processes it starts."""
    env.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    env.setenv("XDG_DATA_HOME", str(tmp / "keyring-data"))
    from keyrings.alt.file import PlaintextKeyring

    PlaintextKeyring().set_password("mailtide", f"{account.user}@{account.host}", password)
    return "keyring = true\n"


SOURCES: dict[str, Writer] = {
    "password": literal,
    "password_command": command,
    "password_file": file,
    "password_credential": credential,
    "netrc": netrc,
    "keyring": keyring,
}

# Where each source reads from, as its refused login names it (a regular expression).
ORIGINS = {
    "password": r"from the config file",
    "password_command": r'printed by password_command "sh"',
    "password_file": r"read from password_file \S+/password",
    "password_credential": r"of systemd credential mail-test",
    "netrc": r"from netrc file \S+/netrc",
    "keyring": re.escape('from the system keyring (service "mailtide", ') + r"\S+\)",
}


def use_source(config: Path, lines: str) -> Path:
    """``config`` (from ``engine_helpers.write_config``) with its password line replaced."""
    text = re.sub(r"^password = .*\n", lambda _: lines, config.read_text(), flags=re.M)
    config.write_text(text)
    return config
