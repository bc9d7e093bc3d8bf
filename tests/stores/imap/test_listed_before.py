"""A store given the answers of a session begun before the run (``ImapStore.listed_before``,
from quiet/early.py): its first folder listing is those answers, with no LIST of its own; it
lists as before where it cannot read them or there are none; and no connection of its own
begins before that session has ended, but the first one where it may be open beside it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from dovecot import ImapAccount
from fault_proxy import FaultProxy
from mailtide.stores.imap import ImapStore
from mailtide.stores.imap.credentials import Credentials
from mailtide.stores.imap.probe import Server, listing_now
from mailtide.stores.imap.seen import Listing
from stores.imap.imap_store_helpers import fill, listed_through_proxy, settings

FOLDERS = ["INBOX", "Alpha", 'Quote"d', "Entwürfe/2024"]  # a name sent as a literal or quoted


@pytest.fixture
def filled(imap_account: ImapAccount) -> ImapAccount:
    return fill(imap_account, FOLDERS, 2)


def read_now(acct: ImapAccount) -> Listing:
    """What the command's session reads (probe.py), straight from the server."""
    server = Server(acct.host, acct.port, "none", 10.0)
    return listing_now(server, Credentials(acct.user, acct.password))


async def listed_with(
    acct: ImapAccount, ended: object, beside: bool = False
) -> tuple[ImapStore, FaultProxy, list[object]]:
    proxy = FaultProxy(acct.port, record=True)
    proxy.__enter__()
    store = ImapStore(settings(replace(acct, port=proxy.port)))
    store.listed_before(ended, beside)  # type: ignore[arg-type]
    await store.connect()
    return store, proxy, list(await store.list_folders())


async def test_the_answers_read_before_are_the_first_listing(filled: ImapAccount) -> None:
    async with listed_through_proxy(filled) as (own, _, folders):
        own_seen = own.seen()
    listing = read_now(filled)
    store, proxy, listed = await listed_with(filled, lambda: listing)
    try:
        assert listed == folders  # the same folders, names and identities
        assert {f.name for f in listed} >= set(FOLDERS)
        assert b" LIST " not in proxy.stream("up")  # none of its own
        assert store.seen() == own_seen  # what a quiet run's proof would record: the same
        mailbox = await store.open("Alpha")  # on the connection begun at once
        assert len(await mailbox.snapshot()) == 2
        await mailbox.close()
        assert proxy.stream("up").count(b" LOGIN ") == 1
    finally:
        await store.close()
        proxy.__exit__(None, None, None)


@pytest.mark.parametrize(
    "broken",
    [
        None,  # the session read nothing (it failed, or its answers are stale)
        Listing(frozenset({"IMAP4REV1"}), frozenset(), (), (b'* LIST () "/" {40}\r\nshort',)),
    ],
    ids=["no answers", "answers cut short"],
)
async def test_without_answers_it_can_read_the_store_lists_as_before(
    filled: ImapAccount, broken: Listing | None
) -> None:
    async with listed_through_proxy(filled) as (_, _, folders):
        pass
    store, proxy, listed = await listed_with(filled, lambda: broken)
    try:
        assert listed == folders
        assert proxy.stream("up").count(b" LIST ") == 1
    finally:
        await store.close()
        proxy.__exit__(None, None, None)


@pytest.mark.parametrize("beside", [False, True])
async def test_no_connection_begins_before_the_session_ends_but_the_first_beside_it(
    filled: ImapAccount, beside: bool
) -> None:
    """``max_connections``: the session counts as one until it ends."""
    listing = read_now(filled)
    go = threading.Event()

    def ended() -> Listing:
        go.wait(10)
        return listing

    with FaultProxy(filled.port, record=True) as proxy:
        store = ImapStore(settings(replace(filled, port=proxy.port)))
        store.listed_before(ended, beside)
        connecting = asyncio.ensure_future(store.connect())
        await asyncio.sleep(0.5)
        assert not connecting.done()
        assert proxy.stream("up").count(b" LOGIN ") == (1 if beside else 0)
        go.set()
        await connecting
        await store.list_folders()
        await asyncio.sleep(0.2)
        assert proxy.connections == 1  # one begun, beside or after: a mailbox takes it
        assert b" LIST " not in proxy.stream("up")
        await store.close()
