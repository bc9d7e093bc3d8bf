"""resolve_password: literal passwords, password commands and their failures."""

from __future__ import annotations

import pytest

from mailtide.auth.command import PasswordCommand
from mailtide.auth.password import PasswordError, resolve_password
from mailtide.config import ImapRepository
from mailtide.stores.base import StoreError
from mailtide.ui import log as ui_log


def repo(password: str | None = None, command: tuple[str, ...] | None = None) -> ImapRepository:
    return ImapRepository(
        name="r", host="127.0.0.1", user="me", password=password, password_command=command
    )


async def test_literal_password() -> None:
    assert await resolve_password(repo(password="pa ss")) == "pa ss"


async def test_command_first_line_without_newline() -> None:
    command = ("sh", "-c", "printf 's3cret\\r\\nsecond line\\n'")
    assert await resolve_password(repo(command=command)) == "s3cret"
    assert "s3cret" in ui_log._secrets  # redacted from logs from now on


async def test_command_gets_no_stdin() -> None:
    # `cat` would hang on an open stdin; closed, it prints nothing and we say so.
    with pytest.raises(PasswordError, match=r'"cat" printed an empty first line'):
        await resolve_password(repo(command=("cat",)))


async def test_failing_command_reports_exit_and_stderr_never_stdout() -> None:
    command = (
        "sh",
        "-c",
        "echo leaked-pw; echo 'gpg: decryption failed' >&2; echo more >&2; exit 3",
    )
    with pytest.raises(PasswordError) as info:
        await resolve_password(repo(command=command))
    message = str(info.value)
    assert message == 'password_command "sh" failed with exit 3: gpg: decryption failed'
    assert isinstance(info.value, StoreError)


async def test_the_command_arguments_are_not_shown() -> None:
    """They may hold a secret of their own (``gpg --passphrase ...``)."""
    command = ("sh", "-c", 'echo "cannot decrypt" >&2; exit 2', "sh", "--passphrase=Tr0ub4dor")
    with pytest.raises(PasswordError) as info:
        await resolve_password(repo(command=command))
    assert str(info.value) == 'password_command "sh" failed with exit 2: cannot decrypt'


async def test_failing_command_output_is_not_shown() -> None:
    with pytest.raises(PasswordError) as info:
        await resolve_password(repo(command=("sh", "-c", "printf 'hunter%s\\n' 2; exit 1")))
    assert "hunter2" not in str(info.value)
    assert str(info.value).endswith("failed with exit 1: (nothing on stderr)")


async def test_missing_binary() -> None:
    with pytest.raises(PasswordError) as info:
        await resolve_password(repo(command=("/nonexistent/mailtide-pass",)))
    assert str(info.value) == (
        'password_command "/nonexistent/mailtide-pass" could not be started:'
        " No such file or directory"
    )


async def test_hanging_command_times_out() -> None:
    with pytest.raises(PasswordError, match=r"timed out after 0.2 s"):
        await resolve_password(repo(command=("sleep", "30")), timeout=0.2)


# Each (argv, timeout): password_now (the quiet check's, without an event loop) must print the
# same password or fail with the same words as password (the sync's).
COMMANDS = {
    "first line": (("sh", "-c", "printf 's3cret\\r\\nsecond line\\n'"), 10.0),
    "no stdin": (("cat",), 10.0),
    "failing": (("sh", "-c", "echo leaked-pw; echo 'gpg: failed' >&2; exit 3"), 10.0),
    "killed": (("sh", "-c", "kill -9 $$"), 10.0),
    "not UTF-8": (("printf", "\\377\\n"), 10.0),
    "missing": (("/nonexistent/mailtide-pass",), 10.0),
    "hanging": (("sleep", "30"), 0.2),
}


@pytest.mark.parametrize("argv, timeout", COMMANDS.values(), ids=COMMANDS.keys())
async def test_a_command_run_without_an_event_loop_ends_alike(
    argv: tuple[str, ...], timeout: float
) -> None:
    command = PasswordCommand(argv, timeout)

    try:
        expected = "password " + await command.password()
    except PasswordError as e:
        expected = "error " + str(e)
    try:
        now = "password " + command.password_now()
    except PasswordError as e:
        now = "error " + str(e)
    assert now == expected
    assert "leaked-pw" not in expected
