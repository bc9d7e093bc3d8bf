"""The TLS keys of an IMAP repository: tls_min_version, client_cert/client_key, cert_fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ImapRepository
from mailtide.core.fingerprint import Fingerprint

from .remote_helpers import refused, remote_of

BASE = """\
[account.work]
local = "work-local"
remote = "work-remote"

[repository.work-local]
type = "maildir"
path = "Mail"

[repository.work-remote]
type = "imap"
host = "127.0.0.1"
user = "me"
password = "x"
"""
PEM = "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n"
HEX = "ab" * 32
SHOWN = "sha256:" + ":".join(["AB"] * 32)


def load(tmp_path: Path, extra: str) -> ImapRepository:
    (tmp_path / "config.toml").write_text(BASE + extra)
    (tmp_path / "client.pem").write_text(PEM)
    (tmp_path / "key.pem").write_text(PEM.replace("CERTIFICATE", "PRIVATE KEY"))
    return remote_of(tmp_path / "config.toml", "work")


def problems(tmp_path: Path, extra: str) -> list[str]:
    return refused(lambda: load(tmp_path, extra))


def test_defaults(tmp_path: Path) -> None:
    remote = load(tmp_path, "")
    assert (remote.tls_min_version, remote.client_cert, remote.client_key) == ("1.2", None, None)
    assert remote.cert_fingerprint is None


@pytest.mark.parametrize(
    "written", [f'"{HEX}"', f'"{SHOWN}"', f'"{SHOWN.lower()}"', f'"{HEX.upper()}"']
)
def test_fingerprint_spellings(tmp_path: Path, written: str) -> None:
    remote = load(tmp_path, f"cert_fingerprint = {written}\n")
    assert remote.cert_fingerprint == Fingerprint(bytes.fromhex(HEX))
    assert str(remote.cert_fingerprint) == SHOWN  # the one spelling shown, which parses back


def test_all_keys_together(tmp_path: Path) -> None:
    remote = load(
        tmp_path,
        'tls_min_version = "1.3"\nclient_cert = "client.pem"\nclient_key = "key.pem"\n',
    )
    assert remote.tls_min_version == "1.3"
    assert (remote.client_cert, remote.client_key) == (
        tmp_path / "client.pem",
        tmp_path / "key.pem",
    )


def test_key_may_be_in_the_certificate_file(tmp_path: Path) -> None:
    remote = load(tmp_path, 'client_cert = "client.pem"\n')
    assert (remote.client_cert, remote.client_key) == (tmp_path / "client.pem", None)


FILE = "config.toml:14: repository.work-remote"
BAD = [
    ('tls_min_version = "1.1"', f"{FILE}.tls_min_version: TLS older than 1.2 is refused"),
    ('tls_min_version = "1.0"', f"{FILE}.tls_min_version: TLS older than 1.2 is refused"),
    ('tls_min_version = "2"', f'{FILE}.tls_min_version: must be "1.2" or "1.3", not "2"'),
    ("tls_min_version = 1.1", f"{FILE}.tls_min_version: TLS older than 1.2 is refused"),
    ('cert_fingerprint = "ab:cd"', f"{FILE}.cert_fingerprint: must be a SHA-256 fingerprint"),
    (f'cert_fingerprint = "sha1:{HEX}"', f"{FILE}.cert_fingerprint: must be a SHA-256"),
    ('client_key = "key.pem"', f'{FILE}.client_key: needs "client_cert" too'),
    ('client_cert = "nope.pem"', f"{FILE}.client_cert: no such file: "),
    ('client_cert = "config.toml"', f"{FILE}.client_cert: not a PEM file"),
    ('client_cert = "."', f"{FILE}.client_cert: is a directory"),
    (
        'tls = "none"\ncert_fingerprint = "' + HEX + '"',
        'config.toml:15: repository.work-remote.cert_fingerprint: means nothing with tls = "none"',
    ),
    (
        'tls = "none"\nclient_cert = "client.pem"',
        'config.toml:15: repository.work-remote.client_cert: means nothing with tls = "none"',
    ),
]


@pytest.mark.parametrize(("extra", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_tls_keys(tmp_path: Path, extra: str, expected: str) -> None:
    (found,) = problems(tmp_path, extra + "\n")
    assert found.removeprefix(f"{tmp_path}/").startswith(expected), found
