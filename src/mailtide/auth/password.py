"""Get an IMAP password: the literal from the config, or the output of a command.

The command (``password_command``, e.g. ``["pass", "show", "mail/work"]``) runs
without a shell, with stdin closed, for at most 30 seconds; its first line of
output is the password.  It is never put into a log event or an error message,
nor is the command's stdout (which may hold it or more secrets), nor are the
command's arguments (``gpg --passphrase ...``): an error names the program
only.  The password is also registered with the log pipeline, whose
last-resort mask catches a long one that slipped through
(``mailtide.ui.log.register_secret``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

from mailtide.stores.base import StoreError
from mailtide.ui.log import register_secret

COMMAND_TIMEOUT = 30.0


class PasswordError(StoreError):
    """The password could not be obtained.  The message is for the user."""


class HasPassword(Protocol):
    """What resolve_password needs: an ImapRepository or a ``PasswordSource``."""

    @property
    def password(self) -> str | None: ...

    @property
    def password_command(self) -> tuple[str, ...] | None: ...


async def resolve_password(repo: HasPassword, *, timeout: float = COMMAND_TIMEOUT) -> str:
    """The password for ``repo``; raises PasswordError with a one-line reason."""
    if repo.password is not None:
        register_secret(repo.password)
        return repo.password
    if not repo.password_command:
        raise PasswordError("no password and no password_command configured")
    password = await _run(repo.password_command, timeout)
    register_secret(password)
    return password


async def _run(argv: tuple[str, ...], timeout: float) -> str:
    shown = "password_command " + json.dumps(argv[0], ensure_ascii=False)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise PasswordError(f"{shown} could not be started: {e.strerror or e}") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PasswordError(f"{shown} timed out after {timeout:g} s") from None
    if process.returncode != 0:
        first = stderr.decode("utf-8", "replace").strip().partition("\n")[0].strip()
        status = (
            f"was killed by signal {-process.returncode}"
            if process.returncode is not None and process.returncode < 0
            else f"failed with exit {process.returncode}"
        )
        raise PasswordError(f"{shown} {status}: {first or '(nothing on stderr)'}")
    line = stdout.partition(b"\n")[0].removesuffix(b"\r")
    try:
        password = line.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordError(f"{shown} printed a first line that is not UTF-8") from None
    if not password:
        raise PasswordError(f"{shown} printed an empty first line")
    return password
