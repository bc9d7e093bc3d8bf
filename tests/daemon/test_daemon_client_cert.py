"""The daemon against a server that refuses its client certificate in TLS 1.3, after the
handshake (the front of tests/tls_front.py, before the session's Dovecot): like a refused
password, it shows "login failed" with the one line that says what to set, says it once and
backs off; it is not a server out of reach ("offline"), and it never spins."""

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


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def test_a_refused_client_certificate_is_a_failed_login_backed_off(
    imap_account: ImapAccount,
    certs: Certificates,
    tmp_path: Path,
    daemons: Callable[..., Daemon],
) -> None:
    good = (certs.pem("good"), certs.key("good"))
    with TlsFront(imap_account.port, good, certs.pem("client_ca")) as front:
        s = make_setup(
            imap_account, tmp_path, port=front.port, tls="implicit", ca_file=certs.pem("ca")
        )
        d = daemons(write_config(s))
        eventually(lambda: "event=daemon.account_failing" in d.output, 20, "the failure said", d)
        time.sleep(4)
        failed = d.output.count("event=account.failed")
        assert failed <= 4, f"{failed} syncs failed in ~4 s\n{d.output}"
        assert "attempt=" not in d.output, "retried as a lost connection"
        assert d.output.count("level=warning event=daemon.account_failing") == 1, d.output
        (status,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10)[0] == 0
    assert status["state"] in ("login failed", "syncing"), status
    assert f"127.0.0.1:{front.port} wants a client certificate" in status["error"], status
