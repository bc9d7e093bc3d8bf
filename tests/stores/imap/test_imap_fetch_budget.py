"""Bodies are fetched in pieces bounded by the caller's budget (a sync with several
mailboxes at once gives each a share of one budget), a message bigger than a piece alone.
Half the budget is asked for ahead of the caller, in pieces of an eighth of it each: the
next pieces are on the wire while the caller holds and writes what came before."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator

import imap_helpers as srv
from dovecot import ImapAccount
from fault_proxy import fault_proxy
from mailtide.stores.imap import ImapMailbox, ImapStore
from stores.imap.imap_store_helpers import settings


def big(i: int, kib: int) -> bytes:
    head = srv.make_message(i, "INBOX")
    return head + b"x" * (kib * 1024 - 2) + b"\r\n"


@contextlib.asynccontextmanager
async def inbox(account: ImapAccount, **changes: object) -> AsyncIterator[ImapMailbox]:
    """INBOX of the account, listed and opened on a store of its own (``changes`` to its
    settings), closed with the store after."""
    store = ImapStore(settings(account, **changes))
    await store.connect()
    try:
        await store.list_folders()
        box = await store.open("INBOX")
        try:
            yield box
        finally:
            await box.close()
    finally:
        await store.close()


async def listed_ids(box: ImapMailbox) -> list[str]:
    return [m.id for m in await box.snapshot()]


async def fetch_commands(account: ImapAccount, budget: int | None) -> tuple[int, int]:
    """(FETCH commands for bodies, messages fetched) for the whole INBOX."""
    with fault_proxy(account.port, record=True) as proxy:
        async with inbox(account, port=proxy.port) as box:
            got = [f.id async for f in box.fetch(await listed_ids(box), budget)]
        sent = proxy.stream("up")
    return sent.count(b"BODY.PEEK[])"), len(got)


async def test_bodies_come_in_pieces_of_an_eighth_of_the_budget(
    imap_account: ImapAccount,
) -> None:
    for i, kib in enumerate([100, 100, 100, 100, 100, 100, 700]):
        srv.append(imap_account, "INBOX", big(i, kib))
    # 6 x 100 KiB in pieces of 4 MiB / 8: 2 commands; the 700 KiB one alone: 3 in all
    assert await fetch_commands(imap_account, 4 << 20) == (3, 7)
    # the store's own bound (16 MiB / 8): one command
    assert await fetch_commands(imap_account, None) == (1, 7)


async def test_the_next_pieces_are_on_the_wire_while_the_caller_holds_a_message(
    imap_account: ImapAccount,
) -> None:
    """Half of a 1 MiB budget read ahead in pieces of 128 KiB: one 100 KiB message each, five
    of them in flight at first, a sixth once the caller took the first.  While the caller
    holds it (writing, as a sync does), no more is asked for, and what was asked comes: the
    link does not wait for the caller.  Then every message, in order."""
    for i in range(16):
        srv.append(imap_account, "INBOX", big(i, 100))
    with fault_proxy(imap_account.port, record=True) as proxy:
        async with inbox(imap_account, port=proxy.port) as box:
            ids = await listed_ids(box)
            fetching = box.fetch(ids, 1 << 20)
            first = await anext(fetching)
            await asyncio.sleep(0.5)  # the caller writes; the server answers meanwhile
            asked = proxy.stream("up").count(b"BODY.PEEK[])")
            came = proxy.stream("down").count(b"BODY[] {")
            rest = [f.id async for f in fetching]
    assert (asked, came) == (6, 6)
    assert [first.id, *rest] == ids


async def test_a_caller_that_stops_early_leaves_the_connection_usable(
    imap_account: ImapAccount,
) -> None:
    """Closed after two messages with pieces still in flight: their answers are read and
    dropped, and the mailbox's next command gets its own answer."""
    for i in range(12):
        srv.append(imap_account, "INBOX", big(i, 100))
    async with inbox(imap_account) as box:
        ids = await listed_ids(box)
        async with contextlib.aclosing(box.fetch(ids, 1 << 20)) as fetching:
            got = [(await anext(fetching)).id, (await anext(fetching)).id]
        assert got == ids[:2]
        assert await listed_ids(box) == ids
        assert [f.id async for f in box.fetch(ids[5:7], 1 << 20)] == ids[5:7]


async def test_bodies_held_stay_near_the_budget(imap_account: ImapAccount) -> None:
    """The caller holds bodies up to its budget before it writes them (as a sync does); the
    next pieces are read while it holds them, so fetch reads ahead only half the budget:
    whole batches of the budget held twice as much."""
    for i in range(80):
        srv.append(imap_account, "INBOX", big(i, 100))  # 8 MiB in all
    budget = 4 << 20
    async with inbox(imap_account) as box:
        ids = await listed_ids(box)
        held: list[object] = []
        size = got = 0
        tracemalloc.start()
        async for fetched in box.fetch(ids, budget):
            held.append(fetched)
            size += fetched.body.size
            got += 1
            if size >= budget:
                await asyncio.sleep(0.05)  # written meanwhile: the pieces in flight come
                held, size = [], 0  # written: let go
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert got == 80
    assert peak < budget * 1.5 + (1 << 20), peak  # and the reader's buffers


async def size_questions(account: ImapAccount, listed: bool) -> tuple[int, int]:
    """(size-only FETCH commands, messages fetched) for the bodies of the whole INBOX, with
    or without a snapshot first (without: the UIDs come from a store of their own)."""
    if not listed:
        async with inbox(account) as box:
            ids = await listed_ids(box)
    with fault_proxy(account.port, record=True) as proxy:
        async with inbox(account, port=proxy.port) as box:
            if listed:
                ids = await listed_ids(box)
            got = [f.id async for f in box.fetch(ids, 250 * 1024)]
        sent = proxy.stream("up")
    return sent.count(b"(UID RFC822.SIZE)"), len(got)


async def test_sizes_the_snapshot_gave_are_not_asked_again(imap_account: ImapAccount) -> None:
    """A first sync lists every message with its size: fetching their bodies in batches
    needs no second round of size-only FETCHes (10k small responses fewer at 10k)."""
    for i, kib in enumerate([100, 100, 100, 100, 700]):
        srv.append(imap_account, "INBOX", big(i, kib))
    assert await size_questions(imap_account, listed=True) == (0, 5)
    # ids the mailbox never listed: their sizes are asked for, and batches still hold
    assert await size_questions(imap_account, listed=False) == (1, 5)
