"""The server's TLS alerts about the client certificate, as OpenSSL names them, each to its
line (tests/engine/test_tls_options.py meets those a Python server sends; these are the
ones other servers send: "bad certificate", "certificate revoked", TLS 1.2's spellings)."""

from __future__ import annotations

import ssl

import pytest

from mailtide.stores.base import AuthenticationFailed
from mailtide.stores.imap.tls_failure import client_certificate_refused
from mailtide.stores.imap.tls_trust import TlsTrust

WHERE = "imap.example.org:993"
MINE = TlsTrust(client_cert="/home/me/client.pem", client_key="/home/me/client.key")


def alert(reason: str) -> ssl.SSLError:
    e = ssl.SSLError(1, f"[SSL: {reason}] ({reason.lower()})")
    e.reason = reason
    return e


# (OpenSSL's reason, what the line says after "WHERE ")
ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        "refused the client certificate /home/me/client.pem (TLS alert: certificate required):"
        " check that client_cert is one the server accepts"
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": (
        "refused the client certificate /home/me/client.pem (TLS alert: bad certificate): the"
        " server does not trust it; set client_cert"
    ),
    "TLSV1_ALERT_UNKNOWN_CA": (
        "refused the client certificate /home/me/client.pem (TLS alert: unknown ca): the server"
        " does not trust it; set client_cert"
    ),
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "(TLS alert: certificate unknown): the server does not",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "(TLS alert: certificate revoked): check that client_cert",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "(TLS alert: certificate expired): check that client_cert",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "(TLS alert: unsupported certificate): check that",
}


@pytest.mark.parametrize("reason", list(ALERTS))
def test_each_client_certificate_alert_is_a_refused_credential(reason: str) -> None:
    refused = client_certificate_refused(alert(reason), WHERE, MINE)
    assert isinstance(refused, AuthenticationFailed)  # never retried, "login failed"
    assert ALERTS[reason] in str(refused), str(refused)
    assert str(refused).startswith(f"{WHERE} refused the client certificate "), str(refused)


def test_without_a_client_certificate_the_line_says_to_set_one() -> None:
    refused = client_certificate_refused(
        alert("TLSV13_ALERT_CERTIFICATE_REQUIRED"), WHERE, TlsTrust()
    )
    assert str(refused) == (
        f"{WHERE} wants a client certificate (TLS alert: certificate required): set client_cert"
        " (and client_key) to a certificate the server trusts"
    )


@pytest.mark.parametrize(
    "reason", ["TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE", "DECRYPTION_FAILED"]
)
def test_other_alerts_are_not_about_the_client_certificate(reason: str) -> None:
    assert client_certificate_refused(alert(reason), WHERE, MINE) is None
