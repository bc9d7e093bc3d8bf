"""Certificates for the TLS tests, made with ``openssl`` into one directory.

``make_certificates(dir)`` writes (all PEM, EC P-256 keys, unencrypted):

- ``ca``: the CA that signs the servers' certificates (``ca.pem``, the tests' ``ca_file``);
- server certificates signed by it, each ``NAME.pem`` + ``NAME.key``: ``good``,
  ``expired`` (2020–2021) and ``future`` (2099–2100), all three for localhost and
  127.0.0.1, and ``wrong_name`` (for mail.example.org and imap.example.org only);
- ``client_ca``: the CA a server checks client certificates with, and ``client`` signed by
  it; ``expired_client`` signed by it too but expired (2020–2021); ``rogue`` is a client
  certificate from another CA (``other_ca``), ``stray.key`` a key that belongs to no
  certificate here.

Standard library only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_NAMES = "DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1"
WRONG_NAMES = "DNS:mail.example.org,DNS:imap.example.org"
EXPIRED = ("20200101000000Z", "20210101000000Z")
FUTURE = ("20990101000000Z", "21000101000000Z")


@dataclass(frozen=True, slots=True)
class Certificates:
    dir: Path

    def pem(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _key(dir: Path, name: str) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{name}.key", cwd=dir)  # fmt: skip


def _ca(dir: Path, name: str, subject: str) -> None:
    _key(dir, name)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-days", "3650", "-subj",
             f"/CN={subject}", "-out", f"{name}.pem", cwd=dir)  # fmt: skip
    (dir / f"{name}.db").mkdir()
    (dir / f"{name}.db" / "index.txt").write_text("")
    (dir / f"{name}.db" / "serial").write_text("1000\n")
    (dir / f"{name}.cnf").write_text(
        f"""[ca]
default_ca = this
[this]
dir = {dir / f"{name}.db"}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
"""
    )


def _signed(dir: Path, ca: str, name: str, dates: tuple[str, str], extensions: str) -> None:
    """``name``.pem for ``name``.key, signed by ``ca``, valid between ``dates``."""
    _key(dir, name)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out",
             f"{name}.csr", cwd=dir)  # fmt: skip
    (dir / f"{name}.ext").write_text(extensions)
    _openssl("ca", "-batch", "-config", f"{ca}.cnf", "-cert", f"{ca}.pem", "-keyfile",
             f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.pem", "-notext",
             "-startdate", dates[0], "-enddate", dates[1], "-extfile", f"{name}.ext",
             cwd=dir)  # fmt: skip


def _server(names: str) -> str:
    return f"basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName={names}\n"


_CLIENT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
_NOW = ("20240101000000Z", "20991231000000Z")


def make_certificates(dir: Path) -> Certificates:
    """Every certificate of the module docstring, in ``dir`` (created)."""
    dir.mkdir(parents=True, exist_ok=True)
    _ca(dir, "ca", "mailtide test CA")
    _signed(dir, "ca", "good", _NOW, _server(SERVER_NAMES))
    _signed(dir, "ca", "expired", EXPIRED, _server(SERVER_NAMES))
    _signed(dir, "ca", "future", FUTURE, _server(SERVER_NAMES))
    _signed(dir, "ca", "wrong_name", _NOW, _server(WRONG_NAMES))
    _ca(dir, "client_ca", "mailtide test client CA")
    _signed(dir, "client_ca", "client", _NOW, _CLIENT)
    _signed(dir, "client_ca", "expired_client", EXPIRED, _CLIENT)
    _ca(dir, "other_ca", "mailtide other CA")
    _signed(dir, "other_ca", "rogue", _NOW, _CLIENT)
    _key(dir, "stray")
    for key in dir.glob("*.key"):
        key.chmod(0o644)  # Dovecot's master reads them as root or as us; nothing secret
    return Certificates(dir)
