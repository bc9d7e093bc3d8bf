"""An IMAP repository's password, from the one source its configuration names.

``password_source(repo)`` picks the source (``auth.source``); ``resolve_password`` asks it.
The password got is registered with the log pipeline, whose last-resort mask catches a long
one that slipped into a log line (``mailtide.ui.log.register_secret``); no source ever puts
it into a log event or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mailtide.auth.source import COMMAND_TIMEOUT, PasswordError, Source

__all__ = ["COMMAND_TIMEOUT", "HasPassword", "PasswordError", "password_source", "resolve_password"]


class HasPassword(Protocol):
    """The password keys of a repository (a config ``ImapRepository``): one is set."""

    @property
    def host(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def password_command(self) -> tuple[str, ...] | None: ...
    @property
    def password_file(self) -> Path | None: ...
    @property
    def password_credential(self) -> str | None: ...
    @property
    def netrc(self) -> Path | None: ...
    @property
    def keyring(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ConfigPassword:
    """``password = "..."`` in the config file."""

    secret: str = field(repr=False)
    origin: str = "from the config file"

    async def password(self) -> str:
        return self.secret


def password_source(repo: HasPassword, *, timeout: float = COMMAND_TIMEOUT) -> Source:
    """The source ``repo`` names; ``timeout`` bounds a ``password_command``.  Each kind of
    source is imported when named: a sync's start-up pays only for its own (issue 12)."""
    if repo.password is not None:
        return ConfigPassword(repo.password)
    if repo.password_command:
        from mailtide.auth.command import PasswordCommand

        return PasswordCommand(repo.password_command, timeout)
    if repo.password_file is not None or repo.password_credential is not None:
        from mailtide.auth.secret_file import PasswordFile, SystemdCredential

        if repo.password_file is not None:
            return PasswordFile(repo.password_file)
        return SystemdCredential(repo.password_credential or "")
    if repo.netrc is not None:
        from mailtide.auth.netrc_file import NetrcPassword

        return NetrcPassword(repo.netrc, repo.host, repo.user)
    if repo.keyring:
        from mailtide.auth.system_keyring import KeyringPassword

        return KeyringPassword(repo.user, repo.host)
    return NoPassword()


@dataclass(frozen=True, slots=True)
class NoPassword:
    """A repository built without a source (config loading refuses one): says so."""

    origin: str = "(no password source)"

    async def password(self) -> str:
        raise PasswordError("no password source configured")


async def obtain(source: Source) -> str:
    """The password ``source`` gives now, registered to be masked in logs."""
    # Here, not at the top: the quiet check reads a password before logging has loaded.
    from mailtide.ui.log import register_secret

    password = await source.password()
    register_secret(password)
    return password


async def resolve_password(repo: HasPassword, *, timeout: float = COMMAND_TIMEOUT) -> str:
    """The password for ``repo`` now; raises PasswordError with a one-line reason."""
    return await obtain(password_source(repo, timeout=timeout))
