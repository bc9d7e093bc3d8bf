"""What an IMAP connection logs in with, asked for again at every connect.

A long-running daemon outlives a password: ``password_command`` may print another one
tomorrow, and an OAuth2 access token expires within the hour.  So the store holds a
``CredentialSource``, not a secret, and each new connection asks it once (after the server's
greeting, before logging in) and keeps the answer only until the login is done.

The sources themselves live outside the stores (``mailtide.auth`` builds them from the
configuration); this module is only the shape the store needs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class SecretKind(enum.Enum):
    """What the secret is; it decides which ways of logging in can carry it."""

    PASSWORD = "password"
    OAUTH2_TOKEN = "OAuth2 access token"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who logs in and with what.  ``origin`` says where the secret came from, for an error
    message (``printed by password_command "pass"``); ``repr`` never shows the secret."""

    user: str
    secret: str = field(repr=False)
    kind: SecretKind = SecretKind.PASSWORD
    origin: str = ""


class CredentialSource(Protocol):
    """Gives the credentials for one new connection.  Errors are ``StoreError`` with a
    one-line reason for the user, which never holds the secret."""

    async def credentials(self) -> Credentials: ...

    def refused(self, credentials: Credentials) -> bool:
        """The server refused ``credentials``: True when asking again may give others worth
        one more try (an OAuth2 access token refreshed), False when it would not."""
        ...
