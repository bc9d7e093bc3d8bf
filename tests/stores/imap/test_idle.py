"""IDLE on our connection (RFC 2177), and TCP keepalive on every IMAP socket.

Against the private Dovecot where a real server's behaviour is the point, against the fake
server (``fake_imap.FakeServer``) for what a real server will not do on request: an IDLE
refused, silence after DONE.  BYE while idling: test_idle_defect.py.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from fake_imap import FakeServer, serve
from mailtide.stores.base import ConnectionLost, StoreError
from mailtide.stores.imap.client import ImapClient, ImapSettings
from mailtide.stores.imap.keepalive import tcp_options
from mailtide.stores.imap.parse import Untagged
from mailtide.stores.imap.protocol import IdleEnd
from push_helpers import in_thread, running, settings_of
from stores.imap.imap_store_helpers import login

IDLE_CAPS = "IMAP4rev1 LITERAL+ UIDPLUS IDLE"


async def connected(settings: ImapSettings, mailbox: str | None = "INBOX") -> ImapClient:
    client = ImapClient(settings)
    await client.connect()
    if mailbox is not None:
        await client.run("EXAMINE", mailbox)
    return client


def fake_settings(server: FakeServer, timeout: float = 5.0) -> ImapSettings:
    return ImapSettings("127.0.0.1", server.port, login("u", "p"), "none", None, timeout)


# ---- against Dovecot -------------------------------------------------------------------------


async def test_new_mail_is_reported_while_idling_and_done_ends_it(
    imap_account: ImapAccount,
) -> None:
    client = await connected(settings_of(imap_account))
    seen: list[Untagged] = []
    arrived = asyncio.Event()

    def on_untagged(u: Untagged) -> None:
        seen.append(u)
        if u.kind == "EXISTS":
            arrived.set()

    stop = asyncio.Event()
    try:
        async with running(client.idle(on_untagged, renew=60, keepalive=60, stop=stop)) as idling:
            await asyncio.sleep(0.2)  # IDLE under way
            message = srv.make_message(1, "INBOX")
            appended = await in_thread(srv.append, imap_account, "INBOX", message)
            await asyncio.wait_for(arrived.wait(), 1.0)
            assert time.monotonic() - appended < 1.0
            stop.set()
            assert await asyncio.wait_for(idling, 5) is IdleEnd.STOPPED
        assert [u.number for u in seen if u.kind == "EXISTS"] == [1]
        # DONE got its OK: the connection is in step for the next command.
        assert (await client.run("NOOP")).ok
        # The news went to the caller, not also to the store's list of news (where nobody
        # would read it on a push connection).
        assert client.protocol is not None
        assert ("EXISTS", 1) not in [(u.kind, u.number) for u in client.protocol.unsolicited]
    finally:
        await client.close()


async def test_idle_is_renewed_after_its_time(imap_account: ImapAccount) -> None:
    client = await connected(settings_of(imap_account))
    try:
        for _ in range(2):
            started = time.monotonic()
            end = await client.idle(lambda u: None, renew=0.3, keepalive=60)
            assert end is IdleEnd.RENEW
            assert 0.25 < time.monotonic() - started < 3
    finally:
        await client.close()


async def test_a_silent_server_is_asked_with_noop(imap_account: ImapAccount) -> None:
    # Dovecot says "Still here" only every 2 minutes: 0.3 s of silence ends the IDLE, and the
    # NOOP that follows proves the connection alive (it returns rather than raising).
    client = await connected(settings_of(imap_account))
    try:
        end = await client.idle(lambda u: None, renew=60, keepalive=0.3)
        assert end is IdleEnd.SILENCE
        assert (await client.run("NOOP")).ok
    finally:
        await client.close()


async def test_idle_outlives_the_command_timeout(imap_account: ImapAccount) -> None:
    # The silence timeout of commands (here 0.5 s) does not apply while idling.
    client = await connected(settings_of(imap_account, timeout=0.5))
    try:
        end = await client.idle(lambda u: None, renew=1.5, keepalive=60)
        assert end is IdleEnd.RENEW
    finally:
        await client.close()


async def test_cancelled_idle_leaves_the_connection_in_step(imap_account: ImapAccount) -> None:
    client = await connected(settings_of(imap_account))
    try:
        async with running(client.idle(lambda u: None, renew=60, keepalive=60)):
            await asyncio.sleep(0.3)
        assert (await client.run("NOOP")).ok
    finally:
        await client.close()


async def test_every_connection_has_tcp_keepalive(imap_account: ImapAccount) -> None:
    for tls, port in (("none", imap_account.port), ("implicit", imap_account.imaps_port)):
        settings = settings_of(imap_account, tls=tls, port=port, ca_file=imap_account.ca_file)
        client = await connected(settings, mailbox=None)
        try:
            assert client.protocol is not None and client.protocol.transport is not None
            sock = client.protocol.transport.get_extra_info("socket")
            got = {opt: sock.getsockopt(level, opt) for level, opt, _ in tcp_options()}
        finally:
            await client.close()
        assert got == {opt: value for _, opt, value in tcp_options()}
        assert got[socket.SO_KEEPALIVE] == 1
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux: what the daemon's dead-peer bound needs
            assert got[socket.TCP_KEEPIDLE] == 60
            assert got[socket.TCP_KEEPINTVL] == 15
            assert got[socket.TCP_KEEPCNT] == 4
            assert got[socket.TCP_USER_TIMEOUT] == 120_000


# ---- against the fake server -----------------------------------------------------------------


async def test_refused_idle_says_so() -> None:
    script: list[bytes | float] = [b"{tag} NO [UNAVAILABLE] no IDLE for you\r\n", 5.0]
    with serve(FakeServer({"INBOX": []}, capabilities=IDLE_CAPS, idle_script=script)) as server:
        client = await connected(fake_settings(server))
        try:
            with pytest.raises(StoreError, match="refused IDLE: NO \\[UNAVAILABLE\\] no IDLE"):
                await asyncio.wait_for(client.idle(lambda u: None, renew=60, keepalive=60), 5)
        finally:
            await client.close()


async def test_server_without_idle_says_so() -> None:
    with serve(FakeServer({"INBOX": []})) as server:
        client = await connected(fake_settings(server))
        try:
            with pytest.raises(StoreError, match="does not offer IDLE"):
                await client.idle(lambda u: None, renew=60, keepalive=60)
        finally:
            await client.close()


async def test_silence_after_done_is_a_lost_connection() -> None:
    # The server accepts IDLE, then never says another word (a dead peer, a NAT box that
    # forgot the flow): after keepalive (0.2 s) DONE goes out, and timeout (0.5 s) later the
    # connection is given up for lost.
    script: list[bytes | float] = [b"+ idling\r\n", 10.0]
    with serve(FakeServer({"INBOX": []}, capabilities=IDLE_CAPS, idle_script=script)) as server:
        client = await connected(fake_settings(server, timeout=0.5))
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionLost, match=r"no answer from server for 0\.5 s"):
                await asyncio.wait_for(client.idle(lambda u: None, renew=60, keepalive=0.2), 5)
            assert 0.6 < time.monotonic() - started < 2
        finally:
            await client.close()
