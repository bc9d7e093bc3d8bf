"""``password_file`` and ``password_credential``: the first line of a file.

A password file readable by group or others is refused (not merely warned about): unlike a
config file, it holds nothing but the secret, so there is no reason for anyone else to read
it.  The mode is checked on the open file, so a file swapped after the check is not read.

A systemd credential (``LoadCredential=``, ``SetCredentialEncrypted=``) is a file in
``$CREDENTIALS_DIRECTORY``, a directory systemd makes for the service alone; its files'
modes are systemd's choice, so they are not checked.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from mailtide.auth.source import PasswordError

READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH


def read_secret_file(path: Path, shown: str, *, private: bool) -> bytes:
    """The bytes of the file at ``path`` (``shown`` names it in errors); with ``private``, a
    file that group or others may read is refused."""
    try:
        with path.open("rb") as opened:
            mode = os.fstat(opened.fileno()).st_mode
            if private and mode & READABLE_BY_OTHERS:
                raise PasswordError(
                    f"{shown} can be read by other users (mode {stat.S_IMODE(mode):04o}):"
                    f" run chmod 600 {shlex.quote(str(path))}"
                )
            return opened.read()
    except FileNotFoundError:
        raise PasswordError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise PasswordError(f"{shown} is a directory, not a file") from None
    except OSError as e:
        raise PasswordError(f"{shown} cannot be read: {e.strerror or e}") from None


def first_line(path: Path, shown: str, *, private: bool) -> str:
    """The first line of the file at ``path``, as ``read_secret_file`` reads it."""
    head = read_secret_file(path, shown, private=private).partition(b"\n")[0]
    try:
        line = head.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordError(f"{shown}: the first line is not UTF-8") from None
    if not line:
        raise PasswordError(f"{shown}: the first line is empty")
    return line


@dataclass(frozen=True, slots=True)
class PasswordFile:
    path: Path
    key: str = "password_file"  # the config key that names it, for messages

    @property
    def origin(self) -> str:
        return f"read from {self.key} {self.path}"

    async def password(self) -> str:
        return first_line(self.path, f"{self.key} {self.path}", private=True)


@dataclass(frozen=True, slots=True)
class SystemdCredential:
    name: str
    key: str = "password_credential"  # the config key that names it, for messages

    @property
    def origin(self) -> str:
        return f"of systemd credential {self.name}"

    async def password(self) -> str:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise PasswordError(
                f"{self.key} {self.name}: $CREDENTIALS_DIRECTORY is not set; the"
                f" systemd service needs LoadCredential={self.name}:PATH (or"
                f" SetCredentialEncrypted={self.name}:...) in its unit"
            )
        path = Path(directory) / self.name
        return first_line(path, f"{self.key} {self.name} ({path})", private=False)
