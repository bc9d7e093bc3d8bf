"""A server certificate's SHA-256 fingerprint: the pin of ``cert_fingerprint``.

One spelling is shown (``sha256:AB:CD:…``, what the key takes, so a user can paste
it from an error message); many are read: with or without ``sha256:``, with or
without colons, in either case (what ``openssl x509 -fingerprint -sha256`` and
OfflineIMAP's ``cert_fingerprint`` print).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


class BadFingerprint(ValueError):
    """Not a SHA-256 fingerprint; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The SHA-256 digest of a certificate's DER bytes."""

    digest: bytes

    @classmethod
    def of(cls, der: bytes) -> Fingerprint:
        """The fingerprint of a certificate in DER form."""
        import hashlib  # here: a start that pins no certificate does not load it (issue 12)

        return cls(hashlib.sha256(der).digest())

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        """``text`` as written in the config; ``BadFingerprint`` if it is not 64 hex digits."""
        plain = text.strip().lower()
        plain = plain.removeprefix(_PREFIX).replace(":", "")
        if not _HEX.fullmatch(plain):
            raise BadFingerprint(
                'must be a SHA-256 fingerprint: 64 hex digits, colons and "sha256:" optional'
                ' (e.g. "sha256:AB:CD:…", as `openssl x509 -noout -fingerprint -sha256` prints)'
            )
        return cls(bytes.fromhex(plain))

    def __str__(self) -> str:
        return _PREFIX + ":".join(f"{b:02X}" for b in self.digest)
