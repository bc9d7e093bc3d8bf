"""The credential source of a configured IMAP repository (``stores.imap.credentials``).

The store asks it once per new connection, so the password source (a command, a file, a
netrc entry, the keyring, ...) is read again for each connection and what it holds today is
what logs in today: nothing is kept between two connects.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtide.auth.password import HasPassword, obtain, password_source
from mailtide.auth.source import Source
from mailtide.stores.imap.credentials import Credentials, CredentialSource, SecretKind


@dataclass(frozen=True, slots=True)
class PasswordSource:
    """A user's password from ``source``; ``repr`` shows no secret (the sources hide theirs)."""

    user: str
    source: Source

    async def credentials(self) -> Credentials:
        secret = await obtain(self.source)
        return Credentials(self.user, secret, SecretKind.PASSWORD, self.source.origin)

    @property
    def origin(self) -> str:
        return self.source.origin


def credentials_for(repo: HasPassword) -> CredentialSource:
    """The source an ``ImapStore`` of ``repo`` logs in with."""
    return PasswordSource(repo.user, password_source(repo))
