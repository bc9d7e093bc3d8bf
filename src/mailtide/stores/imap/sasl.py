"""How an IMAP connection logs in: one table from credentials and capabilities to a login.

``WAYS`` lists the ways to log in, in order of preference; the first one whose secret kind
matches the credentials, that the server offers and that can carry the credentials is used:

=========================  ========  ===========================  ============================
way                        secret    the server must offer        it carries
=========================  ========  ===========================  ============================
LOGIN command              password  no LOGINDISABLED             printable ASCII (quoted)
AUTHENTICATE PLAIN         password  AUTH=PLAIN                   any UTF-8 without NUL
LOGIN command              password  no LOGINDISABLED             UTF-8 without CR, LF, NUL
AUTHENTICATE OAUTHBEARER   token     AUTH=OAUTHBEARER (RFC 7628)  any UTF-8 without ^A
AUTHENTICATE XOAUTH2       token     AUTH=XOAUTH2 (Google's)      any UTF-8 without ^A
=========================  ========  ===========================  ============================

LOGIN comes first for a password because every server has it; but IMAP's quoted strings are
7-bit (RFC 3501, 4.3), so a user or password with other characters goes as PLAIN (UTF-8 by
RFC 4616) where the server offers it, and as 8-bit quoted strings, which most servers take,
only where it does not.  OAUTHBEARER is the standard, XOAUTH2 its forerunner
that Microsoft's servers still need.

A SASL exchange (``Exchange``) sends the client's initial response (with the command when the
server has SASL-IR, else after its first "+"), then answers any further challenge: that is a
refusal.  An OAuth server sends its error report (base64 JSON, RFC 7628 3.2.2) as a challenge
and waits for an answer before its tagged NO (OAUTHBEARER: one %x01; XOAUTH2: an empty line);
PLAIN expects none and cancels with "*" (RFC 3501, 6.2.2).

No I/O here: the client sends what ``Exchange`` says and hands it the challenges.  Secrets leave
this module only inside ``Secret`` parts, which the conversation log shows as ``<redacted>``.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass

from mailtide.stores.imap.credentials import Credentials, SecretKind
from mailtide.stores.imap.wire import Part, Secret

PASSWORD = SecretKind.PASSWORD
TOKEN = SecretKind.OAUTH2_TOKEN


@dataclass(frozen=True, slots=True)
class Server:
    """Where the login goes (OAUTHBEARER names it in its initial response)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class LoginCommand:
    """IMAP's own LOGIN command (not SASL): user and password as quoted strings."""

    ascii_only: bool
    kind: SecretKind = PASSWORD
    name: str = "LOGIN"

    def offered(self, capabilities: frozenset[str]) -> bool:
        return "LOGINDISABLED" not in capabilities

    def carries(self, credentials: Credentials) -> bool:
        fits = _printable_ascii if self.ascii_only else _quotable
        return all(fits(t) for t in (credentials.user, credentials.secret))


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One SASL mechanism, client side: its initial response and the answer it gives to a
    challenge after that response (already encoded, as sent)."""

    name: str
    kind: SecretKind
    initial: Callable[[Credentials, Server], bytes]
    after_refusal: str
    forbidden: str  # a character the encoding cannot carry in the user or the secret

    def offered(self, capabilities: frozenset[str]) -> bool:
        return f"AUTH={self.name}" in capabilities

    def carries(self, credentials: Credentials) -> bool:
        return not any(self.forbidden in t for t in (credentials.user, credentials.secret))


def plain_response(credentials: Credentials, server: Server) -> bytes:
    """RFC 4616: authzid (empty), authcid, password, NUL-separated."""
    return b"\0%s\0%s" % (credentials.user.encode(), credentials.secret.encode())


def xoauth2_response(credentials: Credentials, server: Server) -> bytes:
    """Google's XOAUTH2: ``user=U ^A auth=Bearer T ^A ^A``."""
    return b"user=%s\x01auth=Bearer %s\x01\x01" % (
        credentials.user.encode(),
        credentials.secret.encode(),
    )


def oauthbearer_response(credentials: Credentials, server: Server) -> bytes:
    """RFC 7628 3.1: a GS2 header naming the user, then host, port and the bearer token."""
    user = credentials.user.replace("=", "=3D").replace(",", "=2C")  # RFC 5801 saslname
    return b"n,a=%s,\x01host=%s\x01port=%d\x01auth=Bearer %s\x01\x01" % (
        user.encode(),
        server.host.encode(),
        server.port,
        credentials.secret.encode(),
    )


def _base64(data: bytes) -> str:
    """``data`` in base64 (binascii's: the ``base64`` module costs every start its import)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


LOGIN = LoginCommand(ascii_only=True)
LOGIN_8BIT = LoginCommand(ascii_only=False)
PLAIN = Mechanism("PLAIN", PASSWORD, plain_response, "*", "\0")
OAUTHBEARER = Mechanism("OAUTHBEARER", TOKEN, oauthbearer_response, _base64(b"\x01"), "\x01")
XOAUTH2 = Mechanism("XOAUTH2", TOKEN, xoauth2_response, "", "\x01")

Way = LoginCommand | Mechanism
WAYS: tuple[Way, ...] = (LOGIN, PLAIN, LOGIN_8BIT, OAUTHBEARER, XOAUTH2)


def choose(
    credentials: Credentials, capabilities: frozenset[str], only: str | None = None
) -> Way | None:
    """The first of ``WAYS`` that fits (see the table above), or None: see ``no_way``.
    ``only`` names the one SASL mechanism the user chose (``auth = "xoauth2"``)."""
    for way in WAYS:
        if only is not None and way.name != only:
            continue
        if way.kind is credentials.kind and way.offered(capabilities) and way.carries(credentials):
            return way
    return None


def no_way(credentials: Credentials, where: str, only: str | None = None) -> str:
    """Why ``choose`` found nothing, for the user."""
    if only is not None:
        return f'{where} does not offer AUTH={only}, which auth = "{only.lower()}" asks for'
    if credentials.kind is TOKEN:
        return (
            f"{where} offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2, which an OAuth2 access "
            "token needs (use a password for this server)"
        )
    return (
        f"{where} offers no way to log in with this user and password: LOGIN is disabled "
        "(or cannot carry a CR, LF or NUL) and AUTHENTICATE PLAIN is not offered"
    )


class Exchange:
    """One AUTHENTICATE conversation as values: ``command`` to send, then ``answer`` to each
    challenge ("+ ..." line) until the server's tagged status.  ``refusal`` holds what the
    server said in a challenge after the initial response (e.g. an OAuth error report)."""

    def __init__(
        self, mechanism: Mechanism, credentials: Credentials, server: Server, sasl_ir: bool
    ) -> None:
        self.mechanism = mechanism
        response = mechanism.initial(credentials, server)
        self._response = Secret(_base64(response))
        self._sent = sasl_ir  # with SASL-IR the command carries the initial response
        self.refusal: str | None = None

    def command(self) -> list[Part]:
        parts: list[Part] = ["AUTHENTICATE", self.mechanism.name]
        return [*parts, self._response] if self._sent else parts

    def answer(self, challenge: bytes) -> str | Secret:
        """The line that answers ``challenge`` (the text after "+ ")."""
        if not self._sent:
            self._sent = True
            return self._response
        self.refusal = _readable(challenge)
        return self.mechanism.after_refusal


def _readable(challenge: bytes) -> str:
    """A challenge as text for an error message: decoded from base64 when it is printable."""
    import base64  # only for a refusal

    text = challenge.strip()
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = text.decode("ascii", "replace")
    shown = "".join(c if c.isprintable() else " " for c in decoded).strip()
    return shown[:200]


def _printable_ascii(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


def _quotable(text: str) -> bool:
    return not any(c in text for c in "\r\n\0")
