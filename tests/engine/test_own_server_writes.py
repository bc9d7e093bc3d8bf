"""A run's own writes to a server mailbox (flags, deletions, uploads) are not read back by the
next run where the server's mod-sequences prove they were the only change
(stores/imap/own_writes.py): the next run selects none of those mailboxes.  Another client's
change among them is never lost: it gives the proof up, or fails the STORE's UNCHANGEDSINCE
test and is kept beside ours."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from engine.test_held_selection import commands
from engine.test_moves import proxy as proxy  # the recording proxy and its account
from engine.test_moves import s as s
from engine_helpers import Setup, assert_in_sync
from fault_proxy import FaultProxy
from mailtide.stores.imap.mailbox import ImapMailbox, _Store

SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"


def selects(proxy: FaultProxy) -> list[str]:
    return [c for c in commands(proxy) if c.startswith(("SELECT", "EXAMINE"))]


def mid(i: int) -> str:
    return srv.message_id(i, "INBOX")


def first_run(s: Setup, n: int = 4) -> dict[str, loc.LocalMessage]:
    for i in range(n):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), [])
    assert not s.sync().failed
    return loc.by_message_id(s.root, s.layout, "INBOX")


def test_the_run_after_flags_a_deletion_and_an_upload_selects_nothing(
    s: Setup, proxy: FaultProxy
) -> None:
    local = first_run(s)
    loc.set_letters(local[mid(0)], "FS")
    os.unlink(local[mid(1)].path)
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(9, "INBOX"))
    assert not s.sync().failed  # the flags, the deletion and the upload go to the server
    proxy.recorded.clear()
    assert not s.sync().failed
    assert selects(proxy) == []
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held == {mid(0): {FLAGGED, SEEN}, mid(2): set(), mid(3): set(), mid(9): set()}
    assert_in_sync(s)


def test_another_clients_change_between_the_runs_writes_is_carried_next_run(
    s: Setup, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other client flags a message between the run's STORE and its EXPUNGE: a gap in
    the mod-sequences, so the next run reads the changes and brings that flag home."""
    local = first_run(s)
    loc.set_letters(local[mid(0)], "S")
    os.unlink(local[mid(1)].path)
    stores = ImapMailbox._stores

    async def then_another_client(self: ImapMailbox, flight: Sequence[_Store]) -> None:
        await stores(self, flight)
        if not any("Deleted" in store.flag_list for store in flight):
            srv.set_flags(s.imap, "INBOX", mid(2), [ANSWERED])

    monkeypatch.setattr(ImapMailbox, "_stores", then_another_client)
    assert not s.sync().failed
    monkeypatch.undo()
    proxy.recorded.clear()
    assert not s.sync().failed
    assert selects(proxy) != []
    assert loc.by_message_id(s.root, s.layout, "INBOX")[mid(2)].letters == "R"
    assert_in_sync(s)


def test_a_message_another_client_changed_after_the_plan_keeps_both_changes(
    s: Setup, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other client flags the message the run is about to store: the STORE's
    UNCHANGEDSINCE test fails (MODIFIED), it is stored again plainly, and the next run
    brings the other flag home."""
    local = first_run(s)
    loc.set_letters(local[mid(0)], "S")
    stores = ImapMailbox._stores

    async def after_another_client(self: ImapMailbox, flight: Sequence[_Store]) -> None:
        srv.set_flags(s.imap, "INBOX", mid(0), [ANSWERED])
        await stores(self, flight)

    monkeypatch.setattr(ImapMailbox, "_stores", after_another_client)
    proxy.recorded.clear()
    assert not s.sync().failed
    monkeypatch.undo()
    assert "MODIFIED" in b"".join(d for way, _, _, d in proxy.recorded if way == "down").decode()
    assert not s.sync().failed
    held = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert held[mid(0)] == {SEEN, ANSWERED}
    assert loc.by_message_id(s.root, s.layout, "INBOX")[mid(0)].letters == "RS"
    assert_in_sync(s)
