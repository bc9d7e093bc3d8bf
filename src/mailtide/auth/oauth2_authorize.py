"""``mailtide oauth2 authorize``: the authorization-code flow with PKCE (RFC 7636) and a
loopback redirect (RFC 8252), what Google and Microsoft require of installed apps.

1. listen on 127.0.0.1 on a free port: the redirect URI;
2. the user opens the printed URL, logs in and consents; the browser is sent back to the
   loopback with a code (or an ``error``) and the ``state`` we gave;
3. the code and the PKCE verifier go to the token endpoint for the first refresh token.

Each failure says which step failed and the provider's words (``AuthorizeFailed``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from mailtide.auth.oauth2_endpoint import Grant, TokenEndpoint, TokenRefused
from mailtide.auth.source import PasswordError
from mailtide.config.oauth2 import OAuth2
from mailtide.deadline import within

WAIT = 600.0  # how long the user has to consent
PAGE = b"<!doctype html><title>mailtide</title><p>%s You can close this window.</p>"


class AuthorizeFailed(PasswordError):
    """A step of the flow failed; the message names the step and the provider's words."""


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str = field(repr=False)

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @classmethod
    def new(cls) -> Pkce:
        return cls(secrets.token_urlsafe(48))


def authorization_url(oauth2: OAuth2, user: str, redirect_uri: str, state: str, pkce: Pkce) -> str:
    """The URL the user opens: ``auth_url`` with the code request (RFC 6749 4.1.1)."""
    assert oauth2.auth_url is not None and oauth2.client_id is not None
    query = {
        "response_type": "code",
        "client_id": oauth2.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(oauth2.scopes),
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "login_hint": user,
        "access_type": "offline",  # Google: give a refresh token
        "prompt": "consent",  # Google: give one again on a second authorization
    }
    separator = "&" if "?" in oauth2.auth_url else "?"
    return oauth2.auth_url + separator + urllib.parse.urlencode(query)


@dataclass
class _Redirect:
    """What the browser brought back to the loopback: the query of its request."""

    state: str
    arrived: asyncio.Future[dict[str, str]]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await within(reader.readline(), 30)
            target = request.decode("latin-1").split(" ")[1] if b" " in request else "/"
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
            mine = query.get("state") == self.state
            words = b"mailtide has the authorization." if mine and "code" in query else b""
            page = PAGE % (words or b"mailtide did not get the authorization.")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(page) + page)
            await writer.drain()
            if mine and not self.arrived.done():
                self.arrived.set_result(query)
        except (OSError, TimeoutError, IndexError):
            pass  # a stray connection (a browser's favicon request, a port scan)
        finally:
            writer.close()


async def authorize(
    oauth2: OAuth2, user: str, secret: str | None, show: Callable[[str], None], wait: float = WAIT
) -> Grant:
    """Run the flow for ``user``; ``show`` gets the URL to open.  The grant holds the
    refresh token (AuthorizeFailed when the provider gave none)."""
    state, pkce = secrets.token_urlsafe(16), Pkce.new()
    redirect = _Redirect(state, asyncio.get_running_loop().create_future())
    server = await asyncio.start_server(redirect.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/"
    try:
        show(authorization_url(oauth2, user, redirect_uri, state, pkce))
        try:
            query = await within(redirect.arrived, wait)
        except TimeoutError:
            raise AuthorizeFailed(
                f"authorization: no answer came back to {redirect_uri} within {wait:g} s"
            ) from None
    finally:
        server.close()
    if "code" not in query:
        words = query.get("error", "no code in the redirect")
        if query.get("error_description"):
            words += ": " + query["error_description"]
        raise AuthorizeFailed(f"authorization: the provider said {words}")
    assert oauth2.token_url is not None and oauth2.client_id is not None
    endpoint = TokenEndpoint(oauth2.token_url, oauth2.client_id, secret)
    try:
        grant = await endpoint.redeem(query["code"], pkce.verifier, redirect_uri)
    except TokenRefused as e:
        raise AuthorizeFailed(f"token exchange: {e}") from None
    if grant.refresh_token is None:
        raise AuthorizeFailed(
            f"token exchange: the token endpoint {oauth2.token_url} gave no refresh token"
            " (ask for offline access: Microsoft needs the scope offline_access)"
        )
    return grant


async def authorize_and_store(
    oauth2: OAuth2, user: str, host: str, show: Callable[[str], None], wait: float = WAIT
) -> str:
    """Run the flow and write the refresh token to its place (a file at 0600, or the
    keyring); returns where it went.  A place that cannot be written is refused first."""
    from mailtide.auth.oauth2_source import RefreshFlow
    from mailtide.auth.refresh_token import refresh_token_place
    from mailtide.ui.log import register_secret

    place = refresh_token_place(oauth2, user, host)
    if not place.writable:
        try:
            await place.write("")
        except PasswordError as e:
            raise AuthorizeFailed(
                f"{e}: set oauth2_refresh_token_file or oauth2_refresh_token_keyring = true"
            ) from None
    if oauth2.auth_url is None:
        raise AuthorizeFailed('set "oauth2_auth_url" (or "oauth2_provider") to authorize')
    endpoint = await RefreshFlow(oauth2, place).endpoint()
    grant = await authorize(oauth2, user, endpoint.client_secret, show, wait)
    assert grant.refresh_token is not None  # authorize checks it
    register_secret(grant.refresh_token)
    register_secret(grant.access_token)
    await place.write(grant.refresh_token)
    return place.origin.replace("read from ", "", 1).replace("from ", "", 1)
