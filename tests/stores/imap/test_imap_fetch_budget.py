"""Bodies are fetched in batches bounded by the caller's budget (a sync with several
mailboxes at once gives each a share of one budget), a message bigger than a batch alone."""

from __future__ import annotations

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


async def test_bodies_come_in_batches_of_a_quarter_of_the_budget(
    imap_account: ImapAccount,
) -> None:
    for i, kib in enumerate([100, 100, 100, 100, 100, 100, 700]):
        srv.append(imap_account, "INBOX", big(i, kib))
    # 6 x 100 KiB in batches of 1 MiB / 4: 3 commands; the 700 KiB one alone: 4 in all
    assert await fetch_commands(imap_account, 1 << 20) == (4, 7)
    # the store's own bound (16 MiB / 4): one command
    assert await fetch_commands(imap_account, None) == (1, 7)


async def test_bodies_held_stay_near_the_budget(imap_account: ImapAccount) -> None:
    """The caller holds bodies up to its budget before it writes them (as a sync does); the
    next batch is read while it holds them, so fetch reads ahead only a quarter of the
    budget: whole batches of the budget held twice as much."""
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
                held, size = [], 0  # written: let go
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert got == 80
    assert peak < budget * 1.25 + (1 << 20), peak  # and the reader's buffers


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
