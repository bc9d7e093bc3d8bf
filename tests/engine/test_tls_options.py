"""TLS options and TLS failures through a whole sync against real, private Dovecots: each
failure is one line naming host:port and what to do, on one attempt (plus the one unverified
connection that reads what the server presents), never retried.

Servers (session-scoped, certificates from tests/tls_certs.py):
- ``tls_dovecot``: the ``good`` certificate on 127.0.0.1, ``expired``, ``future`` and
  ``wrong_name`` on further loopback addresses (reached through a FaultProxy on 127.0.0.1,
  which also counts connections);
- ``client_cert_dovecot``: asks for a client certificate of ``client_ca`` and refuses a login
  without one (``ssl_verify_client_cert``, ``auth_ssl_require_client_cert``);
- ``old_tls_dovecot``: speaks TLS 1.0 and 1.1 only (Dovecot 2.3 has no ``ssl_max_protocol``,
  so its OpenSSL is limited by an OPENSSL_CONF).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from dovecot import Dovecot, ImapAccount, private_dovecot
from engine_helpers import Setup, assert_in_sync, make_setup, run_forked, write_config
from fault_proxy import FaultProxy
from imap_helpers import append, fetch_all, make_message, message_id
from log_helpers import one_error_line
from maildir_helpers import deliver, messages
from mailtide.core.fingerprint import Fingerprint
from tls_certs import Certificates, make_certificates
from tls_front import TlsFront

SERVED = {"127.0.0.3": "expired", "127.0.0.4": "future", "127.0.0.5": "wrong_name"}
_OLD_OPENSSL = """openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = limits
[limits]
MinProtocol = TLSv1
MaxProtocol = TLSv1.1
CipherString = DEFAULT@SECLEVEL=0
"""


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def tls_dovecot(certs: Certificates) -> Iterator[Dovecot]:
    yield from private_dovecot(
        certificate=(certs.pem("good"), certs.key("good")),
        ca_file=certs.pem("ca"),
        local_certificates={ip: (certs.pem(n), certs.key(n)) for ip, n in SERVED.items()},
    )


@pytest.fixture(scope="session")
def client_cert_dovecot(certs: Certificates) -> Iterator[Dovecot]:
    yield from private_dovecot(
        certificate=(certs.pem("good"), certs.key("good")),
        ca_file=certs.pem("ca"),
        ssl_settings=(
            f"ssl_verify_client_cert = yes\nssl_ca = <{certs.pem('client_ca')}\n"
            "ssl_require_crl = no\nauth_ssl_require_client_cert = yes\n"
        ),
    )


@pytest.fixture(scope="session")
def old_tls_dovecot(certs: Certificates) -> Iterator[Dovecot]:
    conf = certs.dir / "old-openssl.cnf"
    conf.write_text(_OLD_OPENSSL)
    yield from private_dovecot(
        certificate=(certs.pem("good"), certs.key("good")),
        ca_file=certs.pem("ca"),
        ssl_min_protocol="TLSv1",
        ssl_settings=(
            f"import_environment = $import_environment OPENSSL_CONF={conf}\n"
            "ssl_cipher_list = DEFAULT@SECLEVEL=0\n"
        ),
    )


def fingerprint(file: Path) -> Fingerprint:
    return Fingerprint.of(ssl.PEM_cert_to_DER_cert(file.read_text()))


def setup(imap: ImapAccount, tmp: Path, port: int, **tls: object) -> Setup:
    s = make_setup(imap, tmp, port=port, **{"tls": "implicit", **tls})
    return s.with_account(retries=3, retry_delay=0.01)


def fails_once(s: Setup, proxy: FaultProxy, connections: int = 2) -> str:
    """The one failure line of a sync that is not retried."""
    report = s.sync()
    (line,) = report.failures()
    assert "attempt" not in line and "Traceback" not in line, line
    assert proxy.connections == connections, "retried"
    assert not list(s.root.iterdir()), "nothing is created locally"
    return line


def user(server: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    return server.account("tls-" + "".join(c for c in request.node.name if c.isalnum())[:40])


# ---- the server's certificate ---------------------------------------------------------------


CERTIFICATE_FAILURES = {
    # name: (the address served, ca_file?, the message after "verify failed for HOST:PORT: ")
    "expired": ("127.0.0.3", True, "its certificate expired on 2021-01-01 00:00 UTC"),
    "not yet valid": ("127.0.0.4", True, "its certificate is not valid before 2099-01-01"),
    "wrong host name": (
        "127.0.0.5",
        True,
        "its certificate is for mail.example.org, imap.example.org, not 127.0.0.1: set host",
    ),
    "unknown issuer": (
        "127.0.0.1",
        False,
        "its issuer (mailtide test CA) is not a CA this machine trusts. Set ca_file",
    ),
}


@pytest.mark.parametrize("case", list(CERTIFICATE_FAILURES))
def test_a_certificate_that_does_not_verify_says_why(
    tls_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    case: str,
) -> None:
    address, with_ca, why = CERTIFICATE_FAILURES[case]
    with FaultProxy(tls_dovecot.imaps_port, address) as proxy:
        ca_file = certs.pem("ca") if with_ca else None
        s = setup(user(tls_dovecot, request), tmp_path, proxy.port, ca_file=ca_file)
        line = fails_once(s, proxy)
    assert line.startswith(
        f"account test: TLS certificate verify failed for 127.0.0.1:{proxy.port}: {why}"
    ), line
    if case == "unknown issuer":  # the fingerprint to check and paste
        assert f'cert_fingerprint = "{fingerprint(certs.pem("good"))}"' in line, line


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_mailtide_sync_shows_a_certificate_failure_in_one_line(
    tls_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    tls: str,
) -> None:
    """What the user sees: exit 1 and the one line, nothing before it (with STARTTLS the
    connection broke after the greeting, which was logged as a broken connection too)."""
    port = tls_dovecot.imaps_port if tls == "implicit" else tls_dovecot.port
    s = setup(user(tls_dovecot, request), tmp_path, port, tls=tls)  # no ca_file: self-signed CA
    code, output = run_forked(write_config(s))
    assert code == 1, output
    assert one_error_line(output).startswith(
        f"mailtide: account test: TLS certificate verify failed for 127.0.0.1:{port}: its"
        " issuer (mailtide test CA) is not a CA this machine trusts."
    ), output


@pytest.mark.parametrize("with_ca", [False, True], ids=["pin-alone", "pin-and-ca"])
def test_a_matching_pin_syncs(
    tls_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    with_ca: bool,
) -> None:
    s = setup(
        user(tls_dovecot, request),
        tmp_path,
        tls_dovecot.imaps_port,
        ca_file=certs.pem("ca") if with_ca else None,
        cert_fingerprint=fingerprint(certs.pem("good")),
    )
    report = s.sync()
    assert not report.failed, report.failures()
    assert (s.root / "INBOX").is_dir()


def test_a_pin_alone_checks_neither_chain_nor_host_name(
    tls_dovecot: Dovecot, certs: Certificates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with FaultProxy(tls_dovecot.imaps_port, "127.0.0.5") as proxy:  # wrong_name, no ca_file
        s = setup(
            user(tls_dovecot, request),
            tmp_path,
            proxy.port,
            cert_fingerprint=fingerprint(certs.pem("wrong_name")),
        )
        report = s.sync()
    assert not report.failed, report.failures()


@pytest.mark.parametrize("with_ca", [False, True], ids=["pin-alone", "pin-and-ca"])
@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_a_pin_mismatch_shows_the_servers_fingerprint(
    tls_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    with_ca: bool,
    tls: str,
) -> None:
    port = tls_dovecot.imaps_port if tls == "implicit" else tls_dovecot.port
    with FaultProxy(port) as proxy:
        s = setup(
            user(tls_dovecot, request),
            tmp_path,
            proxy.port,
            tls=tls,
            ca_file=certs.pem("ca") if with_ca else None,
            cert_fingerprint=fingerprint(certs.pem("expired")),  # another certificate's
        )
        line = fails_once(s, proxy, connections=1)
    assert line.startswith(
        f"account test: the certificate of 127.0.0.1:{proxy.port} does not match"
        f' cert_fingerprint: the server\'s is "{fingerprint(certs.pem("good"))}".'
    ), line


# ---- client certificates --------------------------------------------------------------------


def test_a_client_certificate_the_server_requires(
    client_cert_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    s = setup(
        user(client_cert_dovecot, request),
        tmp_path,
        client_cert_dovecot.imaps_port,
        ca_file=certs.pem("ca"),
        client_cert=certs.pem("client"),
        client_key=certs.key("client"),
    )
    report = s.sync()
    assert not report.failed, report.failures()
    assert (s.root / "INBOX").is_dir()


CLIENT_FAILURES = {
    "none": ({}, "wants a client certificate"),
    "from another CA": (
        {"client_cert": "rogue.pem", "client_key": "rogue.key"},
        "refused the client certificate {dir}/rogue.pem",
    ),
}


@pytest.mark.parametrize("case", list(CLIENT_FAILURES))
def test_a_client_certificate_refused_says_so(
    client_cert_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    case: str,
) -> None:
    files, said = CLIENT_FAILURES[case]
    with FaultProxy(client_cert_dovecot.imaps_port) as proxy:
        s = setup(
            user(client_cert_dovecot, request),
            tmp_path,
            proxy.port,
            ca_file=certs.pem("ca"),
            **{key: certs.dir / name for key, name in files.items()},
        )
        line = fails_once(s, proxy, connections=1)
    assert line.startswith(f"account test: 127.0.0.1:{proxy.port} " + said.format(dir=certs.dir)), (
        line
    )


# A server that refuses in TLS 1.3 itself (tests/tls_front.py, before the session's Dovecot):
# its alert comes after the client's handshake, on the first read (the greeting; with
# STARTTLS the CAPABILITY after it).  It is not a lost connection: one attempt, one line.
AFTER_HANDSHAKE = {
    "none": (None, "wants a client certificate (TLS alert: certificate required): set"),
    "from another CA": (
        "rogue",
        "refused the client certificate {dir}/rogue.pem (TLS alert: unknown ca): the server"
        " does not trust it",
    ),
    "expired": (
        "expired_client",
        "refused the client certificate {dir}/expired_client.pem (TLS alert: certificate"
        " expired): check that client_cert is one the server accepts (its CA, its dates)",
    ),
}


def fronted(
    imap: ImapAccount, tmp: Path, certs: Certificates, front: TlsFront, client: str | None
) -> Setup:
    s = make_setup(
        imap,
        tmp,
        port=front.port,
        tls="starttls" if front.starttls else "implicit",
        ca_file=certs.pem("ca"),
        client_cert=certs.pem(client) if client else None,
        client_key=certs.key(client) if client else None,
    )
    return s.with_account(retries=3, retry_delay=0.01)


def front_of(imap: ImapAccount, certs: Certificates, tls: str) -> TlsFront:
    return TlsFront(
        imap.port,
        (certs.pem("good"), certs.key("good")),
        certs.pem("client_ca"),
        starttls=tls == "starttls",
    )


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("case", list(AFTER_HANDSHAKE))
def test_a_client_certificate_refused_after_the_handshake_is_not_retried(
    imap_account: ImapAccount, certs: Certificates, tmp_path: Path, case: str, tls: str
) -> None:
    client, said = AFTER_HANDSHAKE[case]
    with front_of(imap_account, certs, tls) as front:
        report = fronted(imap_account, tmp_path, certs, front, client).sync()
        (line,) = report.failures()
        # One attempt.  After STARTTLS the client writes first, and the reset of the server's
        # close may overtake its alert: then one more connection reads the alert.
        assert 1 <= front.connections <= (1 if tls == "implicit" else 2), "retried"
        assert len(front.refused) == front.connections, front.refused  # refused by TLS
    assert line.startswith(f"account test: 127.0.0.1:{front.port} " + said.format(dir=certs.dir)), (
        line
    )
    assert "attempt" not in line and "lost" not in line, line
    # a credential the server refused, for the daemon's status: not a server out of reach
    assert report.login_failed and not report.offline
    assert not list((tmp_path / "Mail").iterdir()), "nothing is created locally"


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
@pytest.mark.parametrize("case", list(AFTER_HANDSHAKE))
def test_a_client_certificate_refused_after_the_handshake_exits_1_with_one_line(
    imap_account: ImapAccount, certs: Certificates, tmp_path: Path, case: str, tls: str
) -> None:
    client, said = AFTER_HANDSHAKE[case]
    with front_of(imap_account, certs, tls) as front:
        code, output = run_forked(
            write_config(fronted(imap_account, tmp_path, certs, front, client))
        )
        assert 1 <= front.connections <= (1 if tls == "implicit" else 2), "retried"
    assert code == 1, output
    assert one_error_line(output).startswith(
        f"mailtide: account test: 127.0.0.1:{front.port} " + said.format(dir=certs.dir)
    ), output


def files_under(root: Path) -> dict[str, bytes]:
    """Each file's bytes, but a lock's (the pid of the run that held it) and the mark of a
    run that logged in (state/quiet.py ``record_reached``: the last run's outcome)."""
    files = (p for p in root.rglob("*") if p.is_file() and p.suffix not in (".lock", ".reached"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def with_client_certificate(config: Path, certs: Certificates, client: str | None) -> None:
    """Point ``config``'s client_cert and client_key at ``client``'s (or at none)."""
    kept = [line for line in config.read_text().splitlines() if not line.startswith("client_")]
    if client:
        kept += [f'client_cert = "{certs.pem(client)}"', f'client_key = "{certs.key(client)}"']
    config.write_text("\n".join(kept) + "\n")


@pytest.mark.parametrize("case", list(AFTER_HANDSHAKE))
def test_a_client_certificate_refused_after_the_handshake_loses_nothing(
    imap_account: ImapAccount, certs: Certificates, tmp_path: Path, case: str
) -> None:
    """An account that synced, then meets the refusal with news on both sides: the run
    changes nothing on either side nor in the state; once the certificate is right again,
    the news crosses, each message once."""
    client, said = AFTER_HANDSHAKE[case]
    append(imap_account, "INBOX", make_message(1, "INBOX"))
    with front_of(imap_account, certs, "implicit") as front:
        s = fronted(imap_account, tmp_path, certs, front, "client")
        config = write_config(s)
        code, output = run_forked(config)
        assert code == 0, output
        append(imap_account, "INBOX", make_message(2, "INBOX"))
        deliver(s.root, s.layout, "INBOX", make_message(3, "INBOX"))
        local, state = files_under(s.root), files_under(tmp_path / "state")

        with_client_certificate(config, certs, client)
        code, output = run_forked(config)
        assert code == 1, output
        assert one_error_line(output).startswith(
            f"mailtide: account test: 127.0.0.1:{front.port} " + said.format(dir=certs.dir)
        ), output
        assert files_under(s.root) == local, "the Maildir changed"
        assert files_under(tmp_path / "state") == state, "the state changed"
        server = {m.message_id for m in fetch_all(imap_account, "INBOX")}
        assert server == {message_id(1, "INBOX"), message_id(2, "INBOX")}

        with_client_certificate(config, certs, "client")
        code, output = run_forked(config)
        assert code == 0, output
    assert_in_sync(s)
    assert len(messages(s.root, s.layout, "INBOX")) == 3


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_the_client_certificate_a_strict_server_trusts_syncs(
    imap_account: ImapAccount, certs: Certificates, tmp_path: Path, tls: str
) -> None:
    append(imap_account, "INBOX", make_message(1, "INBOX"))
    with front_of(imap_account, certs, tls) as front:
        s = fronted(imap_account, tmp_path, certs, front, "client")
        report = s.sync()
        assert front.refused == []
    assert not report.failed, report.failures()
    assert [m.message_id for m in messages(s.root, "fs", "INBOX")] == [message_id(1, "INBOX")]


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("stray.key", "the client key {dir}/stray.key does not belong to the client certificate"),
        (None, "the client certificate {dir}/client.pem holds no private key"),
    ],
    ids=["key-of-another", "no-key"],
)
def test_a_client_key_that_cannot_be_used_names_the_file(
    client_cert_dovecot: Dovecot,
    certs: Certificates,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    key: str | None,
    said: str,
) -> None:
    with FaultProxy(client_cert_dovecot.imaps_port) as proxy:
        s = setup(
            user(client_cert_dovecot, request),
            tmp_path,
            proxy.port,
            ca_file=certs.pem("ca"),
            client_cert=certs.pem("client"),
            client_key=certs.dir / key if key else None,
        )
        line = fails_once(s, proxy, connections=0)  # nothing is sent to the server
    assert line.startswith("account test: " + said.format(dir=certs.dir)), line


# ---- the protocol version -------------------------------------------------------------------


def test_a_server_older_than_tls_1_2_is_refused_with_its_version(
    old_tls_dovecot: Dovecot, certs: Certificates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with FaultProxy(old_tls_dovecot.imaps_port) as proxy:
        s = setup(user(old_tls_dovecot, request), tmp_path, proxy.port, ca_file=certs.pem("ca"))
        line = fails_once(s, proxy)
    assert line == (
        f"account test: 127.0.0.1:{proxy.port} speaks TLSv1.1, older than tls_min_version ="
        ' "1.2": the server must be upgraded'
    ), line


def test_tls_min_version_1_3_syncs_with_a_tls_1_3_server(
    tls_dovecot: Dovecot, certs: Certificates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The private Dovecot speaks 1.3, so 1.3 as the minimum syncs.  (1.3 against a server
    limited to 1.2 is not tested here; it takes the path of the test above.)"""
    s = setup(
        user(tls_dovecot, request),
        tmp_path,
        tls_dovecot.imaps_port,
        ca_file=certs.pem("ca"),
        tls_min_version="1.3",
    )
    report = s.sync()
    assert not report.failed, report.failures()


def test_the_same_setup_with_a_good_ca_syncs(
    tls_dovecot: Dovecot, certs: Certificates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    s = setup(user(tls_dovecot, request), tmp_path, tls_dovecot.imaps_port, ca_file=certs.pem("ca"))
    report = s.sync()
    assert not report.failed, report.failures()
