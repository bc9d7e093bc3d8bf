"""The credential source of a configured IMAP repository (``stores.imap.credentials``).

The store asks it once per new connection, so a ``password_command`` runs again for each
connection and what it prints today is what logs in today: nothing is kept between two
connects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from mailtide.auth.password import COMMAND_TIMEOUT, HasPassword, resolve_password
from mailtide.stores.imap.credentials import Credentials, CredentialSource, SecretKind


class HasCredentials(HasPassword, Protocol):
    """What ``credentials_for`` needs of a repository (a config ``ImapRepository``)."""

    @property
    def user(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PasswordSource:
    """A user's password: the literal ``password``, else what ``password_command`` prints
    (``auth.password.resolve_password``).  ``repr`` shows neither: a command's arguments may
    hold a secret of their own."""

    user: str
    password: str | None = field(default=None, repr=False)
    password_command: tuple[str, ...] | None = field(default=None, repr=False)
    timeout: float = COMMAND_TIMEOUT

    async def credentials(self) -> Credentials:
        secret = await resolve_password(self, timeout=self.timeout)
        return Credentials(self.user, secret, SecretKind.PASSWORD, self.origin)

    @property
    def origin(self) -> str:
        if self.password is not None or not self.password_command:
            return "from the config file"
        return "printed by password_command " + json.dumps(
            self.password_command[0], ensure_ascii=False
        )


def credentials_for(repo: HasCredentials) -> CredentialSource:
    """The source an ``ImapStore`` of ``repo`` logs in with."""
    return PasswordSource(repo.user, repo.password, repo.password_command)
