"""``mailtide password set ACCOUNT``: prompts on the terminal without echo (a real pty), and
stores the password where ``keyring = true`` reads it (a real, file-backed keyring)."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

from password_sources import random_password

CONFIG = """\
[general]
state_dir = "state"

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
{source}
"""


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real keyring backend in a file of the test's own, for this process and its children."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


def stored(user_at_host: str) -> str | None:
    from keyrings.alt.file import PlaintextKeyring

    return PlaintextKeyring().get_password("mailtide", user_at_host)  # type: ignore[no-any-return]


class Terminal:
    """``mailtide ARGS`` on a pseudo-terminal of its own, as a user at a terminal runs it."""

    def __init__(self, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes mailtide
            os.execv(sys.executable, [sys.executable, "-m", "mailtide", *args])
        self.seen = b""

    def expect(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"no {text!r} within {timeout} s: {self.seen!r}")

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), self.seen.decode(errors="replace")

    def _read(self, timeout: float) -> bool:
        if timeout <= 0 or not select.select([self.fd], [], [], timeout)[0]:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += chunk
        return bool(chunk)


def config_file(tmp_path: Path, source: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(source=source))
    return str(path)


def test_password_set_prompts_without_echo_and_stores_it(
    tmp_path: Path, file_keyring: Path
) -> None:
    secret = random_password()
    term = Terminal("password", "set", "work", "-c", config_file(tmp_path, "keyring = true"))
    term.expect("Password for me@example.org@imap.example.org: ")
    term.type(secret)
    term.expect("The same again: ")
    term.type(secret)
    code, seen = term.finish()
    assert code == 0, seen
    assert secret not in seen  # not echoed, not printed
    assert (
        "stored the password of me@example.org@imap.example.org in the system keyring: service"
        ' "mailtide", username me@example.org@imap.example.org, backend'
        " keyrings.alt.file.PlaintextKeyring (" in seen
    ), seen
    assert stored("me@example.org@imap.example.org") == secret


def test_password_set_stores_nothing_when_the_two_differ(
    tmp_path: Path, file_keyring: Path
) -> None:
    term = Terminal("password", "set", "work", "-c", config_file(tmp_path, "keyring = true"))
    term.expect("Password for ")
    term.type("One-password-1")
    term.expect("The same again: ")
    term.type("Another-password-2")
    code, seen = term.finish()
    assert code == 2, seen
    assert "mailtide: the password was not the same twice; nothing was stored" in seen
    assert stored("me@example.org@imap.example.org") is None


def test_password_set_for_a_repository_not_using_the_keyring_says_so(
    tmp_path: Path, file_keyring: Path
) -> None:
    secret = random_password()
    source = 'password_command = ["pass", "show", "mail"]'
    term = Terminal("password", "set", "work", "-c", config_file(tmp_path, source))
    for prompt in ("Password for ", "The same again: "):
        term.expect(prompt)
        term.type(secret)
    code, seen = term.finish()
    assert code == 0, seen
    assert "note: repository work-remote reads it once it has keyring = true" in seen
    assert stored("me@example.org@imap.example.org") == secret


def test_password_set_for_an_unknown_account(tmp_path: Path, file_keyring: Path) -> None:
    term = Terminal("password", "set", "wrok", "-c", config_file(tmp_path, "keyring = true"))
    code, seen = term.finish()
    assert code == 2, seen
    assert 'mailtide: no account named "wrok"' in seen and '(did you mean "work"?)' in seen
    assert "Traceback" not in seen
