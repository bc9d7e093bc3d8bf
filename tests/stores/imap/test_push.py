"""Server push: which sources watch an account (a pure choice), and each source against the
private Dovecot (it has NOTIFY, IDLE and LIST-STATUS; a second one without extensions for the
STATUS-per-mailbox poll).  Another client changes the account; the source must report the
mailbox (or None: any mailbox) it changed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
from dovecot import CAPABILITIES_WITHOUT_EXTENSIONS, Dovecot, ImapAccount, private_dovecot
from fault_proxy import Fault, Shape, fault_proxy
from mailtide.stores.base import StoreError
from mailtide.stores.imap.push import (
    IdlePush,
    NotifyPush,
    PushSettings,
    ServerPush,
    StatusPoll,
    connector,
    plan_push,
)
from push_helpers import Reports, any_mailbox, ended, in_thread, names, running, settings_of

DOVECOT = frozenset({"IMAP4REV1", "IDLE", "NOTIFY", "LIST-STATUS", "CONDSTORE", "QRESYNC"})
IDLE_ONLY = frozenset({"IMAP4REV1", "IDLE"})
PLAIN = frozenset({"IMAP4REV1"})
WITHIN = 1.0  # seconds from another client's change to the report (the bound)


async def never() -> object:
    raise AssertionError("a plan must not connect")


# ---- the choice -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capabilities", "settings", "expected"),
    [
        (DOVECOT, PushSettings(), ["NOTIFY"]),
        (DOVECOT, PushSettings(notify=False), ["IDLE on INBOX", "poll every 2m"]),
        (IDLE_ONLY, PushSettings(), ["IDLE on INBOX", "poll every 2m"]),
        (
            IDLE_ONLY,
            PushSettings(idle_folders=("INBOX", "Work"), poll=90),
            ["IDLE on INBOX", "IDLE on Work", "poll every 1m30s"],
        ),
        # IDLE folders first; the poll only on a connection that is left over
        (
            IDLE_ONLY,
            PushSettings(idle_folders=("INBOX", "A", "B"), max_connections=4),
            ["IDLE on INBOX", "IDLE on A", "IDLE on B"],
        ),
        (
            IDLE_ONLY,
            PushSettings(idle_folders=("INBOX", "A", "B", "C"), max_connections=3),
            ["IDLE on INBOX", "IDLE on A"],
        ),
        (
            IDLE_ONLY,
            PushSettings(idle_folders=("INBOX", "INBOX")),
            ["IDLE on INBOX", "poll every 2m"],
        ),
        (IDLE_ONLY, PushSettings(idle_folders=()), ["poll every 2m"]),
        (PLAIN, PushSettings(idle_folders=("INBOX", "Work")), ["poll every 2m"]),
        (PLAIN, PushSettings(poll=3600), ["poll every 1h"]),
        # one connection, and it is for syncing
        (DOVECOT, PushSettings(max_connections=1), []),
        (IDLE_ONLY, PushSettings(max_connections=1), []),
    ],
)
def test_plan(capabilities: frozenset[str], settings: PushSettings, expected: list[str]) -> None:
    sources = plan_push(capabilities, settings, never)  # type: ignore[arg-type]
    assert [s.name for s in sources] == expected
    assert all(s.server for s in sources)


def test_plan_polls_what_idle_does_not_watch_and_only_wanted_folders() -> None:
    settings = PushSettings(idle_folders=("INBOX", "Spam", "Work"))
    sources = plan_push(IDLE_ONLY, settings, never, wanted=lambda n: n != "Spam")  # type: ignore[arg-type]
    assert [s.name for s in sources] == ["IDLE on INBOX", "IDLE on Work", "poll every 2m"]
    poll = sources[-1]
    assert isinstance(poll, StatusPoll)
    assert poll.skip == {"INBOX", "Work"}
    assert not poll.wanted("Spam") and poll.wanted("Other")


# ---- NOTIFY ---------------------------------------------------------------------------------


async def test_notify_reports_each_changed_mailbox(imap_account: ImapAccount) -> None:
    srv.create_folder(imap_account, "Work")
    srv.append(imap_account, "Work", srv.make_message(1, "Work"))
    srv.create_folder(imap_account, "Entwürfe")
    reports = Reports()
    source = NotifyPush(connector(settings_of(imap_account)), PushSettings(), lambda n: True)
    async with running(source.run(reports)):
        await asyncio.sleep(0.3)  # NOTIFY SET and IDLE under way
        assert reports.seen == []

        appended = await in_thread(srv.append, imap_account, "Work", srv.make_message(2, "Work"))
        assert await reports.next(5, names("Work")) - appended < WITHIN

        reports.clear()
        flagged = await in_thread(
            srv.set_flags, imap_account, "Work", srv.message_id(1, "Work"), ["\\Flagged"]
        )
        assert await reports.next(5, names("Work")) - flagged < WITHIN

        # Dovecot 2.3 names a non-ASCII mailbox in UTF-8 here, not in modified UTF-7: it is
        # still that one mailbox (not any mailbox, which would sync them all).
        reports.clear()
        await in_thread(srv.append, imap_account, "Entwürfe", srv.make_message(3, "Entwürfe"))
        await reports.next(5, names("Entwürfe"))
        assert all(m == {"Entwürfe"} for _, m in reports.seen)

        reports.clear()
        created = await in_thread(srv.create_folder, imap_account, "Projects/New")
        assert await reports.next(5, any_mailbox) - created < WITHIN


async def test_notify_reports_only_wanted_mailboxes(imap_account: ImapAccount) -> None:
    for folder in ("Spam", "Work"):
        srv.create_folder(imap_account, folder)
    reports = Reports()
    source = NotifyPush(connector(settings_of(imap_account)), PushSettings(), lambda n: n != "Spam")
    async with running(source.run(reports)):
        await asyncio.sleep(0.3)
        await in_thread(srv.append, imap_account, "Spam", srv.make_message(1, "Spam"))
        await in_thread(srv.append, imap_account, "Work", srv.make_message(2, "Work"))
        await reports.next(5, names("Work"))
    assert all(m is not None and "Spam" not in m for _, m in reports.seen)


async def test_notify_reports_a_change_made_while_its_watch_is_renewed(
    imap_account: ImapAccount,
) -> None:
    """Each report renews NOTIFY's watch (NOTIFY NONE, then SET), and a new watch reports only
    what changes after it began: a message delivered in between must be reported too.  The
    proxy holds the renewal right after its NOTIFY NONE while another client delivers (a
    delivery that falls into that gap by chance, as through a slow link)."""
    for folder in ("Work", "Later"):
        srv.create_folder(imap_account, folder)
    delivered: concurrent.futures.Future[None] = concurrent.futures.Future()

    def deliver_in_the_gap() -> None:  # in the proxy's thread: the SET waits for it
        if not delivered.done():
            srv.append(imap_account, "Later", srv.make_message(2, "Later"))
            delivered.set_result(None)

    reports = Reports()
    with fault_proxy(imap_account.port) as proxy:
        proxy.arm(Fault("none", "up", before=b"NOTIFY NONE", then=deliver_in_the_gap))
        settings = settings_of(imap_account, port=proxy.port)
        source = NotifyPush(connector(settings), PushSettings(), lambda n: True)
        async with running(source.run(reports)):
            await asyncio.sleep(0.3)  # NOTIFY SET and IDLE under way
            await in_thread(srv.append, imap_account, "Work", srv.make_message(1, "Work"))
            await reports.next(5, names("Work"))
            await asyncio.wait_for(asyncio.wrap_future(delivered), 10)
            await reports.next(5, names("Later"))


@pytest.mark.parametrize("held", [b"DONE", b"NOTIFY NONE", b"NOTIFY SET"])
async def test_a_cancelled_notify_ends_at_once_while_the_server_holds_an_answer(
    imap_account: ImapAccount, held: bytes
) -> None:
    """A daemon stopping waits for its push sources: one cancelled while the answer to its
    renewal (IDLE's DONE, NOTIFY NONE, NOTIFY SET) is held up ends within seconds, not after
    the command timeout, and never goes on watching."""
    srv.create_folder(imap_account, "Work")
    reports = Reports()
    with fault_proxy(imap_account.port) as proxy:
        settings = settings_of(imap_account, port=proxy.port, timeout=60.0)
        source = NotifyPush(connector(settings), PushSettings(), lambda n: True, catch_up=True)
        task = asyncio.ensure_future(source.run(reports))
        try:
            await reports.next(10, any_mailbox)  # catch_up: the watch is set up
            proxy.arm(Fault("stall", "up", before=held))
            await in_thread(srv.append, imap_account, "Work", srv.make_message(1, "Work"))
            await reports.next(10, names("Work"))  # the renewal begins
            deadline = time.monotonic() + 10
            while not proxy.fired and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert proxy.fired, f"{held!r} was never sent"
        finally:
            task.cancel()
            took = await ended(task)
    assert task.cancelled()
    assert took < 5.0  # DONE unanswered: 2 s for its answer; a command unanswered: at once


# Dovecot rotates an index log past 2 KiB here (by default past 1 MiB, or 32 KiB once 5
# minutes old), so a few dozen changes rotate the mailbox list's log, not a few hundred.
ROTATE_EARLY = """\
mail_index_log_rotate_min_size = 1k
mail_index_log_rotate_max_size = 2k
mail_index_log_rotate_min_age = 0
"""


@pytest.fixture(scope="module")
def rotating_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot(settings=ROTATE_EARLY)


def rotate(account: ImapAccount, folder: str, rotated: Path) -> None:
    """APPENDs to ``folder`` until the log ``rotated`` names has been rotated."""
    with srv.session(account) as client:
        for i in range(500):
            srv.append(account, folder, srv.make_message(i, folder), imap=client)
            if rotated.exists():
                return
    raise AssertionError(f"500 APPENDs did not rotate {rotated.name[:-2]}")


async def test_notify_reports_at_once_after_dovecot_rotates_the_list_log(
    rotating_dovecot: Dovecot,
) -> None:
    """Dovecot 2.3's NOTIFY watches the index log files it found at NOTIFY SET.  Once the
    mailbox list's log rotates (changes anywhere in the account), a change to a folder other
    than INBOX would come only with Dovecot's 30 s check, unless the watch is set up again."""
    user = f"rotate-{os.getpid()}"
    account = rotating_dovecot.account(user)
    for folder in ("Receipts", "Scratch"):
        srv.create_folder(account, folder)
    rotated = rotating_dovecot.maildir(user) / "dovecot.list.index.log.2"
    reports = Reports()
    source = NotifyPush(connector(settings_of(account)), PushSettings(), lambda n: True)
    async with running(source.run(reports)):
        await asyncio.sleep(0.3)  # NOTIFY SET and IDLE under way
        await in_thread(rotate, account, "Scratch", rotated)
        await reports.next(5, names("Scratch"))
        await asyncio.sleep(1.0)  # the reports of the APPENDs are in

        reports.clear()
        appended = await in_thread(srv.append, account, "Receipts", srv.make_message(1, "Receipts"))
        assert await reports.next(5, names("Receipts")) - appended < 2.0


# ---- IDLE -----------------------------------------------------------------------------------


async def test_idle_reports_its_folder(imap_account: ImapAccount) -> None:
    srv.append(imap_account, "INBOX", srv.make_message(1, "INBOX"))
    reports = Reports()
    source = IdlePush(connector(settings_of(imap_account)), "INBOX", PushSettings())
    async with running(source.run(reports)):
        await asyncio.sleep(0.3)
        assert reports.seen == []
        changes = [
            (srv.append, ("INBOX", srv.make_message(2, "INBOX"))),
            (srv.set_flags, ("INBOX", srv.message_id(1, "INBOX"), ["\\Seen"])),
            (srv.expunge, ("INBOX", srv.message_id(2, "INBOX"))),
        ]
        for change, args in changes:
            reports.clear()
            done = await in_thread(change, imap_account, *args)
            assert await reports.next(5, names("INBOX")) - done < WITHIN, change.__name__
    assert {m for _, m in reports.seen} == {frozenset({"INBOX"})}


async def test_idle_on_a_missing_folder_says_which(imap_account: ImapAccount) -> None:
    source = IdlePush(connector(settings_of(imap_account)), "Nowhere", PushSettings())
    with pytest.raises(StoreError, match="cannot watch folder 'Nowhere' of idle_folders"):
        await asyncio.wait_for(source.run(Reports()), 10)


# ---- polling --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot(capability_override=CAPABILITIES_WITHOUT_EXTENSIONS)


@pytest.fixture(params=["list-status", "status-each"])
def poll_account(request: pytest.FixtureRequest, imap_account: ImapAccount) -> ImapAccount:
    if request.param == "list-status":
        return imap_account
    server: Dovecot = request.getfixturevalue("plain_dovecot")
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)
    return server.account(f"poll-{os.getpid()}-{test}"[:60].lower())


async def test_poll_reports_mailboxes_whose_counters_moved(poll_account: ImapAccount) -> None:
    for folder in ("Work", "Lists/python"):
        srv.append(poll_account, folder, srv.make_message(1, folder))
    reports = Reports()
    settings = PushSettings(poll=0.3)
    source = StatusPoll(connector(settings_of(poll_account)), settings, skip=frozenset({"INBOX"}))
    async with running(source.run(reports)):
        await asyncio.sleep(0.8)  # rounds that found nothing new report nothing
        assert reports.seen == []

        await in_thread(srv.append, poll_account, "Work", srv.make_message(2, "Work"))
        await in_thread(srv.append, poll_account, "INBOX", srv.make_message(3, "INBOX"))
        await reports.next(3, names("Work"))
        await asyncio.sleep(0.8)
        assert {m for _, m in reports.seen} == {frozenset({"Work"})}  # INBOX is IDLE's

        reports.clear()
        await in_thread(
            srv.expunge, poll_account, "Lists/python", srv.message_id(1, "Lists/python")
        )
        await reports.next(3, names("Lists/python"))

        reports.clear()
        await in_thread(srv.create_folder, poll_account, "Fresh")
        await reports.next(3, any_mailbox)


# ---- leaving --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["notify", "idle", "poll"])
async def test_a_cancelled_source_logs_out(
    dovecot: Dovecot, imap_account: ImapAccount, kind: str
) -> None:
    # Cancelled where a source spends its life, waiting: not in the middle of a command (that
    # drops the connection on purpose), whatever the load. catch_up reports once the source's
    # set-up is done; the poll then pauses (60 s); NOTIFY and IDLE report the mail appended
    # next only from their IDLE.
    connect = connector(settings_of(imap_account))
    sources = {
        "notify": NotifyPush(connect, PushSettings(), lambda n: True, catch_up=True),
        "idle": IdlePush(connect, "INBOX", PushSettings(), catch_up=True),
        "poll": StatusPoll(connect, PushSettings(poll=60), catch_up=True),
    }
    reports = Reports()
    sessions = 1  # the source's, and the appending client's
    async with running(sources[kind].run(reports)):
        await reports.next(30, lambda _: True)
        if kind != "poll":
            reports.clear()
            await in_thread(srv.append, imap_account, "INBOX", srv.make_message(1, "INBOX"))
            sessions += 1
            await reports.next(30, lambda _: True)
    # Dovecot writes why each session ended: LOGOUT, not a dropped connection.
    log = dovecot.root / "log" / "dovecot-info.log"
    mine = f"imap({imap_account.user})"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ended = [line for line in log.read_text().splitlines() if mine in line]
        if sum("Disconnected" in line for line in ended) >= sessions:
            break
        await asyncio.sleep(0.1)
    assert [line.split(": Info: ")[1].split(" in=")[0] for line in ended] == [
        "Disconnected: Logged out"
    ] * sessions


# ---- the account's push as one source -------------------------------------------------------


async def test_server_push_runs_what_the_server_allows(imap_account: ImapAccount) -> None:
    srv.create_folder(imap_account, "Work")
    connect = connector(settings_of(imap_account))
    for settings, name in [
        (PushSettings(), "NOTIFY"),
        (PushSettings(notify=False, poll=0.3), "IDLE on INBOX + poll every 0.3s"),
    ]:
        reports = Reports()
        push = ServerPush(connect, settings)
        async with running(push.run(reports)):
            await asyncio.sleep(0.8)
            assert push.name == name
            await in_thread(srv.append, imap_account, "INBOX", srv.make_message(1, "INBOX"))
            await in_thread(srv.append, imap_account, "Work", srv.make_message(2, "Work"))
            await reports.next(5, names("INBOX"))
            await reports.next(5, names("Work"))


async def test_server_push_fails_whole_and_catches_up_when_restarted(
    imap_account: ImapAccount,
) -> None:
    settings = PushSettings(notify=False, idle_folders=("INBOX", "Later"))
    push = ServerPush(connector(settings_of(imap_account)), settings)
    with pytest.raises(StoreError, match="cannot watch folder 'Later'"):
        await asyncio.wait_for(push.run(Reports()), 10)
    # The daemon starts it again after a backoff; what changed meanwhile is reported at once.
    srv.create_folder(imap_account, "Later")
    reports = Reports()
    async with running(push.run(reports)):
        await reports.next(5, names("INBOX"))
        await reports.next(5, names("Later"))
        await reports.next(5, any_mailbox)  # the poll covers every other mailbox


async def test_poll_rounds_start_at_a_fixed_rate_whatever_a_round_costs(
    imap_account: ImapAccount,
) -> None:
    """A change just after a round's look is reported within ``poll`` of being made: the
    rounds start every 0.9 x poll, not poll after the end of the round before (which, on a
    link with 400 ms round trips, was poll + 0.4 s apart)."""
    poll, window = 1.0, 6.0
    with fault_proxy(imap_account.port, record=True, shape=Shape.of(400)) as proxy:
        settings = settings_of(imap_account, port=proxy.port)
        source = StatusPoll(connector(settings), PushSettings(poll=poll), skip=frozenset())

        def rounds() -> int:
            return proxy.stream("up").count(b" LIST ")

        async with running(source.run(Reports())):
            while rounds() == 0:
                await asyncio.sleep(0.05)
            await asyncio.sleep(window)
            seen = rounds() - 1
    # 6.6 rounds at the fixed rate; 4.3 when each waited poll after the one before
    assert seen >= window / poll, seen
