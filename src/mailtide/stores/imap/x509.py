"""What an error message needs from a server certificate that did not verify: its names, its
validity dates, its issuer and its fingerprint, read from the DER bytes.

The standard library decodes a certificate only after it verified, so this reads the few
DER fields itself.  It never decides trust; a certificate it cannot read gives ``None``
fields, and the message says less.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from mailtide.core.fingerprint import Fingerprint

_CN = bytes.fromhex("550403")  # 2.5.4.3 commonName
_SAN = bytes.fromhex("551d11")  # 2.5.29.17 subjectAltName
_SEQUENCE, _OID, _OCTETS, _EXTENSIONS = 0x30, 0x06, 0x04, 0xA3
_DNS_NAME, _IP_ADDRESS = 0x82, 0x87


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    fingerprint: Fingerprint
    names: tuple[str, ...] = ()  # subjectAltName's DNS names and addresses, else the CN
    not_before: datetime | None = None
    not_after: datetime | None = None
    subject: str | None = None  # commonName
    issuer: str | None = None  # commonName
    self_signed: bool = False


def certificate_facts(der: bytes) -> CertificateFacts:
    """The facts of a DER certificate, as far as they can be read."""
    try:
        return _read(der)
    except (IndexError, ValueError):
        return CertificateFacts(Fingerprint.of(der))


def _read(der: bytes) -> CertificateFacts:
    (_, certificate), *_ = _items(der)
    (_, tbs), *_ = _items(certificate)
    fields = [value for tag, value in _items(tbs) if tag != 0xA0]  # [0]: the version
    _serial, _algorithm, issuer, validity, subject = fields[:5]
    (_, start), (_, end) = ((t, _time(t, v)) for t, v in _items(validity))
    extensions = next((v for t, v in _items(tbs) if t == _EXTENSIONS), b"")
    subject_cn = _common_name(subject)
    names = _alt_names(extensions) or ((subject_cn,) if subject_cn else ())
    return CertificateFacts(
        Fingerprint.of(der),
        names,
        start,
        end,
        subject_cn,
        _common_name(issuer),
        issuer == subject,
    )


def _items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (tag, value) pairs of a run of DER items."""
    i = 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > len(data):
            raise ValueError("truncated DER")
        yield tag, data[i : i + length]
        i += length


def _time(tag: int, value: bytes) -> datetime:
    text = value.decode("ascii")
    form = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"  # UTCTime, GeneralizedTime
    return datetime.strptime(text, form).replace(tzinfo=UTC)


def _common_name(name: bytes) -> str | None:
    for _, rdn in _items(name):
        for _, attribute in _items(rdn):
            (_, oid), (_, value) = list(_items(attribute))[:2]
            if oid == _CN:
                return value.decode("utf-8", "replace")
    return None


def _alt_names(extensions: bytes) -> tuple[str, ...]:
    for _, sequence in _items(extensions):
        for _, extension in _items(sequence):
            parts = list(_items(extension))
            if parts[0] == (_OID, _SAN):
                (_, general_names), *_ = _items(parts[-1][1])
                found = (_general_name(t, v) for t, v in _items(general_names)
                         if t in (_DNS_NAME, _IP_ADDRESS))  # fmt: skip
                return tuple(dict.fromkeys(found))
    return ()


def _general_name(tag: int, value: bytes) -> str:
    if tag == _IP_ADDRESS:
        return str(ipaddress.ip_address(value))
    return value.decode("ascii", "replace")
