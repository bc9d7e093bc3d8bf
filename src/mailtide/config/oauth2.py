"""How an IMAP repository gets an OAuth2 access token: the validated values, no I/O.

Either ``token_command`` (a program that prints a token, e.g. ``oama access USER``), or the
built-in refresh flow: ``client_id`` (and a client secret where the provider wants one), the
provider's ``token_url``, and exactly one place that holds the refresh token.  ``auth_url``
and ``scopes`` are used only by ``mailtide oauth2 authorize``.  The presets fill the URLs and
scopes of the providers that need OAuth2 for IMAP; the user brings the client id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider's endpoints and the scope that grants IMAP."""

    auth_url: str
    token_url: str
    scopes: tuple[str, ...]


PROVIDERS: dict[str, Provider] = {
    "google": Provider(
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        ("https://mail.google.com/",),
    ),
    "microsoft": Provider(
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        ("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"),
    ),
}


@dataclass(frozen=True, slots=True)
class OAuth2:
    """One repository's OAuth2 keys, checked: ``token_command`` alone, or ``client_id``,
    ``token_url`` and exactly one refresh-token place (``refresh_token_file``,
    ``refresh_token_credential``, ``refresh_token_keyring`` or ``refresh_token_command``).
    ``mechanism`` (the ``auth`` key) forces one SASL mechanism; None picks from the server's
    capabilities, OAUTHBEARER first."""

    token_command: tuple[str, ...] | None = None
    client_id: str | None = None
    # repr=False: a repository printed in a log line or a traceback must not show it.
    client_secret: str | None = field(default=None, repr=False)
    client_secret_command: tuple[str, ...] | None = None
    token_url: str | None = None
    auth_url: str | None = None
    scopes: tuple[str, ...] = ()
    refresh_token_file: Path | None = None
    refresh_token_credential: str | None = None
    refresh_token_keyring: bool = False
    refresh_token_command: tuple[str, ...] | None = None
    mechanism: str | None = None  # "XOAUTH2" or "OAUTHBEARER" (auth = ...); None: auto
