"""Whom a TLS connection trusts and how it presents itself: the ``SSLContext`` and the pin.

- ``ca_file`` (else the system store) verifies the chain, and the host name is checked;
- ``fingerprint`` pins the server's certificate (SHA-256 of its DER bytes).  Alone, the pin
  is the whole check: the chain and the host name are not verified (a self-signed server's
  certificate is trusted because it is that one certificate).  With a ``ca_file`` both must
  hold.  The pin is checked right after the handshake, before anything else is sent;
- ``min_version``: TLS 1.2 or 1.3, never lower;
- ``client_cert``/``client_key``: a client certificate for servers that ask for one.

Every mistake with the client's files is a ``StoreError`` naming the file, raised when the
context is made (before any connection).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from mailtide.core.fingerprint import Fingerprint
from mailtide.stores.base import StoreError

TlsVersion = Literal["1.2", "1.3"]
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class PinMismatch(StoreError):
    """The server's certificate is not the pinned one."""


class _Encrypted(Exception):
    """The client key asks for a passphrase (asked for instead of prompting on a terminal)."""


@dataclass(frozen=True, slots=True)
class TlsTrust:
    ca_file: str | None = None
    min_version: TlsVersion = "1.2"
    client_cert: str | None = None
    client_key: str | None = None  # None: in client_cert's file
    fingerprint: Fingerprint | None = None

    @property
    def pin_only(self) -> bool:
        """Whether the pin alone decides (no chain or host name check)."""
        return self.fingerprint is not None and self.ca_file is None


def tls_context(trust: TlsTrust) -> ssl.SSLContext:
    """The context a server is verified with (see the module docstring)."""
    context = ssl.create_default_context(cafile=trust.ca_file)
    if trust.pin_only:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = _VERSIONS[trust.min_version]
    if trust.client_cert is not None:
        _load_client_certificate(context, trust.client_cert, trust.client_key)
    return context


def _load_client_certificate(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    def no_passphrase() -> str:
        raise _Encrypted

    key_file = key or cert
    try:
        context.load_cert_chain(cert, key, password=no_passphrase)
    except _Encrypted:
        raise StoreError(
            f"the client key {key_file} is protected by a passphrase, which mailtide cannot"
            f" ask for: decrypt it (openssl pkey -in {key_file} -out NEW.pem) and set"
            " client_key to the new file (mode 600)"
        ) from None
    except ssl.SSLError as e:
        raise StoreError(_unloadable(cert, key, e)) from None
    except OSError as e:
        raise StoreError(f"cannot read the client certificate or key: {e}") from None


def _unloadable(cert: str, key: str | None, e: ssl.SSLError) -> str:
    reason = (e.reason or "").upper()
    if reason == "KEY_VALUES_MISMATCH":
        return (
            f"the client key {key or cert} does not belong to the client certificate {cert}:"
            " set client_key to the certificate's own key"
        )
    if key is None and reason in ("PEM_LIB", "NO_START_LINE", ""):
        return (
            f"the client certificate {cert} holds no private key: set client_key to the file"
            " of its key"
        )
    return f"cannot use the client certificate {cert} with the key {key or cert}: {e.reason or e}"


def check_pin(
    trust: TlsTrust, ssl_object: ssl.SSLObject | ssl.SSLSocket | None, where: str
) -> None:
    """Raise ``PinMismatch`` unless the server's certificate has the pinned fingerprint."""
    if trust.fingerprint is None:
        return
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if der is None:
        raise PinMismatch(f"{where} sent no certificate to compare with cert_fingerprint")
    found = Fingerprint.of(der)
    if found != trust.fingerprint:
        raise PinMismatch(
            f"the certificate of {where} does not match cert_fingerprint: the server's is"
            f' "{found}". If the server\'s certificate was renewed, check this fingerprint'
            " with its administrator and set cert_fingerprint to it"
        )
