"""The daemon against a server that refuses its client certificate in TLS 1.3, after the
handshake (the front of tests/tls_front.py, before the session's Dovecot): like a refused
password, it shows "login failed" with the one line that says what to set, says it once and
backs off; it is not a server out of reach ("offline"), and it never spins: the server sees
a few connections in seconds, not one per retry of a lost connection, and the push source
does not try its own while the account's syncs cannot log in."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon_helpers import Daemon, cli, eventually
from dovecot import ImapAccount
from engine_helpers import make_setup, write_config
from tls_certs import Certificates, make_certificates
from tls_front import TlsFront

# A client certificate (or none), and what the line says about it.
REFUSALS = {
    "none": (None, "wants a client certificate (TLS alert: certificate required): set client_cert"),
    "from another CA": (
        "rogue",
        "refused the client certificate {dir}/rogue.pem (TLS alert: unknown ca): the server"
        " does not trust it; set client_cert",
    ),
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_client_certificate_is_a_failed_login_backed_off(
    imap_account: ImapAccount,
    certs: Certificates,
    tmp_path: Path,
    daemons: Callable[..., Daemon],
    case: str,
) -> None:
    client, said = REFUSALS[case]
    good = (certs.pem("good"), certs.key("good"))
    with TlsFront(imap_account.port, good, certs.pem("client_ca")) as front:
        s = make_setup(
            imap_account,
            tmp_path,
            port=front.port,
            tls="implicit",
            ca_file=certs.pem("ca"),
            client_cert=certs.pem(client) if client else None,
            client_key=certs.key(client) if client else None,
        )
        d = daemons(write_config(s))
        eventually(lambda: "event=daemon.account_failing" in d.output, 20, "the failure said", d)
        before = front.connections
        time.sleep(4)
        # The account's backoff (1 s, then up to 2 s, 4 s, ...) allows 4 syncs in 4 s, of one
        # connection each (a lost connection's retries would add 3 to each); the push source
        # waits for a sync that logs in.
        made = front.connections - before
        assert made <= 4, f"{made} connections in 4 s\n{d.output}"
        assert len(front.refused) == front.connections, front.refused  # each refused by TLS
        failed = d.output.count("event=account.failed")
        assert failed <= 5, f"{failed} syncs failed\n{d.output}"
        assert "attempt=" not in d.output, "retried as a lost connection"
        warnings = [line for line in d.output.splitlines() if "level=warning" in line]
        assert len(warnings) == 1 and "event=daemon.account_failing" in warnings[0], d.output
        (status,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10)[0] == 0
    assert status["state"] in ("login failed", "syncing"), status
    assert f"127.0.0.1:{front.port} " + said.format(dir=certs.dir) in status["error"], status
