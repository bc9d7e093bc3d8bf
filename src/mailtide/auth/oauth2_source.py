"""OAuth2 access tokens as credentials, asked for at every connect like a password.

Two sources: ``oauth2_token_command`` (a program such as ``oama access USER`` prints the
token; it keeps its own cache, so it is asked at every connect), and the built-in refresh
flow, whose state lives in a ``TokenSession`` per repository while the configuration has it:

- the access token is kept in memory only, and used until shortly before it expires
  (``expires_in``), then refreshed; a connection the server refuses with it drops it, and the
  store asks once more, which refreshes it (``refused``), then gives up;
- a refresh the token endpoint refuses (a revoked or expired refresh token) is remembered with
  the refresh token it refused: the same error is raised again without asking the endpoint,
  until the refresh token in its place changes (the user authorized again);
- a rotated refresh token is written back to its place (``auth.refresh_token``).

Every access token, refresh token and client secret is registered with the log mask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import structlog

from mailtide.auth.command import PasswordCommand
from mailtide.auth.oauth2_endpoint import Grant, TokenEndpoint, TokenRefused
from mailtide.auth.password import obtain
from mailtide.auth.refresh_token import RefreshTokenPlace, refresh_token_place
from mailtide.config.oauth2 import OAuth2
from mailtide.stores.imap.credentials import Credentials, CredentialSource, SecretKind
from mailtide.ui.log import register_secret

log = structlog.get_logger(__name__)

TOKEN = SecretKind.OAUTH2_TOKEN
EARLY = 60.0  # refresh this long before expiry (less for a short-lived token: see _good_until)


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str = field(repr=False)
    good_until: float | None  # on the monotonic clock; None: until the server refuses it


@dataclass(frozen=True, slots=True)
class RefreshFlow:
    """The built-in flow of one repository: where the refresh token is, and the endpoint."""

    oauth2: OAuth2
    place: RefreshTokenPlace

    @property
    def origin(self) -> str:
        return f"from the token endpoint {self.oauth2.token_url}"

    async def endpoint(self) -> TokenEndpoint:
        o = self.oauth2
        secret = o.client_secret
        if o.client_secret_command:
            command = PasswordCommand(o.client_secret_command, key="oauth2_client_secret_command")
            secret = await obtain(command)
        if secret is not None:
            register_secret(secret)
        assert o.token_url is not None and o.client_id is not None  # config checks both
        return TokenEndpoint(o.token_url, o.client_id, secret)


class TokenSession:
    """One repository's access token and refresh state in this process (see the module
    docstring).  Shared by every connection of the repository, the push ones too."""

    def __init__(self, flow: RefreshFlow, clock: Callable[[], float] = time.monotonic) -> None:
        self.flow = flow
        self.clock = clock
        self.token: AccessToken | None = None
        self.refusal: tuple[str, TokenRefused] | None = None  # the refresh token refused
        self.unsaved: str | None = None  # a rotated refresh token its place cannot hold
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    async def access_token(self) -> str:
        """A token good for a login now, refreshed when there is none or it is about to
        expire; one refresh at a time however many connections ask."""
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if self.token is None or not self._fresh(self.token):
                self.token = await self._refresh()
            return self.token.value

    def drop(self, value: str) -> bool:
        """The server refused ``value``: forget it.  True when it was the token held (the next
        ``access_token`` refreshes), False when it was already replaced or dropped."""
        if self.token is not None and self.token.value == value:
            self.token = None
            return True
        return False

    def _fresh(self, token: AccessToken) -> bool:
        return token.good_until is None or self.clock() < token.good_until

    async def _refresh(self) -> AccessToken:
        refresh_token = self.unsaved or await self.flow.place.read()
        register_secret(refresh_token)
        if self.refusal is not None and self.refusal[0] == refresh_token:
            raise self.refusal[1]  # the user has not acted yet: do not ask the endpoint again
        endpoint = await self.flow.endpoint()
        try:
            grant = await endpoint.refresh(refresh_token)
        except TokenRefused as e:
            self.refusal = (refresh_token, e)
            raise
        self.refusal = None
        register_secret(grant.access_token)
        if grant.refresh_token and grant.refresh_token != refresh_token:
            await self._keep(grant.refresh_token)
        return AccessToken(grant.access_token, self._good_until(grant))

    def _good_until(self, grant: Grant) -> float | None:
        if grant.expires_in is None:
            return None
        return self.clock() + grant.expires_in - min(EARLY, grant.expires_in / 10)

    async def _keep(self, rotated: str) -> None:
        register_secret(rotated)
        place = self.flow.place
        if place.writable:
            await place.write(rotated)
            self.unsaved = None
            log.info("oauth2.refresh_token_rotated", saved=place.origin)
            return
        if self.unsaved is None:
            log.warning(
                "oauth2.refresh_token_rotated_unsaved",
                detail=f"the provider replaced the refresh token {place.origin}, which cannot"
                " be written: the new one is kept in memory until mailtide exits; put it in"
                " place with mailtide oauth2 authorize ACCOUNT",
            )
        self.unsaved = rotated


# One session per repository and the settings its refresh uses: a reload (SIGHUP) that changes
# them gets a new session, one that changes only the authorize or login keys keeps the token.
SessionKey = tuple[str, str, OAuth2]
_sessions: dict[SessionKey, TokenSession] = {}


def session_key(oauth2: OAuth2, user: str, host: str) -> SessionKey:
    """What parts two sessions: the user, the host and the keys a refresh reads."""
    return (user, host, replace(oauth2, auth_url=None, scopes=(), mechanism=None))


def session_for(oauth2: OAuth2, user: str, host: str) -> TokenSession:
    """The process's one session for this repository's built-in flow."""
    key = session_key(oauth2, user, host)
    if key not in _sessions:
        _sessions[key] = TokenSession(RefreshFlow(oauth2, refresh_token_place(oauth2, user, host)))
    return _sessions[key]


def keep_sessions(used: Iterable[tuple[OAuth2, str, str]]) -> None:
    """Forget the sessions of every repository but ``used`` (``oauth2``, user, host): those
    the configuration read again no longer has.  A connection still open with a forgotten
    session keeps it until it closes."""
    kept = {session_key(*repository) for repository in used}
    for key in [k for k in _sessions if k not in kept]:
        del _sessions[key]


@dataclass(frozen=True, slots=True)
class RefreshedToken:
    """Credentials from a ``TokenSession``."""

    user: str
    session: TokenSession

    @property
    def origin(self) -> str:
        return self.session.flow.origin

    async def credentials(self) -> Credentials:
        return Credentials(self.user, await self.session.access_token(), TOKEN, self.origin)

    def refused(self, credentials: Credentials) -> bool:
        return self.session.drop(credentials.secret)


@dataclass(frozen=True, slots=True)
class CommandToken:
    """``oauth2_token_command``: the first line the program prints, at every connect.  A
    refused token is not asked for again: the program would print the same one."""

    user: str
    command: PasswordCommand

    @property
    def origin(self) -> str:
        return self.command.origin

    async def credentials(self) -> Credentials:
        return Credentials(self.user, await obtain(self.command), TOKEN, self.origin)

    def refused(self, credentials: Credentials) -> bool:
        return False


def token_source(oauth2: OAuth2, user: str, host: str) -> CredentialSource:
    """The credential source of a repository with ``oauth2`` keys."""
    if oauth2.token_command:
        return CommandToken(user, PasswordCommand(oauth2.token_command, key="oauth2_token_command"))
    return RefreshedToken(user, session_for(oauth2, user, host))
