"""Connections begun ahead (``ImapStore.warm``): a sync about to take several changed
mailboxes at once opens their connections while it plans, not when each first needs one;
the mailboxes take those, and a store closed first stops them.  ``known_changed`` tells
from the folder list's status which mailboxes will need a connection at all."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from dovecot import ImapAccount
from fault_proxy import FaultProxy
from mailtide.stores.base import StoreError
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import fill, listed_through_proxy, settings

FOLDERS = ["INBOX", "Alpha", "Beta"]


async def until(check: object, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


@pytest.fixture
def filled(imap_account: ImapAccount) -> ImapAccount:
    return fill(imap_account, FOLDERS, 3)


async def test_connections_begun_ahead_are_the_ones_the_mailboxes_take(
    filled: ImapAccount,
) -> None:
    async with listed_through_proxy(filled) as (store, proxy, _):
        store.warm(3)  # the store's own is one of the three
        await until(lambda: proxy.stream("up").count(b" LOGIN ") == 3)
        assert proxy.connections == 3  # before any mailbox asked for one
        opened = [await store.open(name) for name in FOLDERS]
        for mailbox in opened:
            assert len(await mailbox.snapshot()) == 3  # each on a connection of its own
        assert proxy.connections == 3  # the ones begun ahead: none opened besides
        for mailbox in opened:
            await mailbox.close()


async def test_warming_counts_the_connections_held_and_opens_none_beyond(
    filled: ImapAccount,
) -> None:
    async with listed_through_proxy(filled) as (store, proxy, _):
        store.warm(1)  # the store's own will do
        store.warm(2)
        store.warm(2)  # asked again: the one begun is counted
        await until(lambda: proxy.connections == 2)
        await asyncio.sleep(0.1)
        assert proxy.connections == 2


async def test_a_store_closed_before_its_connections_begun_ahead_are_taken_leaves_none_open(
    filled: ImapAccount,
) -> None:
    for wait in (0.0, 0.3):  # closed while they connect, or once they have logged in
        with FaultProxy(filled.port, record=True) as proxy:
            store = ImapStore(settings(replace(filled, port=proxy.port)))
            await store.connect()
            store.warm(3)
            await asyncio.sleep(wait)
            if wait:
                assert proxy.stream("up").count(b" LOGIN ") == 3
            await store.close(hurry=True)
            await until(lambda p=proxy: p.open_links() == 0)  # type: ignore[misc]


async def test_a_connection_begun_ahead_that_failed_fails_the_mailbox_that_takes_it(
    filled: ImapAccount,
) -> None:
    """Its failure is told to the mailbox that takes it, as if that had opened it; one that
    nobody took is dropped with the store."""
    async with listed_through_proxy(filled) as (store, proxy, _):
        proxy.down()  # no new connection gets through now
        store.warm(3)
        await asyncio.sleep(0.2)
        first = await store.open("INBOX")
        assert len(await first.snapshot()) == 3  # the store's own
        second = await store.open("Alpha")
        with pytest.raises(StoreError):
            await second.snapshot()


async def test_a_mailbox_whose_listed_status_is_as_the_last_sync_left_it_needs_no_connection(
    filled: ImapAccount,
) -> None:
    store = ImapStore(settings(filled))
    try:
        await store.connect()
        await store.list_folders()
        inbox = await store.open("INBOX")
        status = await inbox.status()
        await inbox.close()
        await store.list_folders()  # listed again: the status is the store's again
        left = (status.validity, status.highestmodseq)
        assert not store.known_changed("INBOX", left)
        assert store.known_changed("INBOX", (status.validity, (status.highestmodseq or 0) - 1))
        assert store.known_changed("INBOX", ("1", status.highestmodseq))  # another validity
        assert store.known_changed("INBOX", None)  # never synced
        assert not store.known_changed("Nowhere", left)  # not in the folder list: cannot tell
    finally:
        await store.close()
