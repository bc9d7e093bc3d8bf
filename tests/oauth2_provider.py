"""A small OAuth2 provider on 127.0.0.1 for the tests: a token endpoint, an authorization
endpoint that a test plays the browser against, and the introspection endpoint a private
Dovecot validates tokens at (``Dovecot(oauth2_introspection_url=...)``).

Standard library only.  Access tokens expire after ``lifetime`` seconds; with ``rotate``
each refresh gives a new refresh token and revokes the old one, as Microsoft does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "test-client"
CLIENT_SECRET = "Cl1ent-S3cret-xyz"


@dataclass
class Provider:
    lifetime: float = 3600.0
    rotate: bool = False
    base: str = ""
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # -> user, until
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # -> user, challenge, uri
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refused_tokens: list[str] = field(default_factory=list)  # introspected and inactive
    consent_user: str = "nobody"  # who "logs in" at the authorization endpoint

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def auth_url(self) -> str:
        return f"{self.base}/authorize"

    @property
    def introspection_url(self) -> str:
        return f"{self.base}/introspect"

    def refresh_token_for(self, user: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def access_token_for(self, user: str) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[token] = (user, time.monotonic() + self.lifetime)
        return token

    def revoke(self, token: str) -> None:
        self.refresh_tokens.pop(token, None)
        self.access_tokens.pop(token, None)

    # -- endpoints --------------------------------------------------------------------

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        self.token_requests.append(form)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client", "error_description": "Unknown client."}
        if form.get("grant_type") == "refresh_token":
            user = self.refresh_tokens.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            answer: dict[str, object] = self._access(user)
            if self.rotate:
                self.revoke(form["refresh_token"])
                answer["refresh_token"] = self.refresh_token_for(user)
            return 200, answer
        if form.get("grant_type") == "authorization_code":
            return self._redeem(form)
        return 400, {"error": "unsupported_grant_type"}

    def _access(self, user: str) -> dict[str, object]:
        token = self.access_token_for(user)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def _redeem(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        found = self.codes.pop(form.get("code", ""), None)
        if found is None:
            return 400, {"error": "invalid_grant", "error_description": "Bad code."}
        user, challenge, uri = found
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if digest.decode() != challenge or form.get("redirect_uri") != uri:
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed."}
        return 200, {**self._access(user), "refresh_token": self.refresh_token_for(user)}

    def introspect(self, form: dict[str, str]) -> dict[str, object]:
        user, until = self.access_tokens.get(form.get("token", ""), ("", 0.0))
        if not user or time.monotonic() >= until:
            self.refused_tokens.append(form.get("token", ""))
            return {"active": "false"}
        return {"active": "true", "username": user}

    def authorize(self, query: dict[str, str]) -> str:
        """Consent: a redirect to ``redirect_uri`` with a code, as after the user said yes."""
        uri = query["redirect_uri"]
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            params = {"error": "invalid_request", "state": query.get("state", "")}
            return uri + "?" + urllib.parse.urlencode(params)
        code = secrets.token_urlsafe(16)
        self.codes[code] = (self.consent_user, query["code_challenge"], uri)
        return uri + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path == "/token":
                status, answer = provider.token(form)
            elif self.path == "/introspect":
                status, answer = 200, provider.introspect(form)
            else:
                status, answer = 404, {"error": "not_found"}
            self._json(status, answer)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/authorize":
                self._json(404, {"error": "not_found"})
                return
            location = provider.authorize(dict(urllib.parse.parse_qsl(url.query)))
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _json(self, status: int, answer: dict[str, object]) -> None:
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_provider(**options: object) -> Iterator[Provider]:
    """A ``Provider`` served on a free port of 127.0.0.1 until the block ends."""
    provider = Provider(**options)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
