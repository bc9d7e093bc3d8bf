"""``Mailbox.move`` on IMAP: ``UID MOVE`` on Dovecot, ``UID COPY`` + ``\\Deleted`` + expunge of
only ours on Courier (no MOVE, no UIDPLUS); what the server holds afterwards."""

from __future__ import annotations

import os

import imap_helpers as srv
from courier import Courier
from dovecot import ImapAccount
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings

SEEN, FLAGGED, DELETED = "\\Seen", "\\Flagged", "\\Deleted"


async def moved(acct: ImapAccount, source: str, uids: list[str], target: str):  # type: ignore[no-untyped-def]
    store = ImapStore(settings(acct))
    await store.connect()
    try:
        box = await store.open(source)
        try:
            return await box.move(uids, target)
        finally:
            await box.close()
    finally:
        await store.close()


def held(acct: ImapAccount, folder: str) -> dict[str, tuple[int, frozenset[str]]]:
    return {m.message_id: (m.uid, m.flags) for m in srv.fetch_all(acct, folder)}


async def test_uid_move_keeps_flags_and_says_the_new_uids(imap_account: ImapAccount) -> None:
    a = imap_account
    srv.append(a, "Archive", srv.make_message(90, "Archive"), [SEEN])  # target UID 1 taken
    for i in range(1, 6):
        srv.append(a, "INBOX", srv.make_message(i, "INBOX"), [SEEN, "Work"] if i == 2 else [])
    # another client: message 4 expunged, message 5 marked \Deleted and left
    srv.expunge(a, "INBOX", srv.message_id(4, "INBOX"))
    srv.set_flags(a, "INBOX", srv.message_id(5, "INBOX"), [DELETED])
    store = ImapStore(settings(a))
    await store.connect()
    assert "MOVE" in store.capabilities
    await store.close()

    result = await moved(a, "INBOX", ["2", "3", "4"], "Archive")

    assert result.ids == {"2": "2", "3": "3"}  # 4 was gone: not moved
    assert result.kept == frozenset()
    archive = held(a, "Archive")
    assert archive[srv.message_id(2, "INBOX")] == (2, {SEEN, "Work"})
    assert archive[srv.message_id(3, "INBOX")] == (3, frozenset())
    inbox = held(a, "INBOX")
    assert sorted(inbox) == sorted([srv.message_id(1, "INBOX"), srv.message_id(5, "INBOX")])
    assert inbox[srv.message_id(5, "INBOX")][1] == {DELETED}  # another client's: untouched


async def test_a_thousand_moves_in_one_go(imap_account: ImapAccount) -> None:
    a = imap_account
    srv.append_many(a, "INBOX", [srv.make_message(i, "INBOX") for i in range(1000)])
    srv.create_folder(a, "Old")
    result = await moved(a, "INBOX", [str(u) for u in range(1, 1001)], "Old")
    assert result.ids == {str(u): str(u) for u in range(1, 1001)}
    assert srv.fetch_all(a, "INBOX") == []
    assert len(srv.fetch_all(a, "Old")) == 1000


def courier_account(courier: Courier, name: str) -> ImapAccount:
    return courier.account(f"c{os.getpid()}-{name}"[:40])


async def test_copy_and_expunge_where_there_is_no_move(courier: Courier) -> None:
    a = courier_account(courier, "mv-plain")
    with srv.session(a) as c:
        srv._ok(c.create(srv._quote("INBOX.Archive")))
    for i in range(1, 4):
        srv.append(a, "INBOX", srv.make_message(i, "INBOX"), [FLAGGED] if i == 1 else [])
    result = await moved(a, "INBOX", ["1", "2"], "Archive")
    assert set(result.ids) == {"1", "2"} and result.kept == frozenset()
    archive = held(a, "INBOX.Archive")
    assert {k: v[1] for k, v in archive.items()} == {
        srv.message_id(1, "INBOX"): {FLAGGED},
        srv.message_id(2, "INBOX"): frozenset(),
    }
    assert list(held(a, "INBOX")) == [srv.message_id(3, "INBOX")]


async def test_without_uidplus_another_clients_deletion_is_never_expunged(
    courier: Courier,
) -> None:
    """A plain EXPUNGE would take the other client's \\Deleted message too: ours stay marked
    (``kept``), theirs stays."""
    a = courier_account(courier, "mv-others")
    with srv.session(a) as c:
        srv._ok(c.create(srv._quote("INBOX.Archive")))
    for i in range(1, 4):
        srv.append(a, "INBOX", srv.make_message(i, "INBOX"), [])
    srv.set_flags(a, "INBOX", srv.message_id(3, "INBOX"), [DELETED])
    result = await moved(a, "INBOX", ["1"], "Archive")
    assert set(result.ids) == {"1"} and result.kept == frozenset({"1"})
    assert list(held(a, "INBOX.Archive")) == [srv.message_id(1, "INBOX")]
    inbox = held(a, "INBOX")
    assert inbox[srv.message_id(1, "INBOX")][1] == {DELETED}
    assert inbox[srv.message_id(3, "INBOX")][1] == {DELETED}
    assert srv.message_id(2, "INBOX") in inbox
