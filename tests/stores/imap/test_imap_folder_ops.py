"""The IMAP store's folder operations against the private Dovecot: RENAME keeps the
folder's UIDVALIDITY and UIDs (what recognises it), subscriptions go along, DELETE only an
empty folder."""

from __future__ import annotations

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from mailtide.stores.base import StoreError
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings


def lsub(acct: ImapAccount) -> set[str]:
    with srv.session(acct) as c:
        typ, data = c.lsub('""', "*")
        assert typ == "OK", data
        return {
            srv._mutf7_decode(d.rsplit(b" ", 1)[1].strip(b'"').decode())
            for d in data
            if isinstance(d, bytes)
        }


async def test_rename_keeps_identity_uids_children_and_subscriptions(
    imap_account: ImapAccount,
) -> None:
    acct = imap_account
    for folder in ("Projekte/Alpha", "Projekte/Alpha/Entwürfe"):
        srv.append(acct, folder, srv.make_message(1, folder))
    store = ImapStore(settings(acct))
    await store.connect()
    try:
        await store.subscribe("Projekte/Alpha")
        await store.subscribe("Projekte/Alpha/Entwürfe")
        before = {f.name: f.identity for f in await store.list_folders()}
        uids = [m.uid for m in srv.fetch_all(acct, "Projekte/Alpha/Entwürfe")]
        assert before["Projekte/Alpha"]  # LIST-STATUS gives it with the listing

        await store.rename_folder("Projekte/Alpha", "Archiv/Älteres")

        after = {f.name: f.identity for f in await store.list_folders()}
        assert after["Archiv/Älteres"] == before["Projekte/Alpha"]
        assert after["Archiv/Älteres/Entwürfe"] == before["Projekte/Alpha/Entwürfe"]
        assert "Projekte/Alpha" not in after
        assert [m.uid for m in srv.fetch_all(acct, "Archiv/Älteres/Entwürfe")] == uids
        assert await store.folder_identity("Archiv/Älteres") == before["Projekte/Alpha"]
        assert lsub(acct) == {"Archiv/Älteres", "Archiv/Älteres/Entwürfe"}
        assert await store.subscribed() == lsub(acct)
        with pytest.raises(StoreError, match="INBOX is never renamed"):
            await store.rename_folder("Archiv/Älteres", "INBOX")
    finally:
        await store.close()


async def test_delete_only_an_empty_folder(imap_account: ImapAccount) -> None:
    acct = imap_account
    srv.append(acct, "Voll", srv.make_message(1, "Voll"))
    srv.create_folder(acct, "Leer")
    store = ImapStore(settings(acct))
    await store.connect()
    try:
        await store.subscribe("Leer")
        with pytest.raises(StoreError, match="cannot delete folder 'Voll': it is not empty"):
            await store.delete_folder("Voll")
        await store.delete_folder("Leer")
        assert srv.list_folders(acct) == ["INBOX", "Voll"]
        assert "Leer" not in lsub(acct)
        assert len(srv.fetch_all(acct, "Voll")) == 1
    finally:
        await store.close()
