"""Another mail client renaming and deleting files while the Maildir store works on them.

The rule: a message another client renamed (flags, new/ -> cur/) is found again by its
unique name and worked on; only a message a fresh scan no longer lists counts as gone.
Never may a race make the store report a message that is still there as missing, deleted
or done: the sync would carry that to the server as a deletion, a resurrection, or a flag
change nobody made.  Each test stages the race at the worst instant, deterministically
(right after one of the store's own scans), except the scan test, which renames for real
from a thread while the store lists.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

from mailtide.stores.base import FlagChange
from mailtide.stores.maildir import MaildirMailbox, MaildirStore
from mailtide.stores.maildir.mailbox import SMALL_BODY
from stores.maildir.mdstore_helpers import incoming, message

SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"


async def box_with(store: MaildirStore, n: int, size: int = 0) -> tuple[MaildirMailbox, list[str]]:
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    bodies = [message(i, b"x" * size + b"\r\n") for i in range(n)]
    ids = [str(i) for i in await box.append([incoming(b, flags=frozenset({SEEN})) for b in bodies])]
    await box.snapshot()
    return box, ids


def name_of(box: MaildirMailbox, msg_id: str) -> Path:
    for sub in ("cur", "new"):
        for name in os.listdir(Path(box.path, sub)):
            if name.split(":2,")[0] == msg_id:
                return Path(box.path, sub, name)
    raise AssertionError(f"{msg_id} is not in {box.path}")


def client_flags(box: MaildirMailbox, msg_id: str, letters: str) -> None:
    """What mutt does to change flags: rename into cur/ with the new info."""
    os.rename(name_of(box, msg_id), Path(box.path, "cur", f"{msg_id}:2,{letters}"))


def after_each_scan(box: MaildirMailbox, meddle: Callable[[int], None]) -> None:
    """Call ``meddle(n)`` right after the store's n-th scan from now (the worst instant: the
    store has just learned every name, and one of them changes at once)."""
    real = box._scan
    count = 0

    def scan():  # type: ignore[no-untyped-def]
        nonlocal count
        index = real()
        count += 1
        meddle(count)
        return index

    box._scan = scan  # type: ignore[method-assign]


async def test_flags_are_set_on_messages_renamed_again_after_a_rescan(
    fs_store: MaildirStore,
) -> None:
    """The client renames a, the store's rename of a fails and it rescans, then the client
    renames b: b must still get its flag (not be skipped as vanished while the caller
    records the flag as set: the next sync would then remove it from the server)."""
    box, (a, b, c) = await box_with(fs_store, 3)
    client_flags(box, a, "FS")
    after_each_scan(box, lambda n: client_flags(box, b, "RS") if n == 1 else None)
    changes = [FlagChange(i, frozenset({"\\Draft"}), frozenset()) for i in (a, b, c)]
    await box.set_flags(changes)
    assert name_of(box, a).name == f"{a}:2,DFS"
    assert name_of(box, b).name == f"{b}:2,DRS"
    assert name_of(box, c).name == f"{c}:2,DS"


async def test_delete_reports_only_what_is_gone(fs_store: MaildirStore) -> None:
    """The same race on a deletion: b, renamed after the store's rescan, is deleted all the
    same (or at least never reported gone while its file is still there: the caller would
    forget it and the next sync would upload it again, a resurrection)."""
    box, (a, b, c) = await box_with(fs_store, 3)
    client_flags(box, a, "FS")
    after_each_scan(box, lambda n: client_flags(box, b, "RS") if n == 1 else None)
    gone = await box.delete([a, b, c])
    left = {p.split(":2,")[0] for sub in ("cur", "new") for p in os.listdir(Path(box.path, sub))}
    assert gone == {a, b, c} - left
    assert left == set()


async def test_a_message_deleted_after_listing_is_still_read_whole(
    fs_store: MaildirStore,
) -> None:
    """The client deletes (or renames) a message after ``fetch`` listed it and before its
    body is read: the body is still read whole, small or big, instead of failing the copy."""
    await fs_store.create_folder("INBOX")
    box = await fs_store.open("INBOX")
    small, big = message(1), message(2, b"B" * (SMALL_BODY + 1000) + b"\r\n")
    ids = [str(i) for i in await box.append([incoming(small), incoming(big)])]
    fetched = [f async for f in box.fetch(ids)]
    for msg_id in ids:
        os.unlink(name_of(box, msg_id))
    assert [b"".join([c async for c in f.body.chunks()]) for f in fetched] == [small, big]


async def test_identify_finds_messages_renamed_one_after_another(fs_store: MaildirStore) -> None:
    """Each identity read races a rename of the next message: all are identified."""
    box, ids = await box_with(fs_store, 5)
    for msg_id in ids:
        client_flags(box, msg_id, "S")  # the index is stale for every one
    after_each_scan(box, lambda n: client_flags(box, ids[n], "FS") if n < len(ids) else None)
    assert set(await box.identify(ids)) == set(ids)


def test_a_scan_never_misses_a_message_being_renamed(fs_store: MaildirStore) -> None:
    """A thread renames files (flag changes, as fast as it can) while the store lists the
    folder, over and over: every listing has every message.  (readdir may return neither
    name of a file renamed during the listing; a recorded message missing from a listing
    reads as deleted.)"""
    import asyncio

    box, ids = asyncio.run(box_with(fs_store, 1500))
    stop = threading.Event()
    rng = random.Random(7)

    def client() -> None:
        names = {i: f"{i}:2,S" for i in ids}
        cur = Path(box.path, "cur")
        while not stop.is_set():
            msg_id = rng.choice(ids)
            new = f"{msg_id}:2,{rng.choice(['S', 'FS', 'RS', 'FRS'])}"
            if new != names[msg_id]:
                os.rename(cur / names[msg_id], cur / new)
                names[msg_id] = new

    thread = threading.Thread(target=client)
    thread.start()
    try:
        short = []
        for _ in range(60):
            listed = {m.id for m in asyncio.run(box.snapshot())}
            if listed != set(ids):
                short.append(len(set(ids) - listed))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert short == [], f"listings missing messages: {short}"
