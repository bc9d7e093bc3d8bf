"""What a Maildir written by others may hold in cur/ and new/: flags on a file in new/, several
files with one unique name, and things that are no message files (symlinks, FIFOs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup
from mailtide.stores.base import FlagChange, MailboxError
from mailtide.stores.maildir import MaildirMailbox, MaildirStore
from stores.maildir.mdstore_helpers import message

SEEN, FLAGGED, ANSWERED, DRAFT = "\\Seen", "\\Flagged", "\\Answered", "\\Draft"


@pytest.fixture
async def box(store: MaildirStore) -> MaildirMailbox:
    await store.create_folder("INBOX")
    return await store.open("INBOX")


def put(box: MaildirMailbox, sub: str, name: str, n: int) -> Path:
    path = Path(box.path, sub, name)
    path.write_bytes(message(n).replace(b"\r\n", b"\n"))
    return path


def files(box: MaildirMailbox) -> list[str]:
    return sorted(f"{sub}/{n}" for sub in ("new", "cur") for n in os.listdir(Path(box.path, sub)))


def settle() -> None:
    """Let new/ and cur/ age past the scan's "changed just now" window, as they would between a
    client's writes and a sync."""
    time.sleep(0.1)


# ---- flags on a file in new/ ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("add", "remove", "after"),
    [
        ({ANSWERED}, {FLAGGED}, "cur/X:2,RS"),
        (set(), {SEEN, FLAGGED}, "cur/X:2,"),  # no flag left: still a valid name, in cur/
    ],
    ids=["changed", "all-removed"],
)
async def test_flags_of_a_file_in_new_count_and_change(
    box: MaildirMailbox, add: set[str], remove: set[str], after: str
) -> None:
    """Some MDAs and clients deliver ``new/X:2,S``: those flags are the message's, and a flag
    change renames it into cur/ with the new info."""
    put(box, "new", "X:2,FS", 1)
    [info] = await box.snapshot()
    assert (info.id, info.flags) == ("X", {SEEN, FLAGGED})
    [fetched] = [f async for f in box.fetch(["X"])]
    assert fetched.flags == {SEEN, FLAGGED}
    await box.set_flags([FlagChange("X", frozenset(add), frozenset(remove))])
    assert files(box) == [after]
    [info] = await box.snapshot()
    assert info.flags == ({SEEN, FLAGGED} | add) - remove


async def test_an_unflagged_file_in_new_stays_there(box: MaildirMailbox) -> None:
    put(box, "new", "Y", 1)
    await box.snapshot()
    await box.set_flags([FlagChange("Y", frozenset(), frozenset({SEEN}))])
    assert files(box) == ["new/Y"]


# ---- several files with one unique name ----------------------------------------------------


async def test_files_sharing_a_unique_name_become_separate_messages(box: MaildirMailbox) -> None:
    """Three files named X: the one with the lowest inode keeps the id, the others get fresh
    names (in their subdirectory, with their flags), each logged; a second scan renames
    nothing more and lists the same three messages."""
    paths = [put(box, "new", "X", 1), put(box, "cur", "X:2,DRS", 2), put(box, "cur", "X:2,FS", 3)]
    keeper = min(paths, key=lambda p: p.stat().st_ino)
    settle()
    with capture_logs() as logs:
        await box.status()
        listed = {m.id: m.flags for m in await box.snapshot()}
    renamed = [e for e in logs if e["event"] == "maildir.duplicate_renamed"]
    assert sorted(e["file"] for e in renamed) == sorted(
        f"{p.parent.name}/{p.name}" for p in paths if p != keeper
    )
    assert len(listed) == 3 and "X" in listed
    assert sorted(listed.values(), key=sorted) == sorted(
        [frozenset(), frozenset({DRAFT, ANSWERED, SEEN}), frozenset({FLAGGED, SEEN})], key=sorted
    )
    assert keeper.exists()
    bodies = {m.id: (await read(box, m.id)) for m in await box.snapshot()}
    assert sorted(bodies.values()) == sorted(message(n) for n in (1, 2, 3))
    settle()
    before = files(box)
    with capture_logs() as logs:
        again = await box.snapshot()
    assert files(box) == before and {m.id for m in again} == set(listed)
    assert not [e for e in logs if e["event"].startswith("maildir.duplicate")]


async def read(box: MaildirMailbox, msg_id: str) -> bytes:
    [fetched] = [f async for f in box.fetch([msg_id])]
    return b"".join([c async for c in fetched.body.chunks()])


async def test_hard_links_of_one_file_stay_one_message(box: MaildirMailbox) -> None:
    """``new/X`` and ``cur/X:2,S`` that are one file (a link-and-unlink move cut short) are one
    message, and deleting it removes both names."""
    os.link(put(box, "new", "X", 1), Path(box.path, "cur", "X:2,S"))
    settle()
    [info] = await box.snapshot()
    assert (info.id, info.flags) == ("X", {SEEN})
    assert await box.delete(["X"]) == {"X"}
    assert files(box) == []


async def test_a_folder_not_listed_this_open_finds_files_by_name(store: MaildirStore) -> None:
    """A plan made by an earlier open (no listing in this one): its messages are found by
    name, a symlink of a message's name is never taken for it, and a message with two names
    (hard links) still loses both when deleted."""
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    os.link(put(box, "new", "X", 1), Path(box.path, "cur", "X:2,S"))
    put(box, "cur", "Y:2,", 2)
    os.symlink(Path(box.path, "cur", "Y:2,"), Path(box.path, "new", "Y"))
    settle()
    again = await store.open("INBOX")
    await again.set_flags([FlagChange("Y", frozenset({FLAGGED}), frozenset())])
    assert await again.delete(["X"]) == {"X"}
    assert files(box) == ["cur/Y:2,F", "new/Y"]


async def test_a_dry_run_renames_nothing_and_leaves_the_others_out(store: MaildirStore) -> None:
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    put(box, "new", "X", 1)
    put(box, "cur", "X:2,S", 2)
    before = files(box)
    settle()
    dry = MaildirMailbox(box.name, box.path, read_only=True)
    with capture_logs() as logs:
        assert [m.id for m in await dry.snapshot()] == ["X"]
        await dry.snapshot()
    assert files(box) == before
    assert len([e for e in logs if e["event"] == "maildir.duplicate_name"]) == 1


# ---- no message files ------------------------------------------------------------------------


async def test_symlinks_and_fifos_are_skipped_with_one_warning_each(
    box: MaildirMailbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-message"
    outside.write_bytes(message(9).replace(b"\r\n", b"\n"))
    put(box, "cur", "real:2,S", 1)
    odd = {
        "cur/link:2,S": "a symbolic link, which mailtide never follows",
        "new/dangling": "a dangling symbolic link, not a message file",
        "new/fifo": "a named pipe (FIFO), not a message file",
        "cur/dir:2,": "a directory, not a message file",
    }
    Path(box.path, "cur", "link:2,S").symlink_to(outside)
    Path(box.path, "new", "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(Path(box.path, "new", "fifo"))
    Path(box.path, "cur", "dir:2,").mkdir()
    with capture_logs() as logs:
        await box.status()
        assert [m.id for m in await box.snapshot()] == ["real"]
        await box.snapshot()
    skipped = {
        os.path.relpath(e["path"], box.path): e["reason"]
        for e in logs
        if e["event"] == "maildir.file_skipped"
    }
    assert skipped == odd
    assert len([e for e in logs if e["event"] == "maildir.file_skipped"]) == len(odd)


@pytest.mark.parametrize("swap", ["fifo", "symlink"])
async def test_a_message_swapped_for_a_fifo_or_symlink_is_never_read(
    box: MaildirMailbox, tmp_path: Path, swap: str
) -> None:
    """Another program replaces a listed message file: reading it neither blocks on a FIFO nor
    follows a symlink out of the Maildir; the message counts as vanished."""
    outside = tmp_path / "secret"
    outside.write_bytes(b"Subject: not mail\n\nprivate\n")
    path = put(box, "cur", "X:2,S", 1)
    await box.snapshot()
    path.unlink()
    if swap == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(outside)
    try:
        assert await asyncio.wait_for(box.identify(["X"]), 10) == {}
        assert await asyncio.wait_for(_fetched_ids(box, "X"), 10) == []
    finally:
        if swap == "fifo":  # a reader blocked on the FIFO (the failure) is let go
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


async def _fetched_ids(box: MaildirMailbox, msg_id: str) -> list[str]:
    return [f.id async for f in box.fetch([msg_id])]


async def test_a_fifo_for_the_folders_own_files_never_blocks(store: MaildirStore) -> None:
    """A FIFO in place of dovecot-keywords reads as no table; one in place of .mailtide-id
    fails the folder with a line that says what to do."""
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    put(box, "cur", "X:2,Sa", 1)
    fifos = [Path(box.path, "dovecot-keywords"), Path(box.path, ".mailtide-id")]
    for fifo in fifos:
        os.mkfifo(fifo)
    try:
        [info] = await asyncio.wait_for(box.snapshot(), 10)
        assert info.flags == {SEEN}
        with pytest.raises(MailboxError, match=r"\.mailtide-id is not a regular file .*remove it"):
            await asyncio.wait_for(box.status(), 10)
    finally:
        for fifo in fifos:  # a reader blocked on one (the failure) is let go
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# ---- through a real sync ---------------------------------------------------------------------


def local_inbox(s: Setup) -> Path:
    inbox = loc.folder_dir(s.root, s.layout, "INBOX")
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    return inbox


def write_local(inbox: Path, name: str, i: int) -> None:
    (inbox / name).write_bytes(srv.make_message(i, "INBOX").replace(b"\r\n", b"\n"))


def server_flags(s: Setup) -> dict[str, frozenset[str]]:
    return {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}


def test_flags_of_a_file_in_new_reach_the_server(imap_account: ImapAccount, tmp_path: Path) -> None:
    s = make_setup(imap_account, tmp_path, "fs")
    write_local(local_inbox(s), "new/1700000000.mda1.host:2,FS", 1)
    assert not s.sync().failed
    assert server_flags(s) == {srv.message_id(1, "INBOX"): {SEEN, FLAGGED}}


def test_three_files_with_one_unique_name_are_three_messages(
    imap_account: ImapAccount, tmp_path: Path, layout: str
) -> None:
    """``new/X``, ``cur/X:2,DRS`` and ``cur/X:2,FS``, three different messages: after a sync the
    server holds each once with its flags, and a second sync changes nothing on either side."""
    s = make_setup(imap_account, tmp_path, layout)
    inbox = local_inbox(s)
    for i, name in enumerate(["new/X", "cur/X:2,DRS", "cur/X:2,FS"], 1):
        write_local(inbox, name, i)
    settle()
    report = s.sync()
    assert not report.failed, report.failures()
    held = server_flags(s)
    assert len(srv.fetch_all(s.imap, "INBOX")) == 3
    assert held == {
        srv.message_id(1, "INBOX"): frozenset(),
        srv.message_id(2, "INBOX"): {DRAFT, ANSWERED, SEEN},
        srv.message_id(3, "INBOX"): {FLAGGED, SEEN},
    }
    local = sorted(m.path.name for m in loc.messages(s.root, s.layout, "INBOX"))
    assert len({name.split(":2,")[0] for name in local}) == 3
    uids = [m.uid for m in srv.fetch_all(s.imap, "INBOX")]
    settle()
    again = s.sync()
    assert not again.failed and not any(any(m.summary().values()) for m in again.mailboxes)
    assert [m.uid for m in srv.fetch_all(s.imap, "INBOX")] == uids
    assert sorted(m.path.name for m in loc.messages(s.root, s.layout, "INBOX")) == local
