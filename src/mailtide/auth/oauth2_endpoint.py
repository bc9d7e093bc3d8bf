"""An OAuth2 provider's token endpoint (RFC 6749 section 3.2): refresh an access token,
or redeem an authorization code for the first refresh token.

The standard library only (``urllib.request``), run in a thread so the daemon's other
accounts go on.  Errors are one line: a refusal (HTTP 400/401 with ``error``, RFC 6749
5.2) is ``TokenRefused`` with the endpoint's ``error`` and ``error_description``, which the
user must act on (authorize again) and which is never retried; a network failure is
``ConnectionLost``, retried like a server that does not answer.  No token and no client
secret ever reaches a message: the endpoint's words are its own, never our request.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailtide.auth.source import PasswordError
from mailtide.stores.base import AuthenticationFailed, ConnectionLost

ENDPOINT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Grant:
    """What the token endpoint gave: an access token, for ``expires_in`` seconds (None:
    not said), and a new refresh token when the provider rotates it."""

    access_token: str = field(repr=False)
    expires_in: float | None = None
    refresh_token: str | None = field(default=None, repr=False)


class TokenRefused(AuthenticationFailed):
    """The token endpoint refused the grant (a revoked or expired refresh token, a wrong
    client id): asking again with the same would fail the same way."""


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """The endpoint at ``url`` for the client ``client_id`` (``client_secret`` None: a
    public client, as Microsoft's for installed apps)."""

    url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    timeout: float = ENDPOINT_TIMEOUT

    async def refresh(self, refresh_token: str) -> Grant:
        """A new access token for ``refresh_token``."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._grant(form, "refused the refresh token")

    async def redeem(self, code: str, verifier: str, redirect_uri: str) -> Grant:
        """The tokens for an authorization ``code`` (RFC 7636: with the PKCE ``verifier``)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        }
        return await self._grant(form, "refused the authorization code")

    async def _grant(self, form: Mapping[str, str], refused: str) -> Grant:
        fields = {**form, "client_id": self.client_id}
        if self.client_secret is not None:
            fields["client_secret"] = self.client_secret
        answer = await asyncio.to_thread(self._post, fields, refused)
        return _grant_of(answer, self.url)

    def _post(self, fields: Mapping[str, str], refused: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url,
            data=urllib.parse.urlencode(fields).encode("ascii"),
            headers={"Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _json(response.read(), self.url)
        except urllib.error.HTTPError as e:
            body = _json_or_empty(e.read())
            raise _refusal(self.url, refused, e.code, body) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            where = f"the token endpoint {self.url}"
            raise ConnectionLost(f"{where} cannot be reached: {reason}") from None


def _json(data: bytes, url: str) -> dict[str, Any]:
    answer = _json_or_empty(data)
    if not answer:
        raise PasswordError(f"the token endpoint {url} answered something that is not JSON")
    return answer


def _json_or_empty(data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]


def _refusal(url: str, refused: str, status: int, body: Mapping[str, Any]) -> StoreErrorType:
    error = body.get("error")
    if status >= 500 or (error is None and status not in (400, 401)):
        return ConnectionLost(f"the token endpoint {url} failed: HTTP {status}")
    words = _one_line(error or f"HTTP {status}")
    description = body.get("error_description")
    if description:
        words = f"{words}: {_one_line(description)}"
    return TokenRefused(f"the token endpoint {url} {refused}: {words}")


StoreErrorType = ConnectionLost | TokenRefused


def _grant_of(answer: Mapping[str, Any], url: str) -> Grant:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise PasswordError(f"the token endpoint {url} answered without an access_token")
    expires = answer.get("expires_in")
    try:
        expires_in = float(expires) if expires is not None else None
    except (TypeError, ValueError):
        expires_in = None
    rotated = answer.get("refresh_token")
    return Grant(token, expires_in, rotated if isinstance(rotated, str) and rotated else None)
