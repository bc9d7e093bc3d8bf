"""A daemon's sync of the server's push news (NOTIFY's STATUS of the mailboxes it names)
takes the folders from the store's last listing and the statuses from the push
(``ImapStore.pushed``): no LIST-STATUS, which on Dovecot's Maildir re-reads every changed
folder that the mailbox's own commands re-read again.  Never where the store changed a
folder since, nor where a new connection asked the LIST with its login, nor for a later
sync that was not told (``pushed(None)``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from fault_proxy import FaultProxy
from mailtide.stores.base import MailboxStatus
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings

LIST = b' LIST "" "*"'


@pytest.fixture
def filled(imap_account: ImapAccount) -> ImapAccount:
    for folder in ("INBOX", "Work"):
        srv.create_folder(imap_account, folder)
        srv.append(imap_account, folder, srv.make_message(1, folder), [])
    return imap_account


async def statuses_of(store: ImapStore, *names: str) -> dict[str, MailboxStatus]:
    told = {}
    for name in names:
        box = await store.open(name)
        told[name] = await box.status()
        await box.close()
    return told


async def test_a_pushed_sync_lists_from_the_last_listing_with_the_pushed_statuses(
    filled: ImapAccount,
) -> None:
    with FaultProxy(filled.port, record=True) as proxy:
        store = ImapStore(settings(replace(filled, port=proxy.port)))
        try:
            await store.connect()
            first = await store.list_folders()
            srv.append(filled, "INBOX", srv.make_message(2, "INBOX"), [])
            pushed = await statuses_of(ImapStore(settings(filled)), "INBOX")
            proxy.recorded.clear()
            store.pushed(pushed)
            await store.connect()  # the store's connection is open: nothing asked
            again = await store.list_folders()
            assert LIST not in proxy.stream("up")
            assert [f.name for f in again] == [f.name for f in first]
            inbox = await store.open("INBOX")
            assert await inbox.status() == pushed["INBOX"]  # the push's, as a listing's
            assert {m.id for m in await inbox.snapshot()} == {"1", "2"}
            await inbox.close()
            third = await store.list_folders()  # not told again: listed
            assert proxy.stream("up").count(LIST) == 1
            assert [f.name for f in third] == [f.name for f in first]
        finally:
            await store.close()


async def test_a_folder_the_store_changed_since_its_listing_is_listed_again(
    filled: ImapAccount,
) -> None:
    with FaultProxy(filled.port, record=True) as proxy:
        store = ImapStore(settings(replace(filled, port=proxy.port)))
        try:
            await store.connect()
            await store.list_folders()
            await store.create_folder("Made")
            pushed = await statuses_of(ImapStore(settings(filled)), "INBOX")
            proxy.recorded.clear()
            store.pushed(pushed)
            names = [f.name for f in await store.list_folders()]
            assert LIST in proxy.stream("up")
            assert "Made" in names
        finally:
            await store.close()


async def test_a_pushed_mailbox_the_last_listing_does_not_hold_is_listed(
    filled: ImapAccount,
) -> None:
    with FaultProxy(filled.port, record=True) as proxy:
        store = ImapStore(settings(replace(filled, port=proxy.port)))
        try:
            await store.connect()
            await store.list_folders()
            srv.create_folder(filled, "Newer")  # its news not heard: a push names it
            pushed = await statuses_of(ImapStore(settings(filled)), "Newer")
            proxy.recorded.clear()
            store.pushed(pushed)
            names = [f.name for f in await store.list_folders()]
            assert LIST in proxy.stream("up")
            assert "Newer" in names
        finally:
            await store.close()


async def test_what_was_pushed_is_forgotten_and_a_new_connections_listing_wins(
    filled: ImapAccount,
) -> None:
    with FaultProxy(filled.port, record=True) as proxy:
        store = ImapStore(settings(replace(filled, port=proxy.port)))
        try:
            await store.connect()
            await store.list_folders()
            pushed = await statuses_of(ImapStore(settings(filled)), "INBOX")
            store.pushed(pushed)
            store.pushed(None)  # the sync it was for ended without listing
            proxy.recorded.clear()
            await store.list_folders()
            assert LIST in proxy.stream("up")
            await store.drop()  # the connection gone: the next one lists with its login
            srv.create_folder(filled, "Later")
            store.pushed(pushed)
            await store.connect()
            names = [f.name for f in await store.list_folders()]
            assert "Later" in names  # the new connection's own LIST, not the old listing
        finally:
            await store.close()
