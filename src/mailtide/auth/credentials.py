"""The credential source of a configured IMAP repository (``stores.imap.credentials``).

The store asks it once per new connection, so the password source (a command, a file, a
netrc entry, the keyring, ...) is read again for each connection and what it holds today is
what logs in today: nothing is kept between two connects.  An OAuth2 repository's source is
``auth.oauth2_source``'s, which keeps the access token in memory until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailtide.auth.password import HasPassword, obtain, password_source
from mailtide.auth.source import Source
from mailtide.config.oauth2 import OAuth2
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

    def refused(self, credentials: Credentials) -> bool:
        return False  # the source would give the same password: asking again is no help


class HasCredentials(HasPassword, Protocol):
    """A repository's password keys, or its OAuth2 keys."""

    @property
    def oauth2(self) -> OAuth2 | None: ...


def credentials_for(repo: HasCredentials) -> CredentialSource:
    """The source an ``ImapStore`` of ``repo`` logs in with."""
    if repo.oauth2 is not None:
        # Imported here: its HTTP client costs every start-up, and most accounts use a password.
        from mailtide.auth.oauth2_source import token_source

        return token_source(repo.oauth2, repo.user, repo.host)
    return PasswordSource(repo.user, password_source(repo))
