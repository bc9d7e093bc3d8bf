"""The TLS keys of an IMAP repository beyond ``tls`` and ``ca_file``: their readers, and the
rules between them (``clashes``).

- ``tls_min_version``: "1.2" (default) or "1.3"; older versions are refused, they are
  broken and servers that still need them must be upgraded, not accommodated;
- ``client_cert`` and ``client_key``: PEM files; the key may be left out when the
  certificate's file holds it too, but a key without a certificate is a mistake;
- ``cert_fingerprint``: a SHA-256 pin of the server's certificate (``core.fingerprint``).

None of them means anything without TLS, so with ``tls = "none"`` each is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mailtide.config.model import TLS_VERSIONS, Tls, TlsVersion
from mailtide.config.show import show_value
from mailtide.config.values import BadValue, expect
from mailtide.core.fingerprint import BadFingerprint, Fingerprint

NAMES = ("tls_min_version", "client_cert", "client_key", "cert_fingerprint")
FILE_KEYS = ("client_cert", "client_key")


def tls_version(value: object, _: Path) -> TlsVersion:
    """ "1.2" or "1.3" (a TOML number 1.2 or 1.3 is taken too: it is what was meant)."""
    if isinstance(value, float) and not isinstance(value, bool):
        value = f"{value:g}"
    text = expect(value, (str,), 'a string, "1.2" or "1.3"')
    shown = text.strip().upper().removeprefix("TLSV").removeprefix("TLS").strip()
    for version in TLS_VERSIONS:
        if shown == version:
            return version
    if shown in ("1", "1.0", "1.1", "SSLV3", "SSL3"):
        raise BadValue(
            f"TLS older than 1.2 is refused ({show_value(text)}): it is no longer safe, and"
            ' mailtide does not speak it; use "1.2" (the default) or "1.3"'
        )
    raise BadValue(f'must be "1.2" or "1.3", not {show_value(text)}')


def fingerprint(value: object, _: Path) -> Fingerprint:
    text = expect(value, (str,), 'a string such as "sha256:AB:CD:…"')
    try:
        return Fingerprint.parse(text)
    except BadFingerprint as e:
        raise BadValue(f"{e}, not {show_value(text)}") from None


def clashes(table: Mapping[str, object], tls: Tls) -> list[tuple[str | None, str]]:
    """Problems between the keys: (the key to blame, or None for the table; the message)."""
    found: list[tuple[str | None, str]] = []
    if tls == "none":
        for key in NAMES:
            if key in table:
                found.append((key, 'means nothing with tls = "none" (no TLS): remove it'))
        return found
    if "client_key" in table and "client_cert" not in table:
        found.append(
            ("client_key", 'needs "client_cert" too (the certificate that goes with the key)')
        )
    return found


def unreadable(file: Path) -> str | None:
    """Why ``file`` cannot be read as a PEM file, or None."""
    try:
        with open(file, "rb") as f:
            head = f.read(1 << 20)
    except FileNotFoundError:
        return f"no such file: {file}"
    except IsADirectoryError:
        return f"is a directory, not a PEM file: {file}"
    except OSError as e:
        return f"cannot read {file}: {e.strerror or e}"
    if b"-----BEGIN " not in head:
        return f"not a PEM file (no -----BEGIN line): {file}"
    return None
