"""Why a TLS connection failed, in one line that says what to do.

OpenSSL says "certificate verify failed: certificate has expired" without the date, and
"hostname mismatch" without the names the certificate has; a server that does not speak
our TLS version often just closes the connection.  So after such a failure one more
connection, without verification, reads what the server presents (its certificate, the
version it speaks; for STARTTLS after the greeting and STARTTLS): nothing is sent over it
but the handshake, no credential.  Every error here is a plain ``StoreError``: a server
that fails this way fails the same way on a retry.

A client certificate the server wants or refuses is ``ClientCertificateRefused``, a refused
credential.  TLS 1.2 says so in the handshake; TLS 1.3 only after the client's side of it
has completed, in an alert on the client's first read.  A client that writes first (IMAP
after STARTTLS) may instead meet the reset of the server's close and never read the alert:
then one more connection with the same certificate reads without writing
(``refused_after_handshake``).
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime

from mailtide.deadline import within
from mailtide.stores.base import AuthenticationFailed, StoreError
from mailtide.stores.imap.tls_trust import TlsTrust
from mailtide.stores.imap.x509 import CertificateFacts, certificate_facts

# X509_V_ERR_* codes (openssl/x509_vfy.h)
_NOT_YET_VALID, _EXPIRED = 9, 10
_HOST_MISMATCH = frozenset({62, 64})  # host name, IP address
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
# What OpenSSL says when the two sides share no TLS version (a server may also just close).
_VERSION_REASONS = frozenset(
    {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"}
)
_VERSION_ORDER = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Alerts a server sends when it refuses the client certificate it got because it does not
# trust it, and (below) all those it sends when it wants one or refuses the one it got.
_UNTRUSTED_ALERTS = ("ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA", "ALERT_CERTIFICATE_UNKNOWN")
_CLIENT_CERT_ALERTS = (
    "ALERT_CERTIFICATE_REQUIRED",
    *_UNTRUSTED_ALERTS,
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNSUPPORTED_CERTIFICATE",
)


class ClientCertificateRefused(AuthenticationFailed):
    """The server wants a client certificate, or refused the one sent.  A certificate is a
    credential: like a refused password it is never retried within a run, and a daemon
    shows it as a failed login (not as a server out of reach)."""


@dataclass(frozen=True, slots=True)
class Server:
    """Where the failed connection went, and how TLS starts there."""

    host: str
    port: int
    starttls: bool
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Presented:
    """What a server showed an unverifying handshake."""

    version: str | None
    certificate: bytes | None


async def presented(server: Server, lowest: bool = False) -> Presented | None:
    """The server's certificate and TLS version, unverified; None if no handshake completes.
    ``lowest``: offer every version the local OpenSSL can still speak (from TLS 1.0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if lowest:
        try:
            # deprecated on purpose: only to name the old version a refused server speaks
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):  # an OpenSSL built without them
            pass
    try:
        return await within(_handshake(server, context), server.timeout)
    except (OSError, TimeoutError, ValueError):  # ssl.SSLError is an OSError
        return None


async def _handshake(server: Server, context: ssl.SSLContext) -> Presented:
    _, writer = await _connected(server, context)
    try:
        tls = writer.get_extra_info("ssl_object")
        return Presented(tls.version(), tls.getpeercert(binary_form=True))
    finally:
        writer.transport.abort()


async def _connected(
    server: Server, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose TLS handshake has completed (after STARTTLS when asked for)."""
    name = server.host
    if not server.starttls:
        return await asyncio.open_connection(
            server.host, server.port, ssl=context, server_hostname=name
        )
    reader, writer = await asyncio.open_connection(server.host, server.port)
    await reader.readline()  # the greeting
    writer.write(b"T STARTTLS\r\n")
    while True:  # the tagged answer (or the end)
        line = await reader.readline()
        if not line or line.startswith(b"T "):
            break
    await writer.start_tls(context, server_hostname=name)
    return reader, writer


async def verify_failed(e: ssl.SSLCertVerificationError, server: Server) -> StoreError:
    """The error for a certificate that did not verify, with what the user needs to fix it."""
    seen = await presented(server)
    facts = certificate_facts(seen.certificate) if seen and seen.certificate else None
    why = _explained(e.verify_code, server.host, facts) if facts else None
    return StoreError(
        f"TLS certificate verify failed for {server.where}: "
        + (why or str(e.verify_message or e.reason))
    )


def _explained(code: int, host: str, facts: CertificateFacts) -> str | None:
    if code == _EXPIRED and facts.not_after is not None:
        return (
            f"its certificate expired on {_day(facts.not_after)}; the server's administrator"
            " must renew it (check this machine's clock too)"
        )
    if code == _NOT_YET_VALID and facts.not_before is not None:
        return (
            f"its certificate is not valid before {_day(facts.not_before)}; check this"
            " machine's clock (or ask the server's administrator)"
        )
    if code in _HOST_MISMATCH and facts.names:
        return (
            f"its certificate is for {', '.join(facts.names)}, not {host}: set host to one of"
            " those names"
        )
    if code in _UNKNOWN_ISSUER:
        whose = (
            "it is self-signed"
            if facts.self_signed
            else f"its issuer ({facts.issuer or 'unnamed'}) is not a CA this machine trusts"
        )
        return (
            f"{whose}. Set ca_file to the CA's certificate, or pin this certificate with"
            f' cert_fingerprint = "{facts.fingerprint}" once you have checked that fingerprint'
            " with the server's administrator"
        )
    return None


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def shares_no_version(e: ssl.SSLError) -> bool:
    """Whether a failed handshake may mean the two sides share no TLS version."""
    return isinstance(e, ssl.SSLEOFError) or (e.reason or "").upper() in _VERSION_REASONS


async def version_refused(server: Server, trust: TlsTrust) -> StoreError | None:
    """The error for a server that speaks only TLS older than ``trust.min_version``, if that
    is what it does (None when the probe says otherwise or says nothing)."""
    seen = await presented(server, lowest=True)
    wanted = f"TLSv{trust.min_version}"
    if seen is None or seen.version not in _VERSION_ORDER:
        return None
    if _VERSION_ORDER.index(seen.version) >= _VERSION_ORDER.index(wanted):
        return None
    return StoreError(
        f"{server.where} speaks {seen.version}, older than tls_min_version ="
        f' "{trust.min_version}": the server must be upgraded'
        + (' (or set tls_min_version = "1.2")' if trust.min_version == "1.3" else "")
    )


def no_version(server: Server, trust: TlsTrust) -> StoreError:
    """The error for a handshake OpenSSL refused for the version, when the probe told nothing
    (this machine's OpenSSL cannot even offer what the server speaks)."""
    return StoreError(
        f"{server.where} does not speak TLS {trust.min_version} or newer (tls_min_version):"
        " the server must be upgraded"
    )


def is_client_certificate_alert(e: ssl.SSLError) -> bool:
    """Whether ``e`` is the server's alert about our client certificate (or its absence)."""
    reason = (e.reason or "").upper()
    return any(alert in reason for alert in _CLIENT_CERT_ALERTS)


def client_certificate_refused(
    e: ssl.SSLError, where: str, trust: TlsTrust
) -> ClientCertificateRefused | None:
    """The error for a server that refused our client certificate (or wants one), if the
    TLS alert says so; in the handshake or, with TLS 1.3, after it."""
    if not is_client_certificate_alert(e):
        return None
    reason = (e.reason or "").upper()
    untrusted = any(alert in reason for alert in _UNTRUSTED_ALERTS)
    return client_certificate_error(where, trust, _alert_words(reason), untrusted)


async def refused_after_handshake(
    server: Server, context: ssl.SSLContext, trust: TlsTrust
) -> ClientCertificateRefused | None:
    """For a connection lost right after its TLS 1.3 handshake, before the server said a
    word over TLS: whether the server refuses our client certificate.  One more connection
    with the same ``context`` (the same certificate, the server verified as before) reads
    without writing, for at most ``server.timeout``: the alert, or None (the greeting, or
    silence: a server waiting for a command after STARTTLS)."""
    try:
        alert = await within(_first_read(server, context), server.timeout)
    except (OSError, TimeoutError, ValueError):  # ssl.SSLError is an OSError
        return None
    return client_certificate_refused(alert, server.where, trust) if alert else None


async def _first_read(server: Server, context: ssl.SSLContext) -> ssl.SSLError | None:
    reader, writer = await _connected(server, context)
    try:
        await reader.read(1)
    except ssl.SSLError as e:
        return e
    finally:
        writer.transport.abort()
    return None


def _alert_words(reason: str) -> str:
    """``TLSV13_ALERT_CERTIFICATE_REQUIRED`` as ``TLS alert: certificate required``."""
    _, alert, what = reason.partition("ALERT_")
    return f"TLS alert: {what.lower().replace('_', ' ')}" if alert else reason


def client_certificate_error(
    where: str, trust: TlsTrust, said: str, untrusted: bool = False
) -> ClientCertificateRefused:
    """The error for a server that wants a client certificate (none was set) or refused the
    one set; ``said``: its words or its alert; ``untrusted``: it said it does not trust it."""
    if trust.client_cert is None:
        return ClientCertificateRefused(
            f"{where} wants a client certificate ({said}): set client_cert (and client_key)"
            " to a certificate the server trusts"
        )
    if untrusted:
        return ClientCertificateRefused(
            f"{where} refused the client certificate {trust.client_cert} ({said}): the server"
            " does not trust it; set client_cert (and client_key) to one from a CA the server"
            " trusts"
        )
    return ClientCertificateRefused(
        f"{where} refused the client certificate {trust.client_cert} ({said}): check that"
        " client_cert is one the server accepts (its CA, its dates)"
    )
