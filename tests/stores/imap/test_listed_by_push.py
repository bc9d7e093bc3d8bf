"""A daemon's sync of the server's push news (NOTIFY's STATUS of the mailboxes it names)
takes the folders from the store's last listing and the statuses from the push
(``ImapStore.pushed``): no LIST-STATUS, which on Dovecot's Maildir re-reads every changed
folder that the mailbox's own commands re-read again.  Never where the store changed a
folder since, nor where a new connection asked the LIST with its login, nor for a later
sync that was not told (``pushed(None)``)."""

from __future__ import annotations

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from mailtide.stores.base import MailboxStatus
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import fill, listed_through_proxy, settings

LIST = b' LIST "" "*"'


@pytest.fixture
def filled(imap_account: ImapAccount) -> ImapAccount:
    return fill(imap_account, ["INBOX", "Work"], 1)


async def statuses_of(acct: ImapAccount, *names: str) -> dict[str, MailboxStatus]:
    """The mailboxes' statuses as another session reads them (what NOTIFY would tell)."""
    store = ImapStore(settings(acct))
    told = {}
    try:
        for name in names:
            box = await store.open(name)
            told[name] = await box.status()
            await box.close()
    finally:
        await store.close()
    return told


async def test_a_pushed_sync_lists_from_the_last_listing_with_the_pushed_statuses(
    filled: ImapAccount,
) -> None:
    async with listed_through_proxy(filled) as (store, proxy, first):
        srv.append(filled, "INBOX", srv.make_message(2, "INBOX"), [])
        pushed = await statuses_of(filled, "INBOX")
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


@pytest.mark.parametrize("made_by", ["the store", "another client"])
async def test_a_folder_made_since_the_last_listing_is_listed(
    filled: ImapAccount, made_by: str
) -> None:
    """Made by the store (which knows its listing is old), or by another client whose news
    the push names (a mailbox the listing does not hold)."""
    async with listed_through_proxy(filled) as (store, proxy, _):
        if made_by == "the store":
            await store.create_folder("Made")
            pushed = await statuses_of(filled, "INBOX")
        else:
            srv.create_folder(filled, "Made")
            pushed = await statuses_of(filled, "Made")
        proxy.recorded.clear()
        store.pushed(pushed)
        names = [f.name for f in await store.list_folders()]
        assert LIST in proxy.stream("up")
        assert "Made" in names


async def test_what_was_pushed_is_forgotten_and_a_new_connections_listing_wins(
    filled: ImapAccount,
) -> None:
    async with listed_through_proxy(filled) as (store, proxy, _):
        pushed = await statuses_of(filled, "INBOX")
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
