"""``Mailbox.move`` on Maildir: ``rename(2)`` into the other folder, the unique name and the
inode kept (mutt and notmuch keep their index), keyword letters re-spelled by the target's
table, a file of the same name in the target never replaced."""

from __future__ import annotations

import os
from pathlib import Path

from mailtide.stores.maildir import MaildirStore
from stores.maildir.mdstore_helpers import incoming, message

SEEN = "\\Seen"


def files(path: str) -> dict[str, os.stat_result]:
    out = {}
    for sub in ("cur", "new"):
        for name in os.listdir(os.path.join(path, sub)):
            out[f"{sub}/{name}"] = os.stat(os.path.join(path, sub, name))
    return out


async def test_move_renames_keeping_name_inode_and_flags(store: MaildirStore) -> None:
    await store.create_folder("INBOX")
    await store.create_folder("Archive/2024")
    inbox = await store.open("INBOX")
    archive = await store.open("Archive/2024")
    # the target's table already gives "a" to another keyword
    await archive.append([incoming(message(9), frozenset({"Other"}))])
    ids = await inbox.append(
        [
            incoming(message(1), frozenset({SEEN, "Work"})),
            incoming(message(2)),  # no flags: in new/
            incoming(message(3)),
        ]
    )
    before = files(inbox.path)
    inodes = {name.split("/")[1].split(":2,")[0]: st.st_ino for name, st in before.items()}

    result = await inbox.move([ids[0], ids[1], "gone-meanwhile"], "Archive/2024")

    assert result.ids == {ids[0]: ids[0], ids[1]: ids[1]}
    after = files(archive.path)
    moved = {n.split("/")[1].split(":2,")[0]: (n, st.st_ino) for n, st in after.items()}
    assert moved[ids[0]][1] == inodes[ids[0]] and moved[ids[1]][1] == inodes[ids[1]]
    assert moved[ids[1]][0] == f"new/{ids[1]}"  # still unseen, still in new/
    flags = {m.id: m.flags for m in await archive.snapshot()}
    assert flags[ids[0]] == {SEEN, "Work"} and flags[ids[1]] == frozenset()
    assert {m.id for m in await inbox.snapshot()} == {ids[2]}
    assert (Path(archive.path) / "dovecot-keywords").read_text().splitlines() == [
        "0 Other",
        "1 Work",
    ]


async def test_a_file_of_that_name_in_the_target_is_not_replaced(store: MaildirStore) -> None:
    await store.create_folder("INBOX")
    await store.create_folder("Old")
    inbox, old = await store.open("INBOX"), await store.open("Old")
    (msg_id,) = await inbox.append([incoming(message(1))])
    clash = Path(old.path) / "cur" / f"{msg_id}:2,S"
    clash.write_bytes(b"Subject: someone else's\n\nother\n")
    result = await inbox.move([msg_id], "Old")
    assert result.ids == {}
    assert clash.read_bytes() == b"Subject: someone else's\n\nother\n"
    assert [m.id for m in await inbox.snapshot()] == [msg_id]


async def test_other_names_of_the_moved_file_go_with_it(store: MaildirStore) -> None:
    """A crash between new/ and cur/ left one file under two names (hard links): after the
    move the source holds neither, so the message is not there twice."""
    await store.create_folder("INBOX")
    await store.create_folder("Old")
    inbox = await store.open("INBOX")
    (msg_id,) = await inbox.append([incoming(message(1))])
    new = Path(inbox.path) / "new" / msg_id
    os.link(new, Path(inbox.path) / "cur" / f"{msg_id}:2,")
    await inbox.snapshot()
    result = await inbox.move([msg_id], "Old")
    assert result.ids == {msg_id: msg_id}
    assert files(inbox.path) == {}
    assert [m.id for m in await (await store.open("Old")).snapshot()] == [msg_id]


async def test_a_message_delivered_after_the_listing_moves_with_its_keywords(
    store: MaildirStore,
) -> None:
    """The folder was listed before the message was delivered, so the listing does not name
    it: the move still finds it, and grows the target's keyword table for its keywords (a
    keyword the table has no letter for would be dropped from the moved file's name)."""
    await store.create_folder("INBOX")
    await store.create_folder("Archive")
    inbox = await store.open("INBOX")
    [listed] = await inbox.append([incoming(message(1))])
    assert [m.id for m in await inbox.snapshot()] == [listed]
    [delivered] = await inbox.append([incoming(message(2), frozenset({SEEN, "Work"}))])

    result = await inbox.move([delivered], "Archive")

    assert result.ids == {delivered: delivered}
    archive = await store.open("Archive")
    assert {m.id: m.flags for m in await archive.snapshot()} == {delivered: {SEEN, "Work"}}
    assert (Path(archive.path) / "dovecot-keywords").read_text().splitlines() == ["0 Work"]
