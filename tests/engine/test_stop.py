"""A stop asked for (the daemon's SIGTERM) ends a sync right after a durable step: what was
written is whole and recorded, and the next run converges from there as after a crash."""

from __future__ import annotations

import asyncio

import pytest

import imap_helpers as srv
from engine_helpers import Setup, assert_in_sync
from mailtide.wiring import sync_account


class StopAfter(asyncio.Event):
    """A stop event that reads as set from its ``n``-th look on (the engine looks once after
    every durable step and before every mailbox), so the stop falls at an exact point."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.looks, self.n = 0, n

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.n or super().is_set()


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_a_stop_ends_the_sync_after_a_step_and_the_next_run_converges(
    fs_setup: Setup, n: int
) -> None:
    s = fs_setup
    for folder in ("INBOX", "Archive", "Lists/dev"):
        srv.append_many(s.imap, folder, [srv.make_message(i, folder) for i in range(30)])
    stop = StopAfter(n)
    report = asyncio.run(sync_account(s.config, s.account, stop=stop))
    assert report.stopped and not report.failed, report
    # each mailbox in flight (three at once) ends at its own next look
    in_flight = s.account.daemon.max_connections - 1
    assert n <= stop.looks <= n + in_flight - 1, "the run went on after it saw the stop"
    again = s.sync()
    assert not again.stopped and not again.failed, again
    assert_in_sync(s)
    assert sum(sum(m.copied) for m in s.sync().mailboxes) == 0


def test_a_stop_set_before_the_run_changes_nothing(fs_setup: Setup) -> None:
    s = fs_setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    stop = asyncio.Event()
    stop.set()
    report = asyncio.run(sync_account(s.config, s.account, stop=stop))
    assert report.stopped
    assert not (s.root / "INBOX").exists()
