"""Server push for one IMAP account: which mailboxes changed, as soon as the server says so.

The best the server offers, degrading gracefully (``plan_push``, a pure choice):

1. NOTIFY (RFC 5465), where the server has it and the account allows it: one connection
   watches every personal mailbox (``NotifyPush``);
2. else IDLE (RFC 2177) on each of ``idle_folders``, one connection each (``IdlePush``), and a
   LIST-STATUS (or STATUS) poll of the other mailboxes every ``poll`` (``StatusPoll``);
3. else the poll alone.

At most ``max_connections - 1`` connections push; one is left to sync with.  IDLE folders come
first; the poll gets a connection only when one is left.

Each source is a push source of the daemon: ``name``, ``server = True``, and ``run(changed)``,
which calls ``changed`` with the canonical names of the mailboxes that changed (None: any may
have, e.g. a folder was created or renamed), runs until cancelled (then logs out), and raises
on failure: the daemon syncs everything and starts it again after a backoff.  A source never
reconnects by itself.  ``ServerPush`` connects once, asks the server what it can do, and runs
the sources ``plan_push`` picks.

Only mailboxes ``wanted`` (the account's folder rules) are reported: a sync asked for a folder
the rules leave out would be refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from mailtide.core.names import BadFolderName
from mailtide.stores.base import StoreError
from mailtide.stores.imap.client import ImapClient, ImapSettings
from mailtide.stores.imap.mailbox import status_of
from mailtide.stores.imap.names import FolderNames, read_namespace
from mailtide.stores.imap.notify_counters import MailboxCounters
from mailtide.stores.imap.notify_names import WatchedNames, sent_name
from mailtide.stores.imap.parse import ParseError, Untagged, text_of
from mailtide.stores.imap.protocol import IdleEnd
from mailtide.stores.imap.seen import status_items
from mailtide.stores.imap.special_use import LeftOut
from mailtide.stores.imap.wire import quote_astring

log = structlog.get_logger(__name__)

# The daemon's callback: canonical names of the mailboxes that changed, None for any.
Changed = Callable[[frozenset[str] | None], None]
# A new logged-in connection to the account's server.
Connect = Callable[[], Awaitable[ImapClient]]
# Whether a canonical folder name takes part in the sync (the account's folder rules).
Wanted = Callable[[str], bool]

# Untagged responses that say the selected mailbox changed (RFC 3501, 7162).
MAILBOX_NEWS = frozenset({"EXISTS", "EXPUNGE", "FETCH", "VANISHED"})
NOTIFY_EVENTS = "(MessageNew MessageExpunge FlagChange MailboxName)"
# Without FlagChange, for a server that refuses it for mailboxes other than the selected one.
NOTIFY_EVENTS_NO_FLAGS = "(MessageNew MessageExpunge MailboxName)"
# Seconds of quiet after which NOTIFY's watch is set up again.  Dovecot watches the index logs
# it found at NOTIFY SET; once one rotates, changes come only with its 30 s check timer
# (bench/README.md, "NOTIFY after a rotation").  Most rotations are caught at once (the change
# that rotates a log is reported, and each report renews the watch); this catches the rest
# (e.g. a rotation by a change NOTIFY does not report) within a minute, at the cost of one
# DONE, NOTIFY NONE, NOTIFY SET STATUS (a line per mailbox) and IDLE a minute on an idle
# connection.
NOTIFY_RENEW = 60.0


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How one account is watched (the daemon settings' values of the same names).

    Seconds for durations; ``idle_folders`` are canonical names."""

    idle_folders: tuple[str, ...] = ("INBOX",)
    idle_renew: float = 600.0
    poll: float = 120.0
    notify: bool = True
    keepalive: float = 120.0
    max_connections: int = 4


class PushSource(Protocol):
    """What the daemon runs (``daemon.runner.PushSource``, restated: stores do not import
    the daemon)."""

    name: str
    server: bool

    async def run(self, changed: Changed) -> None: ...


def everything(name: str) -> bool:
    return True


def connector(settings: ImapSettings) -> Connect:
    """``Connect`` for fixed settings: each call a new ``ImapClient``, connected."""

    async def connect() -> ImapClient:
        client = ImapClient(settings)
        await client.connect()
        return client

    return connect


# --- the choice ------------------------------------------------------------------------------


def plan_push(
    capabilities: frozenset[str],
    settings: PushSettings,
    connect: Connect,
    wanted: Wanted = everything,
    catch_up: bool = False,
) -> list[PushSource]:
    """The sources that watch an account on a server with ``capabilities`` (pure: nothing
    connects until a source runs).  ``catch_up``: each source reports what it covers once it
    watches (it was not watching before, e.g. after a lost connection)."""
    spare = settings.max_connections - 1  # one connection is left to sync with
    if spare < 1:
        return []
    if settings.notify and "NOTIFY" in capabilities:
        return [NotifyPush(connect, settings, wanted, catch_up)]
    idle: list[str] = []
    if "IDLE" in capabilities:
        idle = [f for f in dict.fromkeys(settings.idle_folders) if wanted(f)][:spare]
    sources: list[PushSource] = [IdlePush(connect, f, settings, catch_up) for f in idle]
    if spare > len(idle):
        sources.append(StatusPoll(connect, settings, frozenset(idle), wanted, catch_up))
    return sources


class ServerPush:
    """The account's server push as one source: connects, reads the server's capabilities,
    and runs what ``plan_push`` picks (the first of them on this very connection).  ``name``
    says what was picked once it runs.  When one of them fails, the others are stopped and
    the failure raised."""

    server = True

    def __init__(self, connect: Connect, settings: PushSettings, wanted: Wanted = everything):
        self.connect = connect
        self.settings = settings
        self.wanted = wanted
        self.name = "IMAP push"
        self._runs = 0
        self._sources: Sequence[PushSource] = ()

    async def run(self, changed: Changed) -> None:
        catch_up = self._runs > 0  # a restart: what changed while nobody watched is unknown
        self._runs += 1
        first: ImapClient | None = await self.connect()

        async def reuse() -> ImapClient:
            nonlocal first
            client, first = first, None
            return client if client is not None else await self.connect()

        try:
            assert first is not None
            sources = plan_push(first.capabilities, self.settings, reuse, self.wanted, catch_up)
            self._sources = sources
            self.name = " + ".join(s.name for s in sources) or "no server push"
            log.info("imap.push", sources=self.name)
            if not sources:
                await first.close()  # no connection to spare: timers and signals only
                first = None
            await _run_all(sources, changed)
        finally:
            self._sources = ()
            if first is not None:  # no source took it
                await first.close()

    def told(self, mailbox: str) -> dict[str, int] | None:
        """What the server last told of the counters of ``mailbox`` (canonical name), where a
        source running now keeps them (NOTIFY); None where none does."""
        for source in self._sources:
            if isinstance(source, NotifyPush) and (items := source.told(mailbox)) is not None:
                return items
        return None


async def _run_all(sources: Sequence[PushSource], changed: Changed) -> None:
    """Run ``sources`` until cancelled; the first failure stops the others and is raised."""
    if not sources:
        await asyncio.Event().wait()  # until cancelled
    tasks = [asyncio.ensure_future(s.run(changed)) for s in sources]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raises the failure
        raise StoreError("a push source ended by itself")  # sources run until cancelled
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


@contextlib.asynccontextmanager
async def _watching(connect: Connect) -> AsyncIterator[tuple[ImapClient, FolderNames]]:
    """A connection of its own and the server's folder names; logged out afterwards."""
    client = await connect()
    try:
        yield client, await read_namespace(client)
    finally:
        await client.close()


# --- NOTIFY ----------------------------------------------------------------------------------


class NotifyPush:
    """NOTIFY on one connection: a ``* STATUS`` names a mailbox whose messages or flags
    changed, a ``* LIST`` a mailbox created, renamed or deleted (then: any mailbox).  Each
    renewal of the watch also reports what changed while none ran (``notify_counters``)."""

    server = True
    name = "NOTIFY"

    def __init__(
        self, connect: Connect, settings: PushSettings, wanted: Wanted, catch_up: bool = False
    ) -> None:
        self.connect = connect
        self.settings = settings
        self.wanted = wanted
        self.catch_up = catch_up
        self._counters: MailboxCounters | None = None  # while the watch runs
        self._watched: WatchedNames | None = None

    def told(self, mailbox: str) -> dict[str, int] | None:
        """The counters last told of ``mailbox`` (canonical name): by the watch's STATUS at
        its start or renewal, then by each STATUS of news; None while no watch runs."""
        counters, watched = self._counters, self._watched
        if counters is None or watched is None:
            return None
        for name in counters.names():
            with contextlib.suppress(BadFolderName, ValueError):
                if watched.canonical_name(name) == mailbox:
                    return counters.items(name)
        return None

    async def run(self, changed: Changed) -> None:
        try:
            async with _watching(self.connect) as (client, names):
                counters = self._counters = MailboxCounters()
                watched = self._watched = WatchedNames(names)
                await _notify_watch(client, counters, watched)
                if self.catch_up:
                    changed(None)
                reported = asyncio.Event()  # news came: end the IDLE and renew the watch
                report = _reporting(watched, self.wanted, changed)
                news = _notify_news(report, reported.set, counters, watched)
                renew = min(self.settings.idle_renew, NOTIFY_RENEW)
                while True:
                    end = await client.idle(
                        news, renew=renew, keepalive=self.settings.keepalive, stop=reported
                    )
                    if end in (IdleEnd.STOPPED, IdleEnd.RENEW):
                        await _notify_renew(client, news, counters, watched, report)
                        reported.clear()
        finally:  # what was told stops being kept up to date: it is no longer told
            self._counters = self._watched = None


async def _notify_renew(
    client: ImapClient,
    news: Callable[[Untagged], None],
    counters: MailboxCounters,
    watched: WatchedNames,
    report: Callable[[frozenset[str] | None], None],
) -> None:
    """Set NOTIFY's watch up again (after DONE), and ``report`` the mailboxes that changed
    while none ran: the new watch reports only what changes after it began
    (``notify_counters``).  Responses of the old watch that come with NOTIFY NONE are news."""
    await client.run("NOTIFY NONE", on_untagged=_taking(news))
    moved = await _notify_watch(client, counters, watched)
    if moved is None or moved:
        report(moved)


async def _notify_watch(
    client: ImapClient, counters: MailboxCounters, watched: WatchedNames
) -> frozenset[str] | None:
    """NOTIFY SET STATUS: ``watched`` and ``counters`` start over from what it covers; the
    mailboxes whose counters moved since last told (``MailboxCounters.renewed``)."""
    snapshot = await _notify_set(client)
    watched.renewed(snapshot)
    return counters.renewed(snapshot)


def _taking(news: Callable[[Untagged], None]) -> Callable[[Untagged], bool]:
    """``news`` as a command's ``on_untagged``: every response is consumed (not kept)."""

    def take(u: Untagged) -> bool:
        news(u)
        return True

    return take


async def _notify_set(client: ImapClient) -> dict[str, dict[str, int]]:
    """NOTIFY SET STATUS for every personal mailbox; without FlagChange where the server
    refuses it for mailboxes that are not selected (flag changes then wait for the next full
    sync).  The STATUS of each mailbox watched, by the server's name for it, as the server
    sent it once the watch ran.  (NOTIFY NONE must come before it: on Dovecot 2.3 a second SET
    on a log that has not rotated silences the push; measured, it seems to add the new file
    watch before it drops the old, shared one.)"""
    done = await client.run("NOTIFY SET STATUS", f"(personal {NOTIFY_EVENTS})", check=False)
    if not done.ok and done.code == "BADEVENT":
        log.info("imap.notify_without_flag_changes", reason=done.text)
        done = await client.run(
            "NOTIFY SET STATUS", f"(personal {NOTIFY_EVENTS_NO_FLAGS})", check=False
        )
    if not done.ok:
        raise StoreError(
            f"{client.settings.where}: the server refused NOTIFY: {done.status} {done.text}"
            " (set notify = false to use IDLE instead)"
        )
    snapshot: dict[str, dict[str, int]] = {}
    for u in done.untagged:  # besides STATUS: a LIST of a mailbox it may not read, or NO
        if u.kind == "STATUS":
            with contextlib.suppress(ParseError, ValueError):  # not UTF-8: left unwatched
                raw, items = status_of(u)
                snapshot[sent_name(raw)] = items
    return snapshot


def _notify_news(
    report: Callable[[frozenset[str] | None], None],
    heard: Callable[[], None],
    counters: MailboxCounters,
    watched: WatchedNames,
) -> Callable[[Untagged], None]:
    """What NOTIFY's responses mean, for ``report``; ``heard`` is called on every piece of
    news, also of a mailbox not ``wanted`` (its change may have rotated a log too).  A STATUS
    is also what ``counters`` were last told of its mailbox (under the name its watch gave
    it: Dovecot's news may spell it otherwise, ``notify_names``)."""

    def news(u: Untagged) -> None:
        if u.kind in ("LIST", "STATUS"):
            heard()
        if u.kind == "LIST":
            report(None)
        elif u.kind == "STATUS":
            try:
                raw, items = status_of(u)
                name = watched.watched_name(sent_name(raw))
            except (ParseError, ValueError):
                report(None)  # a mailbox we cannot name: let a full listing find it
                return
            counters.told(name, items)
            report(frozenset({name}))

    return news


def _reporting(
    names: WatchedNames, wanted: Wanted, changed: Changed
) -> Callable[[frozenset[str] | None], None]:
    """``changed`` for mailboxes named as the server names them: the canonical names of
    those ``wanted``; a name that cannot be mapped means any mailbox (a full listing finds it,
    never a guess)."""

    def report(server_names: frozenset[str] | None) -> None:
        if server_names is None:
            changed(None)
            return
        try:
            canonical = {names.canonical_name(n) for n in server_names}
        except (BadFolderName, ValueError):
            changed(None)
            return
        mine = frozenset(n for n in canonical if wanted(n))
        if mine:
            changed(mine)

    return report


# --- IDLE ------------------------------------------------------------------------------------


class IdlePush:
    """IDLE on one folder, EXAMINEd on a connection of its own: new, expunged or changed
    messages (EXISTS, EXPUNGE, VANISHED, FETCH) name that folder."""

    server = True

    def __init__(
        self, connect: Connect, folder: str, settings: PushSettings, catch_up: bool = False
    ) -> None:
        self.connect = connect
        self.folder = folder
        self.settings = settings
        self.catch_up = catch_up
        self.name = f"IDLE on {folder}"

    async def run(self, changed: Changed) -> None:
        mine = frozenset({self.folder})
        async with _watching(self.connect) as (client, names):
            done = await client.run(
                "EXAMINE", quote_astring(names.server_name(self.folder)), check=False
            )
            if not done.ok:
                raise StoreError(
                    f"{client.settings.where}: cannot watch folder {self.folder!r} of"
                    f" idle_folders: {done.status} {done.text}"
                )
            if self.catch_up:
                changed(mine)

            def news(u: Untagged) -> None:
                if u.kind in MAILBOX_NEWS:
                    changed(mine)

            while True:  # no await between two IDLEs yields: no response falls between them
                await client.idle(
                    news, renew=self.settings.idle_renew, keepalive=self.settings.keepalive
                )


# --- polling ---------------------------------------------------------------------------------

Counters = tuple[int | None, ...]  # UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ

# The share of ``poll`` between the starts of two rounds; the rest is for the round itself
# and the sync it starts.
POLL_SHARE = 0.9


class StatusPoll:
    """Every ``poll`` seconds (start to start, a tenth early: see ``POLL_SHARE``), the status
    of every mailbox but those in ``skip`` (watched by IDLE), by LIST-STATUS where the server
    has it, else LIST and a STATUS each.  A mailbox whose counters moved since the round
    before is reported; a mailbox that appeared or went away means any mailbox (None).  The
    first round only records.  Between rounds a NOOP every ``keepalive`` keeps the connection
    (and the NAT boxes on the way) awake."""

    server = True

    def __init__(
        self,
        connect: Connect,
        settings: PushSettings,
        skip: frozenset[str] = frozenset(),
        wanted: Wanted = everything,
        catch_up: bool = False,
    ) -> None:
        self.connect = connect
        self.settings = settings
        self.skip = skip
        self.wanted = wanted
        self.catch_up = catch_up
        self.name = f"poll every {_duration(settings.poll)}"

    async def run(self, changed: Changed) -> None:
        async with _watching(self.connect) as (client, names):
            # Rounds start at a fixed rate, a tenth of ``poll`` ahead of it: a change made
            # just after a round's look is reported, and synced, within ``poll`` of being
            # made, however long a round takes on a slow link.
            period = POLL_SHARE * self.settings.poll
            started = time.monotonic()
            before = await self._round(client, names)
            if self.catch_up:
                changed(None)
            while True:
                started += period
                await _pause(client, started - time.monotonic(), self.settings.keepalive)
                started = max(started, time.monotonic())  # late: from now on, no burst
                now = await self._round(client, names)
                moved = _moved(before, now)
                before = now
                if moved is None or moved:
                    changed(moved)

    async def _round(self, client: ImapClient, names: FolderNames) -> dict[str, Counters]:
        """The counters of each mailbox polled, by canonical name (a folder that cannot hold
        messages: empty counters)."""
        items = status_items(client.capabilities)
        if "LIST-STATUS" in client.capabilities:
            done = await client.run("LIST", '""', '"*"', f"RETURN (STATUS ({items}))")
            found = self._listed(done.untagged, names, client.settings.left_out)
            for u in done.untagged:
                if u.kind == "STATUS":
                    self._counted(u, names, found)
            return found
        done = await client.run("LIST", '""', '"*"')
        found = self._listed(done.untagged, names, client.settings.left_out)
        for name in sorted(found):
            if found[name] is _SELECTABLE:
                status = await client.run(
                    "STATUS", quote_astring(names.server_name(name)), f"({items})", check=False
                )
                for u in status.untagged:
                    if u.kind == "STATUS":
                        self._counted(u, names, found)
        return found

    def _listed(
        self, responses: list[Untagged], names: FolderNames, left_out: LeftOut
    ) -> dict[str, Counters]:
        """The folders a LIST names that are polled (those that cannot be mapped are refused
        by every sync, so their changes do not matter here)."""
        found: dict[str, Counters] = {}
        for u in responses:
            if u.kind != "LIST":
                continue
            try:
                info = names.folder_of(u)
            except (ParseError, BadFolderName):
                continue
            if info is None or left_out.hides(info):
                continue  # a folder no sync lists (config.gmail): its changes do not matter
            if info.name not in self.skip and self.wanted(info.name):
                found[info.name] = _SELECTABLE if info.selectable else ()
        return found

    @staticmethod
    def _counted(u: Untagged, names: FolderNames, found: dict[str, Counters]) -> None:
        try:
            raw, values = status_of(u)
            name = names.canonical_name(text_of(raw))
        except (ParseError, BadFolderName, ValueError):
            return
        if name in found:
            found[name] = tuple(
                values.get(k) for k in ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")
            )


# A selectable folder whose STATUS has not come (yet): compares equal to itself only.
_SELECTABLE: Counters = (None,)


def _moved(before: dict[str, Counters], now: dict[str, Counters]) -> frozenset[str] | None:
    """The mailboxes whose counters differ; None when the set of mailboxes changed."""
    if before.keys() != now.keys():
        return None
    return frozenset(name for name, counters in now.items() if before[name] != counters)


async def _pause(client: ImapClient, seconds: float, keepalive: float) -> None:
    """Wait ``seconds``, with a NOOP every ``keepalive`` seconds on the way."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(left, keepalive))
        if end - time.monotonic() > 0:
            await client.run("NOOP")


def _duration(seconds: float) -> str:
    """120 -> "2m", 90 -> "1m30s", 3600 -> "1h", 0.5 -> "0.5s" (as the configuration writes
    durations)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
