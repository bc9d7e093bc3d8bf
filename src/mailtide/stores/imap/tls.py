"""TLS for IMAP: a TLS mode set the wrong way round (whom TLS trusts: tls_trust.py).

Two mistakes are common with a new account, and both used to fail slowly and in jargon:

- ``tls = "starttls"`` or ``"none"`` on an implicit-TLS port (993): the server
  waits for a TLS ClientHello and says nothing, so we waited ``timeout`` for a
  greeting, once per retry.  Now, when no greeting comes within
  ``GREETING_WAIT`` seconds, one TLS handshake on a second connection tells
  whether the port speaks TLS from the first byte;
- ``tls = "implicit"`` on a plain port (143): the server's ``* OK`` greeting
  reaches the TLS handshake (``WRONG_VERSION_NUMBER``).  Now, when a handshake
  fails, a plain connection tells whether the port greets in clear text.

Either is a ``TlsMismatch``: a mistake in the config, never retried, with the
setting to use.  A probe that proves nothing leaves the first error as it was.
"""

from __future__ import annotations

import asyncio
import ssl

from mailtide.deadline import within
from mailtide.stores.base import StoreError

# Seconds without a greeting before a port is suspected of speaking TLS (a third of
# ``timeout`` when that is smaller); also the bound of each probe.
GREETING_WAIT = 5.0

_GREETINGS = (b"* OK", b"* PREAUTH", b"* BYE")
# What OpenSSL says when the first bytes from the peer are not a TLS record (a greeting in
# clear text): the only handshake failures worth asking the port about.
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "WRONG_SSL_VERSION",
    }
)


class TlsMismatch(StoreError):
    """The port speaks TLS from the first byte where ``tls`` says it does not, or the
    other way round.  The message says which setting to use."""


def greeting_wait(timeout: float) -> float:
    """How long to wait for a greeting before probing the port for TLS."""
    return min(GREETING_WAIT, timeout / 3)


def wants_implicit(where: str) -> TlsMismatch:
    return TlsMismatch(
        f'{where} speaks TLS from the first byte: set tls = "implicit" '
        '(or use the server\'s plain port, usually 143, with tls = "starttls")'
    )


def wants_plain(where: str) -> TlsMismatch:
    return TlsMismatch(
        f"{where} speaks plain IMAP, not TLS from the first byte: set "
        'tls = "starttls" (or use the server\'s TLS port, usually 993, with tls = "implicit")'
    )


def not_tls(error: ssl.SSLError) -> bool:
    """Whether a handshake failed because the peer's bytes were not TLS at all."""
    return (error.reason or "").upper() in _NOT_TLS_REASONS


async def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` answers a TLS ClientHello: a handshake that completes, or that
    the server refuses with a TLS alert.  Nothing is sent but the handshake."""
    # No verification: only the protocol is asked about, no credential goes over it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await within(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout
        )
    except ssl.SSLError as e:
        return "ALERT" in (e.reason or "")
    except (OSError, TimeoutError):
        return False
    writer.transport.abort()
    return True


async def greets_in_plain(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` sends an IMAP greeting in clear text on connect."""
    try:
        reader, writer = await within(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        first = await within(reader.readline(), timeout)
    except (OSError, TimeoutError, ValueError):  # ValueError: a line over 64 KiB
        return False
    finally:
        writer.transport.abort()
    return first.upper().startswith(_GREETINGS)
