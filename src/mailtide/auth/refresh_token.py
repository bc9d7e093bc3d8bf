"""Where an OAuth2 refresh token lives, and how a rotated one is written back there.

A provider may answer a refresh with a new refresh token and revoke the old one; losing the
new one would lock the user out until they authorize again.  So it is written back where it
was read, atomically (a file: a new 0600 file beside it, fsynced, renamed over it; the
keyring: one ``set_password``).  A systemd credential (a read-only copy made by systemd) and
a command's output cannot be written: there the new token is kept in memory for the life of
the process and the user is told, once, to update the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailtide.auth.command import PasswordCommand
from mailtide.auth.secret_file import PasswordFile, SystemdCredential
from mailtide.auth.source import PasswordError, Source
from mailtide.auth.system_keyring import SERVICE, keyring_failure, keyring_module
from mailtide.config.oauth2 import OAuth2

KEYRING_PREFIX = "oauth2-refresh-token:"


class RefreshTokenPlace(Protocol):
    """A place that holds the refresh token: read at every refresh, written when rotated."""

    @property
    def origin(self) -> str: ...

    @property
    def writable(self) -> bool: ...

    async def read(self) -> str:
        """The refresh token now; PasswordError with a one-line reason when there is none."""
        ...

    async def write(self, token: str) -> None:
        """Replace the refresh token (only when ``writable``)."""
        ...


@dataclass(frozen=True, slots=True)
class ReadOnlyPlace:
    """A source that can only be read (a systemd credential, a command), set by ``key``."""

    source: Source
    key: str

    @property
    def origin(self) -> str:
        return self.source.origin

    @property
    def writable(self) -> bool:
        return False

    async def read(self) -> str:
        return await self.source.password()

    async def write(self, token: str) -> None:
        raise PasswordError(f"the refresh token cannot be written to {self.key}")


@dataclass(frozen=True, slots=True)
class RefreshTokenFile:
    """``oauth2_refresh_token_file``: its first line; a file others can read is refused."""

    path: Path

    @property
    def origin(self) -> str:
        return f"read from oauth2_refresh_token_file {self.path}"

    @property
    def writable(self) -> bool:
        return True

    async def read(self) -> str:
        return await PasswordFile(self.path, "oauth2_refresh_token_file").password()

    async def write(self, token: str) -> None:
        await asyncio.to_thread(write_private_file, self.path, token + "\n")


def write_private_file(path: Path, text: str) -> None:
    """Put ``text`` at ``path`` atomically, mode 0600: a reader sees the old file or the new
    one, and after a crash one of the two is there, whole."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass(frozen=True, slots=True)
class RefreshTokenKeyring:
    """``oauth2_refresh_token_keyring``: service ``mailtide``, username
    ``oauth2-refresh-token:USER@HOST`` (beside the password items of ``keyring = true``)."""

    user: str
    host: str

    @property
    def item(self) -> str:
        return f"{KEYRING_PREFIX}{self.user}@{self.host}"

    @property
    def origin(self) -> str:
        return f'from the system keyring (service "mailtide", {self.item})'

    @property
    def writable(self) -> bool:
        return True

    async def read(self) -> str:
        return await asyncio.to_thread(self._read)

    async def write(self, token: str) -> None:
        await asyncio.to_thread(store_in_keyring, self.item, token)

    def _read(self) -> str:
        try:
            token = keyring_module().get_password(SERVICE, self.item)
        except Exception as e:  # keyring.errors.KeyringError and the backends' own
            raise keyring_failure(f"the system keyring could not give {self.item}", e) from None
        if not token:
            raise PasswordError(
                f'the system keyring holds no refresh token for service "mailtide", username'
                f" {self.item}: run mailtide oauth2 authorize ACCOUNT"
            )
        return str(token)


def store_in_keyring(item: str, token: str) -> None:
    """Store ``token`` as ``item`` of service ``mailtide`` (blocking)."""
    try:
        keyring_module().set_password(SERVICE, item, token)
    except Exception as e:  # keyring.errors.KeyringError and the backends' own
        raise keyring_failure(f"the system keyring could not store {item}", e) from None


def refresh_token_place(oauth2: OAuth2, user: str, host: str) -> RefreshTokenPlace:
    """The one place ``oauth2`` names (config loading checks there is exactly one)."""
    if oauth2.refresh_token_file is not None:
        return RefreshTokenFile(oauth2.refresh_token_file)
    if oauth2.refresh_token_keyring:
        return RefreshTokenKeyring(user, host)
    if oauth2.refresh_token_credential is not None:
        key = "oauth2_refresh_token_credential"
        return ReadOnlyPlace(SystemdCredential(oauth2.refresh_token_credential, key), key)
    if oauth2.refresh_token_command:
        key = "oauth2_refresh_token_command"
        return ReadOnlyPlace(PasswordCommand(oauth2.refresh_token_command, key=key), key)
    raise PasswordError("no place for the OAuth2 refresh token is configured")
