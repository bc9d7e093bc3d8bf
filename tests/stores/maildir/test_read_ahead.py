"""Listings read ahead (stores/maildir/read_ahead.py): a folder whose stamp moved since the one
recorded is listed in the background, and its open takes that listing instead of listing
again, but only while the folder has not changed since; a folder whose stamp did not move is
not listed at all."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir import MaildirMailbox, MaildirStore
from mailtide.stores.maildir.read_ahead import STILL, ReadAhead
from mailtide.stores.maildir.stamp import folder_stamp, settled_after
from stores.maildir.listing_spy import record_listings
from stores.maildir.mdstore_helpers import incoming, message


async def filled(store: MaildirStore, name: str, count: int) -> MaildirMailbox:
    await store.create_folder(name)
    box = await store.open(name)
    await box.append([incoming(message(i)) for i in range(count)])
    await box.close()
    return box


def settle() -> None:
    """Past the moment a listing of a folder changed just now could not be trusted."""
    time.sleep(STILL * 3)


def read_ahead_done(store: MaildirStore) -> None:
    """Wait for the listings under way (the test's own look inside)."""
    for future in list(store._ahead._ahead.values()):
        future.exception(timeout=10)


def folder_reads(listed: list[str], box: MaildirMailbox) -> int:
    return sum(1 for path in listed if os.path.dirname(path) == box.path)


async def test_a_folder_whose_stamp_moved_is_listed_ahead_and_its_open_lists_it_no_more(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = await filled(store, "Work", 3)
    still = await filled(store, "Still", 2)
    time.sleep(max(0, settled_after(still.path) - time.time_ns()) / 1e9)
    recorded = {"Work": "an older stamp", "Still": folder_stamp(still.path)}
    assert recorded["Still"] is not None
    listed = record_listings(monkeypatch)
    await store.read_ahead(recorded)
    read_ahead_done(store)
    assert folder_reads(listed, work) == 2  # new/ and cur/, in the worker thread
    assert folder_reads(listed, still) == 0
    listed.clear()
    box = await store.open("Work")
    assert len(await box.snapshot()) == 3
    assert folder_reads(listed, box) == 0  # the listing read ahead


async def test_a_folder_changed_after_it_was_read_ahead_is_listed_again(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change is in the open's listing: the one read ahead no longer stands for it."""
    work = await filled(store, "Work", 3)
    settle()
    await store.read_ahead({"Work": None})
    read_ahead_done(store)
    sub, name = min((sub, n) for sub in ("new", "cur") for n in os.listdir(Path(work.path, sub)))
    seen = name.split(":2,")[0] + ":2,S"
    os.rename(Path(work.path, sub, name), Path(work.path, "cur", seen))  # another client reads it
    settle()
    listed = record_listings(monkeypatch)
    box = await store.open("Work")
    seen = {m.id: m.flags for m in await box.snapshot()}
    assert folder_reads(listed, box) == 2
    assert sorted(seen.values(), key=len) == [frozenset(), frozenset(), frozenset({"\\Seen"})]


async def test_a_folder_read_ahead_while_it_changed_is_not_taken(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed just now: a listing of it may miss a rename made in the same moment."""
    await filled(store, "Work", 2)
    await store.read_ahead({"Work": None})  # at once: cur/ was written a moment ago
    read_ahead_done(store)
    listed = record_listings(monkeypatch)
    box = await store.open("Work")
    assert len(await box.snapshot()) == 2
    assert folder_reads(listed, box) >= 2


async def test_what_was_not_taken_is_dropped_and_a_vanished_folder_is_left_to_its_open(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = await filled(store, "Work", 2)
    gone = await filled(store, "Gone", 1)
    settle()
    await store.read_ahead({"Work": None, "Gone": None, "Nowhere": None})
    read_ahead_done(store)
    await store.read_ahead({})  # the move pass is done
    assert store._ahead._ahead == {}
    listed = record_listings(monkeypatch)
    box = await store.open("Work")
    assert len(await box.snapshot()) == 2
    assert folder_reads(listed, work) == 2  # dropped: listed by its open
    os.rename(Path(gone.path, "cur"), Path(gone.path, "old"))
    await store.read_ahead({"Gone": None})
    read_ahead_done(store)
    with pytest.raises(MailboxError, match="Gone"):  # as without the read-ahead
        await (await store.open("Gone")).snapshot()


async def test_listings_not_yet_taken_hold_a_bounded_number_of_messages(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound the worker lists no more: those folders' opens list them, as without a
    read-ahead (a tree of many changed folders is not held in memory at once)."""
    boxes = [await filled(store, name, 2) for name in ("A", "B", "C")]
    settle()
    store._ahead = ReadAhead(most=3)
    listed = record_listings(monkeypatch)
    await store.read_ahead({"A": None, "B": None, "C": None})
    read_ahead_done(store)
    assert [folder_reads(listed, box) for box in boxes] == [2, 2, 0]  # 4 held after B
    listed.clear()
    for box in boxes:
        opened = await store.open(box.name)
        assert len(await opened.snapshot()) == 2
    assert [folder_reads(listed, box) for box in boxes] == [0, 0, 2]
