"""Logging in against the private Dovecot: each way of the SASL table, a refusal as its own
error class with the server's words, and no secret in the -vv conversation.

The test Dovecot takes "secret" (or a user's own password) as an OAuth2 token too, and refuses
any other token with an error report, as Gmail and Outlook do (tests/dovecot.py)."""

from __future__ import annotations

import base64
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from dovecot import Dovecot, ImapAccount
from fake_imap import fake_imap
from log_helpers import capture, pristine_logging
from mailtide.stores.base import AuthenticationFailed, ConnectionLost, StoreError
from mailtide.stores.imap import ImapStore, sasl
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.credentials import Credentials, SecretKind
from mailtide.stores.imap.wire import SECRET_MARKER
from stores.imap.imap_store_helpers import fake_settings, login, pretend, settings

TOKEN = SecretKind.OAUTH2_TOKEN
OAUTH = ("OAUTHBEARER", "XOAUTH2")


def only(mechanism: str, sasl_ir: bool) -> set[str]:
    """The capabilities to hide so that ``mechanism`` is used (with or without SASL-IR)."""
    hidden = {f"AUTH={m}" for m in OAUTH if m != mechanism}
    return hidden if sasl_ir else hidden | {"SASL-IR"}


@pytest.mark.parametrize("sasl_ir", [True, False], ids=["sasl-ir", "no-sasl-ir"])
@pytest.mark.parametrize("mechanism", OAUTH)
async def test_a_token_logs_in(imap_account: ImapAccount, mechanism: str, sasl_ir: bool) -> None:
    source = login(imap_account.user, "secret", TOKEN)
    client = ImapClient(settings(imap_account, credentials=source))
    pretend(client, remove=only(mechanism, sasl_ir))
    with pristine_logging():
        log = capture(2)
        await client.connect()
        try:
            assert (await client.run("SELECT", "INBOX")).ok
        finally:
            await client.close()
    text = log.getvalue()
    assert f"AUTHENTICATE {mechanism}" in text, text
    assert " LOGIN " not in text
    assert SECRET_MARKER in text


@pytest.mark.parametrize("sasl_ir", [True, False], ids=["sasl-ir", "no-sasl-ir"])
@pytest.mark.parametrize(
    ("mechanism", "report"),
    [("OAUTHBEARER", '"status":"invalid_token"'), ("XOAUTH2", '"status":"401"')],
)
async def test_a_refused_token_fails_at_once_with_the_servers_report(
    imap_account: ImapAccount, mechanism: str, report: str, sasl_ir: bool
) -> None:
    """The server sends its error report as a challenge and waits for an answer before its NO:
    unanswered, the login would hang until the timeout and look like a network fault."""
    token = "ya29.Expired-T0ken"
    source = login(imap_account.user, token, TOKEN)
    client = ImapClient(settings(imap_account, credentials=source, timeout=10.0))
    pretend(client, remove=only(mechanism, sasl_ir))
    started = time.monotonic()
    with pristine_logging():
        log = capture(2)
        with pytest.raises(AuthenticationFailed) as refused:
            await client.connect()
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert message.startswith(
        f"authentication failed for user {imap_account.user} at "
        f"{imap_account.host}:{imap_account.port}: the server refused the OAuth2 access token: "
        "Authentication failed. ({"
    ), message
    assert report in message and message.endswith("})"), message
    way = sasl.OAUTHBEARER if mechanism == "OAUTHBEARER" else sasl.XOAUTH2
    server = sasl.Server(imap_account.host, imap_account.port)
    sent = base64.b64encode(way.initial(Credentials(imap_account.user, token, TOKEN), server))
    for shown in (message, log.getvalue()):
        assert token not in shown and sent.decode() not in shown
    assert SECRET_MARKER in log.getvalue()


async def test_a_wrong_password_is_authentication_failed_not_a_lost_connection(
    imap_account: ImapAccount,
) -> None:
    source = login(imap_account.user, "wrong-Pa55", origin='printed by password_command "pass"')
    with pytest.raises(AuthenticationFailed) as refused:
        await ImapStore(settings(imap_account, credentials=source)).connect()
    assert not isinstance(refused.value, ConnectionLost)
    assert str(refused.value) == (
        f"authentication failed for user {imap_account.user} at "
        f"{imap_account.host}:{imap_account.port}: the server refused the password printed by "
        'password_command "pass": Authentication failed.'
    )


@pytest.mark.parametrize("password", ["pässwörd-ü", "Пароль 7"])
async def test_a_non_ascii_password_logs_in_with_authenticate_plain(
    dovecot: Dovecot, imap_account: ImapAccount, password: str
) -> None:
    """IMAP's quoted strings are 7-bit: such a password goes as PLAIN (UTF-8) when offered."""
    account = dovecot.account(imap_account.user, password)
    store = ImapStore(settings(account))
    with pristine_logging():
        log = capture(2)
        await store.connect()
        try:
            assert [f.name for f in await store.list_folders()] == ["INBOX"]
        finally:
            await store.close()
    text = log.getvalue()
    assert f"AUTHENTICATE PLAIN {SECRET_MARKER}" in text and " LOGIN " not in text, text
    assert password not in text


async def test_a_token_on_a_server_without_oauth_is_not_sent() -> None:
    with fake_imap(b"") as port:
        source = login("me", "ya29.T0ken", TOKEN)
        store = ImapStore(replace(fake_settings(port), credentials=source))
        with pytest.raises(StoreError) as error:
            await store.connect()
    assert not isinstance(error.value, AuthenticationFailed)
    assert str(error.value).startswith(
        f"127.0.0.1:{port} offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2"
    )


# ---- a server that cannot check credentials now --------------------------------------------


@contextmanager
def refusing_server(answer: bytes) -> Iterator[tuple[int, list[bytes]]]:
    """Greets, and answers every LOGIN with ``answer`` after the tag; yields the port and the
    commands received."""
    received: list[bytes] = []

    class Session(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
            while line := self.rfile.readline():
                tag, _, rest = line.strip().partition(b" ")
                received.append(rest.split(b" ")[0].upper())
                reply = answer if rest.upper().startswith(b"LOGIN ") else b"OK done"
                self.wfile.write(tag + b" " + reply + b"\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


async def test_authentication_unavailable_for_now_is_a_lost_connection() -> None:
    """RFC 5530 [UNAVAILABLE]: the server cannot check credentials now (its password database
    is down), so a later attempt may work: retried like a lost connection, not a wrong password."""
    unavailable = b"NO [UNAVAILABLE] Temporary authentication failure."
    with refusing_server(unavailable) as (port, got), pytest.raises(ConnectionLost) as lost:
        await ImapStore(fake_settings(port)).connect()
    assert str(lost.value) == (
        f"the server cannot log in user u at 127.0.0.1:{port} for now: "
        "Temporary authentication failure."
    )
    assert got.count(b"LOGIN") == 1


async def test_a_refusal_without_a_code_is_authentication_failed() -> None:
    refusal = refusing_server(b"NO Login failed.")
    with refusal as (port, _), pytest.raises(AuthenticationFailed) as refused:
        await ImapStore(fake_settings(port)).connect()
    assert str(refused.value) == (
        f"authentication failed for user u at 127.0.0.1:{port}: the server refused the password: "
        "Login failed."
    )
