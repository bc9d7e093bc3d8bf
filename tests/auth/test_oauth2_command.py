"""``oauth2_token_command``: the token a program prints logs in with OAUTHBEARER (the test
Dovecot takes "secret" as a token, tests/dovecot.py); a refused one fails the run at once."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import make_setup
from fault_proxy import FaultProxy
from mailtide.config.oauth2 import OAuth2
from mailtide.wiring import sync_account


def test_the_printed_token_logs_in(imap_account: ImapAccount, tmp_path: Path) -> None:
    oauth2 = OAuth2(token_command=("sh", "-c", "echo secret; echo more"))
    srv.append(imap_account, "INBOX", srv.make_message(1, "INBOX"))
    with FaultProxy(imap_account.port, record=True) as proxy:
        s = make_setup(imap_account, tmp_path, port=proxy.port, password=None, oauth2=oauth2)
        report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
        up = proxy.stream("up")
    assert report.failures() == []
    assert b" AUTHENTICATE OAUTHBEARER" in up and b" LOGIN " not in up
    local = loc.messages(s.root, s.layout, "INBOX")
    assert [m.message_id for m in local] == [srv.message_id(1, "INBOX")]


def test_auth_xoauth2_is_used_though_oauthbearer_is_offered(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    oauth2 = OAuth2(token_command=("sh", "-c", "echo secret"), mechanism="XOAUTH2")
    with FaultProxy(imap_account.port, record=True) as proxy:
        s = make_setup(imap_account, tmp_path, port=proxy.port, password=None, oauth2=oauth2)
        report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
        up = proxy.stream("up")
    assert report.failures() == []
    assert b" AUTHENTICATE XOAUTH2" in up and b"OAUTHBEARER" not in up


def test_a_refused_token_fails_once_with_the_servers_report(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    token = "ya29.Refused-T0ken"
    oauth2 = OAuth2(token_command=("sh", "-c", f"echo {token}"))
    with FaultProxy(imap_account.port, record=True) as proxy:
        s = make_setup(imap_account, tmp_path, port=proxy.port, password=None, oauth2=oauth2)
        s = s.with_account(retries=5, retry_delay=0.05)
        report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
        up = proxy.stream("up")
    assert up.count(b" AUTHENTICATE ") == 1, up  # the command would print the same token
    (line,) = report.failures()
    assert line.startswith(
        f"account test: authentication failed for user {imap_account.user} at 127.0.0.1:"
        f"{proxy.port}: the server refused the OAuth2 access token printed by"
        ' oauth2_token_command "sh": '
    ), line
    assert '"status":"invalid_token"' in line  # the server's report, decoded
    assert token not in line and base64.b64encode(token.encode()).decode() not in line
