"""Connections held between syncs: a NOOP proves them alive, and one that went silent (a NAT
box that dropped it) is closed within the timeout, so the next sync opens a new one instead of
waiting on a dead one.  Held connections presumed dead (after a suspend) are dropped
without LOGOUT; closing them logs out of all at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from dovecot import ImapAccount
from fault_proxy import Fault, FaultProxy
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings


async def test_keepalive_keeps_a_live_connection_and_drops_a_silent_one(
    imap_account: ImapAccount,
) -> None:
    with FaultProxy(imap_account.port) as proxy:
        acct = replace(imap_account, port=proxy.port)
        store = ImapStore(settings(acct, timeout=1.5))
        try:
            await store.connect()
            await store.keepalive()
            assert proxy.connections == 1  # alive: kept
            proxy.arm(Fault("stall", "up", before=b"NOOP"))
            await store.keepalive()  # silent: dropped after the 1.5 s timeout
            assert store._client is None
            proxy.arm()
            assert [f.name for f in await store.list_folders()] == ["INBOX"]
            assert proxy.connections == 1  # a new connection, counted since arm()
        finally:
            await store.close()


async def test_a_command_after_a_quiet_spell_longer_than_the_timeout_is_answered(
    imap_account: ImapAccount,
) -> None:
    """The timeout is for the server's answer: a connection held quiet for longer (between
    two syncs, or a poll's rounds) is not given up as silent by the next command."""
    with FaultProxy(imap_account.port) as proxy:
        acct = replace(imap_account, port=proxy.port)
        store = ImapStore(settings(acct, timeout=1.0))
        try:
            await store.connect()
            await asyncio.sleep(1.5)
            await store.keepalive()
            assert [f.name for f in await store.list_folders()] == ["INBOX"]
            assert proxy.connections == 1  # the same connection all along
        finally:
            await store.close()


async def held_and_silent(store: ImapStore, proxy: FaultProxy, mailboxes: int) -> None:
    """``store`` holds its own connection and ``mailboxes`` more, and every one of them went
    silent (as after a suspend).  (The first mailbox takes the store's own connection: the
    next folder list opens the store another.)"""
    await store.connect()
    opened = [await store.open("INBOX") for _ in range(mailboxes)]
    for mailbox in opened:
        await mailbox.close()
    await store.list_folders()
    assert proxy.connections == 1 + mailboxes
    proxy.stall_open()


async def test_closing_silent_held_connections_waits_once_not_once_each(
    imap_account: ImapAccount,
) -> None:
    with FaultProxy(imap_account.port) as proxy:
        store = ImapStore(settings(replace(imap_account, port=proxy.port)))
        await held_and_silent(store, proxy, 2)
        started = asyncio.get_running_loop().time()
        await store.close()  # each LOGOUT waits LOGOUT_WAIT (5 s) for an answer that never comes
        assert asyncio.get_running_loop().time() - started < 7.5


async def test_dropping_silent_held_connections_is_immediate_and_the_next_sync_connects(
    imap_account: ImapAccount,
) -> None:
    with FaultProxy(imap_account.port) as proxy:
        store = ImapStore(settings(replace(imap_account, port=proxy.port)))
        try:
            await held_and_silent(store, proxy, 2)
            started = asyncio.get_running_loop().time()
            await store.drop()
            assert asyncio.get_running_loop().time() - started < 0.5
            assert [f.name for f in await store.list_folders()] == ["INBOX"]  # a new connection
            assert proxy.connections == 4
        finally:
            await store.close()


async def test_a_hurried_close_says_logout_and_does_not_wait_for_the_answer(
    imap_account: ImapAccount,
) -> None:
    """A one-shot sync's end: the process ends next, so each connection's LOGOUT is sent
    and its answer (a round trip on a slow link) not waited for, even where none comes."""
    with FaultProxy(imap_account.port, record=True) as proxy:
        store = ImapStore(settings(replace(imap_account, port=proxy.port)))
        await store.connect()
        opened = [await store.open("INBOX") for _ in range(2)]
        for mailbox in opened:
            await mailbox.close()
        await store.list_folders()
        proxy.arm(Fault("stall", "down", before=b"* BYE"))  # no answer to a LOGOUT comes
        started = asyncio.get_running_loop().time()
        await store.close(hurry=True)
        assert asyncio.get_running_loop().time() - started < 1.0  # not LOGOUT_WAIT (5 s)
        await asyncio.sleep(0.2)
        assert proxy.stream("up").count(b" LOGOUT\r\n") == 3


async def test_a_store_whose_connections_are_held_keeps_its_own_for_its_listings(
    imap_account: ImapAccount,
) -> None:
    """A daemon's store: the first mailbox opens a connection of its own instead of taking
    the store's, so the next sync's folder listing (or a push's) needs no new login; a
    one-shot sync's store gives its own to the first mailbox (it logs in once)."""
    for held, logins in ((True, 2), (False, 1)):
        with FaultProxy(imap_account.port, record=True) as proxy:
            store = ImapStore(settings(replace(imap_account, port=proxy.port)), held=held)
            try:
                await store.connect()
                await store.list_folders()
                inbox = await store.open("INBOX")
                await inbox.snapshot()
                await inbox.close()
                assert proxy.stream("up").count(b" LOGIN ") == logins
                await store.connect()  # the next sync
                await store.list_folders()
                assert proxy.connections == 2  # held: the two it had; else one opened again
            finally:
                await store.close()
