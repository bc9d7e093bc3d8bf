"""A daemon holds its connections between syncs: a mailbox an earlier run left selected is
not selected again by the next run (a SELECT of a big mailbox costs the server a read of its
whole index), and what changed on the server meanwhile, seen by that session as news or by
the run's own listing, still arrives.  Through a recording proxy to the real Dovecot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import imap_helpers as srv
import maildir_helpers as loc
from engine.test_maildir_skip import provable
from engine.test_moves import proxy as proxy  # the recording proxy and its account
from engine.test_moves import s as s
from engine_helpers import Setup, assert_in_sync
from fault_proxy import FaultProxy
from mailtide.engine.account import AccountReport
from mailtide.engine.pair import Options
from mailtide.engine.run import sync_stores
from mailtide.wiring import filters_of, open_state, open_store, retry_of

SEEN, FLAGGED = "\\Seen", "\\Flagged"


def held_runs(
    s: Setup, proxy: FaultProxy, between: list[Callable[[], None]], keepalive: bool = False
) -> list[AccountReport]:
    """A first run, then after each of ``between`` (changes made by another client) one more,
    all on the same stores and state, as a daemon runs them (with ``keepalive``, its NOOP on
    the held connections before each run, which tells their sessions of the changes); the
    proxy records the last."""

    async def runs() -> list[AccountReport]:
        stores = (await open_store(s.account.remote), await open_store(s.account.local))
        state = await open_state(s.config, s.account)
        reports = []
        try:
            for change in [lambda: None, *between]:
                change()
                if keepalive:
                    await stores[0].keepalive()
                proxy.recorded.clear()
                report = await sync_stores(
                    "test", stores, filters_of(s.account), state, Options(), retry_of(s.account)
                )
                assert not report.failed, report.failures()
                reports.append(report)
        finally:
            await state.close()
            for store in stores:
                await store.close()
        return reports

    return asyncio.run(runs())


def commands(proxy: FaultProxy) -> list[str]:
    """Every command line the recorded run sent, without its tag."""
    sent = b"".join(data for direction, _, _, data in proxy.recorded if direction == "up")
    return [line.split(" ", 1)[-1] for line in sent.decode(errors="replace").splitlines()]


def test_a_later_run_goes_on_in_the_session_an_earlier_one_selected(
    s: Setup, proxy: FaultProxy
) -> None:
    for i, flags in enumerate([[SEEN], [], [FLAGGED], []]):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), flags)
    srv.append(s.imap, "Work", srv.make_message(9, "Work"), [])

    def news() -> None:
        srv.append(s.imap, "INBOX", srv.make_message(5, "INBOX"), [FLAGGED])
        srv.set_flags(s.imap, "INBOX", srv.message_id(1, "INBOX"), [SEEN])
        srv.expunge(s.imap, "INBOX", srv.message_id(2, "INBOX"))

    def more_news() -> None:
        srv.append(s.imap, "INBOX", srv.make_message(6, "INBOX"), [])

    held_runs(s, proxy, [news, more_news])

    sent = commands(proxy)
    assert not any(c.startswith(("SELECT", "EXAMINE")) and "INBOX" in c for c in sent), sent
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    assert set(local) == {srv.message_id(i, "INBOX") for i in (0, 1, 3, 5, 6)}
    assert "S" in local[srv.message_id(1, "INBOX")].letters
    assert "F" in local[srv.message_id(5, "INBOX")].letters
    assert_in_sync(s)


def test_a_mailbox_made_anew_between_runs_is_selected_again(s: Setup, proxy: FaultProxy) -> None:
    """Deleted and created again under its name (a new UIDVALIDITY): the session an earlier
    run left is not the mailbox the listing shows."""
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])
    srv.append(s.imap, "Work", srv.make_message(2, "Work"), [SEEN])

    def made_anew() -> None:
        with srv.session(s.imap) as c:
            srv._ok(c.delete("Work"))
        srv.append(s.imap, "Work", srv.make_message(3, "Work"), [FLAGGED])

    held_runs(s, proxy, [made_anew])

    assert any(c.startswith("SELECT") and "Work" in c for c in commands(proxy))
    local = loc.by_message_id(s.root, s.layout, "Work")
    assert srv.message_id(3, "Work") in local
    assert_in_sync(s)


def test_a_held_session_is_not_selected_again_when_only_mail_was_added(
    s: Setup, proxy: FaultProxy
) -> None:
    """Mail added on the server to a folder whose Maildir side is provably unchanged (its
    stamp recorded), and the session an earlier run left selected already told of it (the
    daemon's keepalive): neither the move pass nor the pair's own run selects the folder
    again."""
    srv.append(s.imap, "INBOX", srv.make_message(0, "INBOX"), [SEEN])

    def stamps_recorded() -> None:
        provable(s, ("INBOX",))  # the next run, changing nothing, records the stamp

    def news() -> None:
        srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])

    held_runs(s, proxy, [stamps_recorded, news], keepalive=True)

    sent = commands(proxy)
    assert not any(c.startswith(("SELECT", "EXAMINE")) and "INBOX" in c for c in sent), sent
    assert srv.message_id(1, "INBOX") in loc.by_message_id(s.root, s.layout, "INBOX")
