"""aioimaplib 2.0.3's IDLE never ends when the server says BYE (aioimaplib issue #110): pinned.

GMX and others answer a long IDLE with ``* BYE`` and hang up.  The stock ``idle_start`` waits
for a continuation or a tagged answer that never come, and a running IDLE waits for its tagged
answer for ever, so ``wait_server_push`` only returns at its 29-minute timeout.  Each case runs
on the stock client (expected to fail: that is the defect) and on ours (must end at once with
``ConnectionLost``), against the fake server speaking IMAP over a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aioimaplib import aioimaplib as aio

from fake_imap import FakeServer, serve
from mailtide.stores.base import ConnectionLost
from mailtide.stores.imap.client import ImapClient, ImapSettings
from stores.imap.imap_store_helpers import login

PATIENCE = 3.0  # seconds; ours ends in well under one


async def stock_idle(port: int) -> None:
    """Stock aioimaplib, the way its README idles: start, then wait for pushes until it ends."""
    client = aio.IMAP4("127.0.0.1", port, timeout=PATIENCE)
    await client.wait_hello_from_server()
    await client.login("u", "p")
    await client.select("INBOX")
    idle = await client.idle_start(timeout=60)
    while client.has_pending_idle():
        await client.wait_server_push(60)
    await idle


async def our_idle(port: int) -> None:
    client = ImapClient(ImapSettings("127.0.0.1", port, login("u", "p"), "none", None, PATIENCE))
    await client.connect()
    try:
        await client.run("SELECT", "INBOX")
        await client.idle(lambda u: None, renew=60, keepalive=60)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "idle",
    [
        pytest.param(
            stock_idle,
            id="stock",
            marks=pytest.mark.xfail(strict=True, reason="aioimaplib 2.0.3, issue #110"),
        ),
        pytest.param(our_idle, id="ours"),
    ],
)
@pytest.mark.parametrize(
    "script",
    [
        pytest.param([b"* BYE idle timeout\r\n"], id="bye-instead-of-continuation"),
        pytest.param([b"+ idling\r\n", 0.3, b"* BYE idle timeout\r\n"], id="bye-while-idling"),
    ],
)
async def test_idle_ends_when_the_server_says_bye(
    idle: Callable[[int], Awaitable[None]], script: list[bytes | float]
) -> None:
    server = FakeServer({"INBOX": []}, capabilities="IMAP4rev1 IDLE", idle_script=script)
    with serve(server):
        try:
            await asyncio.wait_for(idle(server.port), PATIENCE)
        except TimeoutError:
            pytest.fail(f"IDLE still pending {PATIENCE} s after the server said BYE and hung up")
        except ConnectionLost as e:
            assert "BYE idle timeout" in str(e)
        else:
            pytest.fail("IDLE returned as if nothing happened")
