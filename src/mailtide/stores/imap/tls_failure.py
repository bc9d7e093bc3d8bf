"""Why a TLS connection failed, in one line that says what to do.

OpenSSL says "certificate verify failed: certificate has expired" without the date, and
"hostname mismatch" without the names the certificate has; a server that does not speak
our TLS version often just closes the connection.  So after such a failure one more
connection, without verification, reads what the server presents (its certificate, the
version it speaks; for STARTTLS after the greeting and STARTTLS): nothing is sent over it
but the handshake, no credential.  Every error here is a plain ``StoreError``: a server
that fails this way fails the same way on a retry.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import datetime

from mailtide.stores.base import StoreError
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
# Alerts a server sends when it wants a client certificate or refuses the one it got.
_CLIENT_CERT_ALERTS = (
    "ALERT_CERTIFICATE_REQUIRED",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNKNOWN_CA",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNSUPPORTED_CERTIFICATE",
)


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
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):  # an OpenSSL built without them
            pass
    try:
        return await asyncio.wait_for(_handshake(server, context), server.timeout)
    except (OSError, TimeoutError, ValueError):  # ssl.SSLError is an OSError
        return None


async def _handshake(server: Server, context: ssl.SSLContext) -> Presented:
    name = server.host
    if not server.starttls:
        reader, writer = await asyncio.open_connection(
            server.host, server.port, ssl=context, server_hostname=name
        )
    else:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        await reader.readline()  # the greeting
        writer.write(b"T STARTTLS\r\n")
        while True:  # the tagged answer (or the end)
            line = await reader.readline()
            if not line or line.startswith(b"T "):
                break
        await writer.start_tls(context, server_hostname=name)
    try:
        tls = writer.get_extra_info("ssl_object")
        return Presented(tls.version(), tls.getpeercert(binary_form=True))
    finally:
        writer.transport.abort()


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


def client_certificate_refused(e: ssl.SSLError, where: str, trust: TlsTrust) -> StoreError | None:
    """The error for a server that refused our client certificate (or wants one), if the
    TLS alert says so."""
    reason = (e.reason or "").upper()
    if not any(alert in reason for alert in _CLIENT_CERT_ALERTS):
        return None
    return client_certificate_error(where, trust, reason)


def client_certificate_error(where: str, trust: TlsTrust, said: str) -> StoreError:
    if trust.client_cert is None:
        return StoreError(
            f"{where} wants a client certificate ({said}): set client_cert (and client_key)"
        )
    return StoreError(
        f"{where} refused the client certificate {trust.client_cert} ({said}): check that it"
        " is one the server accepts (its CA, its dates)"
    )
