"""Commands a run sends without waiting for the answer to the one before (pipelining,
``ImapProtocol.run_many``): each flight costs one round trip, which a slow link pays in full.
What the recording proxy saw is cut into turns, the client's bytes between two answers of the
server on one connection; the sync's outcome is checked as always."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from engine.test_moves import proxy as proxy  # the recording proxy and its account
from engine.test_moves import s as s
from engine.test_own_server_writes import first_run, mid, selects
from engine_helpers import Setup, assert_in_sync
from fault_proxy import FaultProxy
from mailtide.stores.base import MailboxStatus
from mailtide.stores.imap.store import ImapStore
from stores.imap.imap_store_helpers import settings

SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"


def turns(proxy: FaultProxy) -> list[list[str]]:
    """The command lines (without tags) of each turn of the client, on every connection."""
    sent: dict[int, list[bytearray]] = {}
    last: dict[int, str] = {}
    for direction, _, number, data in proxy.recorded:
        if direction == "up":
            if last.get(number) != "up":
                sent.setdefault(number, []).append(bytearray())
            sent[number][-1] += data
        last[number] = direction
    return [
        [line.split(" ", 1)[-1] for line in turn.decode(errors="replace").splitlines()]
        for turns in sent.values()
        for turn in turns
    ]


def turn_of(proxy: FaultProxy, start: str) -> list[str]:
    """The one turn in which a command line starting with ``start`` was sent."""
    found = [t for t in turns(proxy) if any(line.startswith(start) for line in t)]
    assert len(found) == 1, (start, turns(proxy))
    return found[0]


def test_a_changed_mailbox_is_selected_and_asked_its_changes_in_one_round_trip(
    s: Setup, proxy: FaultProxy
) -> None:
    first_run(s)
    srv.set_flags(s.imap, "INBOX", mid(1), [FLAGGED])
    srv.append(s.imap, "INBOX", srv.make_message(7, "INBOX"), [SEEN])
    proxy.recorded.clear()
    assert not s.sync().failed
    flight = turn_of(proxy, 'SELECT "INBOX"')
    assert any("CHANGEDSINCE" in line for line in flight), flight
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    assert local[mid(1)].letters == "F" and local[mid(7)].letters == "S"
    assert_in_sync(s)


def test_flags_of_several_kinds_go_to_the_server_in_one_round_trip(
    s: Setup, proxy: FaultProxy
) -> None:
    """And they are still counted: the next run reads none of them back."""
    local = first_run(s, 5)
    loc.set_letters(local[mid(0)], "S")
    loc.set_letters(local[mid(1)], "F")
    loc.set_letters(local[mid(2)], "R")
    proxy.recorded.clear()
    assert not s.sync().failed
    stores = [t for t in turns(proxy) if any(line.startswith("UID STORE") for line in t)]
    assert len(stores) == 1 and len(stores[0]) == 3, stores
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held == {
        mid(0): {SEEN},
        mid(1): {FLAGGED},
        mid(2): {ANSWERED},
        mid(3): set(),
        mid(4): set(),
    }
    proxy.recorded.clear()
    assert not s.sync().failed
    assert selects(proxy) == []
    assert_in_sync(s)


def test_a_message_with_two_changes_is_stored_twice_in_two_round_trips(
    s: Setup, proxy: FaultProxy
) -> None:
    """A STORE ``UNCHANGEDSINCE`` fails for a message an earlier STORE of its flight changed:
    one flight names each message once.  Both changes reach the server, still counted."""
    for i, flags in enumerate([[FLAGGED], []]):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), flags)
    assert not s.sync().failed
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    loc.set_letters(local[mid(0)], "S")  # \Seen added, \Flagged taken away
    loc.set_letters(local[mid(1)], "S")
    proxy.recorded.clear()
    assert not s.sync().failed
    stores = [t for t in turns(proxy) if any(line.startswith("UID STORE") for line in t)]
    assert sorted(len(t) for t in stores) == [1, 1], stores  # +\Seen for both, then -\Flagged
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held == {mid(0): {SEEN}, mid(1): {SEEN}}
    proxy.recorded.clear()
    assert not s.sync().failed
    assert selects(proxy) == []
    assert_in_sync(s)


def test_a_deletion_is_expunged_after_its_mark_is_answered(s: Setup, proxy: FaultProxy) -> None:
    """Not in one flight: a server running both at once tells no mod-sequence for the mark
    of a message it expunged meanwhile (Dovecot), and the next run would read it back."""
    local = first_run(s)
    os.unlink(local[mid(2)].path)
    proxy.recorded.clear()
    assert not s.sync().failed
    mark = turn_of(proxy, "UID STORE")
    assert not any(line.startswith("UID EXPUNGE") for line in mark), mark
    assert {m.message_id for m in srv.fetch_all(s.imap, "INBOX")} == {mid(0), mid(1), mid(3)}
    proxy.recorded.clear()
    assert not s.sync().failed
    assert selects(proxy) == []


@pytest.fixture
def store_proxy(dovecot: Dovecot) -> Iterator[FaultProxy]:
    with FaultProxy(dovecot.port, record=True) as p:
        yield p


def on_store(
    acct: ImapAccount, proxy: FaultProxy, body: Callable[[ImapStore], Awaitable[None]]
) -> None:
    """``body`` with a store of ``acct`` connected through ``proxy``, closed however it ends."""

    async def run() -> None:
        store = ImapStore(settings(acct, port=proxy.port))
        try:
            await store.connect()
            await body(store)
        finally:
            await store.close()

    asyncio.run(run())


def test_a_mailbox_selected_for_its_status_asks_the_expected_changes_in_the_same_flight(
    imap_account: ImapAccount, store_proxy: FaultProxy
) -> None:
    """A status given back may no longer hold while another mailbox is open (its pair may
    write into this one): ``status`` then selects, with the changes since the status the
    caller said it expects (``expect``)."""
    for i in range(3):
        srv.append(imap_account, "INBOX", srv.make_message(i, "INBOX"), [])
    srv.create_folder(imap_account, "Work")

    async def body(store: ImapStore) -> None:
        await store.list_folders()
        inbox = await store.open("INBOX")
        before = await inbox.status()
        await inbox.close()  # unselected: its listed status is given back
        srv.set_flags(imap_account, "INBOX", srv.message_id(1, "INBOX"), [FLAGGED])
        work = await store.open("Work")  # open beside it: the status no longer holds
        inbox = await store.open("INBOX")
        store_proxy.recorded.clear()
        inbox.expect(before)
        after = await inbox.status()
        assert after.highestmodseq is not None and before.highestmodseq is not None
        assert after.highestmodseq > before.highestmodseq
        delta = await inbox.changes_since(before)
        assert delta is not None
        assert [(m.id, m.flags) for m in delta.changed] == [("2", frozenset({FLAGGED}))]
        flight = turn_of(store_proxy, 'SELECT "INBOX"')
        assert any("CHANGEDSINCE" in line for line in flight), flight
        assert turns(store_proxy)[-1] == flight  # changes_since asked nothing more
        await inbox.close()
        await work.close()

    on_store(imap_account, store_proxy, body)


def test_changes_asked_with_a_select_that_finds_another_validity_are_not_given(
    imap_account: ImapAccount, store_proxy: FaultProxy
) -> None:
    """The mailbox was recreated between the LIST and the SELECT: the CHANGEDSINCE in the
    SELECT's flight read other messages, so the caller gets None (a full listing), never
    them as changes."""
    srv.create_folder(imap_account, "Work")
    for i in range(2):
        srv.append(imap_account, "Work", srv.make_message(i, "Work"), [])

    async def body(store: ImapStore) -> None:
        await store.list_folders()
        with srv.session(imap_account) as c:  # another client recreates it
            assert c.delete("Work")[0] == "OK"
            assert c.create("Work")[0] == "OK"
        srv.append(imap_account, "Work", srv.make_message(5, "Work"), [SEEN])
        work = await store.open("Work")
        listed = await work.status()  # the LIST's, from before
        since = MailboxStatus(listed.validity, listed.uidnext, 1, listed.count, None)
        store_proxy.recorded.clear()
        assert await work.changes_since(since) is None
        flight = turn_of(store_proxy, 'SELECT "Work"')
        assert any("CHANGEDSINCE" in line for line in flight), flight
        assert str(work.uidvalidity) != listed.validity
        await work.close()

    on_store(imap_account, store_proxy, body)


def test_a_connection_asks_namespace_and_folders_with_its_enable_in_one_round_trip(
    imap_account: ImapAccount, store_proxy: FaultProxy
) -> None:
    """The store's own connection: LOGIN, then ENABLE, NAMESPACE and the folder LIST in one
    flight, whose LIST answers the ``list_folders`` that follows (nothing more is sent)."""
    srv.create_folder(imap_account, "Work/Clients")

    async def body(store: ImapStore) -> None:
        names = {f.name for f in await store.list_folders()}
        assert {"INBOX", "Work", "Work/Clients"} <= names
        assert store.names.separator == "/"
        assert "QRESYNC" in store.capabilities and store._client is not None
        assert "QRESYNC" in store._client.enabled

    on_store(imap_account, store_proxy, body)
    flights = turns(store_proxy)
    assert [line.split(" ")[0] for line in flights[1]] == ["ENABLE", "NAMESPACE", "LIST"]
    assert flights[2:] == [["LOGOUT"]], flights


def test_a_folder_created_after_the_connection_is_listed(
    imap_account: ImapAccount, store_proxy: FaultProxy
) -> None:
    """The LIST asked with the connection is not the answer once anything else was asked of
    the server or written to it: the folder the store created, or another client's, is in
    the listing that follows."""

    async def body(store: ImapStore) -> None:
        await store.create_folder("Fresh")
        assert "Fresh" in {f.name for f in await store.list_folders()}
        srv.create_folder(imap_account, "Other")  # no command of the store's since
        assert "Other" in {f.name for f in await store.list_folders()}

    on_store(imap_account, store_proxy, body)


def test_a_mailbox_connection_sends_its_enable_with_its_first_command(
    imap_account: ImapAccount, store_proxy: FaultProxy
) -> None:
    """LOGIN alone, then ENABLE in one flight with what the mailbox asks first; its
    extensions are enabled before the mailbox reads them.  (The first mailbox to need a
    connection takes the store's own, whose ENABLE went with its NAMESPACE: Work is second.)"""
    srv.create_folder(imap_account, "Work")
    srv.append(imap_account, "Work", srv.make_message(1, "Work"), [])

    async def body(store: ImapStore) -> None:
        await store.list_folders()
        inbox = await store.open("INBOX")
        await inbox.listing()
        work = await store.open("Work")
        store_proxy.recorded.clear()
        assert list((await work.listing()).keys) == ["1"]
        assert "QRESYNC" in work.enabled
        first = [t for t in turns(store_proxy) if t[0].startswith("ENABLE")]
        assert len(first) == 1 and len(first[0]) > 1, turns(store_proxy)
        await work.close()
        await inbox.close()

    on_store(imap_account, store_proxy, body)
