"""A sync lists the local folders whose stamp moved while it waits for the server's folders
(stores/maildir/read_ahead.py).  What another program changes in such a folder after that
listing is still synced: the folder's open lists it again."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup, assert_in_sync
from mailtide.stores.maildir import MaildirStore
from mailtide.stores.maildir.read_ahead import STILL

SEEN, FLAGGED = "\\Seen", "\\Flagged"


def mid(i: int) -> str:
    return srv.message_id(i, "INBOX")


def test_a_change_made_after_the_read_ahead_is_synced(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    for i in range(3):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), [])
    assert not s.sync().failed
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    loc.set_letters(local[mid(0)], "S")  # read before the run: the stamp moves
    time.sleep(STILL * 3)
    read_ahead = MaildirStore.read_ahead
    listed: list[str] = []

    async def then_flagged(self: MaildirStore, recorded: Mapping[str, str | None]) -> None:
        await read_ahead(self, recorded)
        for path, future in list(self._ahead._ahead.items()):
            if future.result(timeout=10) is not None:
                listed.append(path)
        if recorded:  # another program flags a message meanwhile
            again = loc.by_message_id(s.root, s.layout, "INBOX")
            loc.set_letters(again[mid(1)], "F")
            time.sleep(STILL * 3)

    monkeypatch.setattr(MaildirStore, "read_ahead", then_flagged)
    assert not s.sync().failed
    assert str(loc.folder_dir(s.root, s.layout, "INBOX")) in listed  # it was read ahead
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held == {mid(0): {SEEN}, mid(1): {FLAGGED}, mid(2): set()}
    assert_in_sync(s)


def test_a_read_ahead_sync_carries_local_changes_of_many_folders(setup: Setup) -> None:
    s = setup
    folders = ["INBOX", "Work", "Work/Clients", "Archive"]
    for name in folders:
        if name != "INBOX":
            srv.create_folder(s.imap, name)
        for i in range(3):
            srv.append(s.imap, name, srv.make_message(i, name), [])
    assert not s.sync().failed
    for n, name in enumerate(folders):
        local = loc.by_message_id(s.root, s.layout, name)
        loc.set_letters(local[srv.message_id(n % 3, name)], "FS")
    time.sleep(STILL * 3)
    assert not s.sync().failed
    for n, name in enumerate(folders):
        held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, name)}
        assert held[srv.message_id(n % 3, name)] == {SEEN, FLAGGED}, name
    assert_in_sync(s)
