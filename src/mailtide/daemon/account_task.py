"""One account in the daemon: triggers in, engine runs out, one at a time.

The task waits on its ``TriggerQueue`` and syncs what each merged request names.  Triggers come
from the account's push sources (the Maildir watcher, IMAP push), from its timers (autorefresh
with OfflineIMAP's ``quick`` rule; a periodic rescan when the Maildir is watched), and from the
supervisor (SIGUSR1, a control request, a resume from suspend).

- The first sync after start-up is full, of every mailbox.
- An account-level failure (the server unreachable, a refused login) backs off alone, with
  jitter, from 1 s to 5 min; ``retry_now`` (SIGUSR1, a resume) cuts the wait short.  The same
  failure is logged once per backoff period, not once per attempt.
- ``stop`` (SIGTERM) ends a sync in flight after its current durable step, and the task;
  ``finish`` (SIGUSR2) lets the sync in flight end, then ends the task.
- A push source that fails is restarted after its own backoff; the account goes on meanwhile
  on timers.  One whose login is refused (a password, a client certificate) waits, beyond
  that, for a sync of the account to log in: the account's syncs report the refusal ("login
  failed"), once, and a push source cannot log in where they cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import structlog

from mailtide.daemon import memory
from mailtide.daemon.backoff import Backoff
from mailtide.daemon.runner import AccountRunner, PushSource
from mailtide.daemon.status import AccountStatus, LastSync, State
from mailtide.daemon.triggers import Cause, SyncRequest, Trigger, TriggerQueue
from mailtide.engine.account import AccountReport
from mailtide.stores.base import AuthenticationFailed

log = structlog.get_logger(__name__)

STOP_GRACE = 3.0  # seconds a sync has, after SIGTERM, to reach its next durable step


class AccountTask:
    def __init__(
        self,
        runner: AccountRunner,
        gate: asyncio.Semaphore,
        stop: asyncio.Event,
        finish: asyncio.Event,
        changed: asyncio.Event | None = None,
    ) -> None:
        self.runner = runner
        self.changed = changed or asyncio.Event()  # set whenever the status changed
        self.gate = gate  # at most max_sync_accounts syncing at once
        self.stop = stop
        self.finish = finish
        schedule = runner.schedule
        self.queue = TriggerQueue(schedule.debounce, schedule.max_delay)
        self.status = AccountStatus(runner.name, on_change=self.changed.set)
        self.backoff = Backoff()
        self.log = log.bind(account=runner.name)
        self._quick_left = 0  # timer syncs that may still be quick before the next full one
        self._next_refresh: float | None = None  # monotonic
        self._next_rescan: float | None = None
        self._next_keepalive: float | None = None  # a NOOP on the held connections
        self._said: str | None = None  # the failure last logged, said again once per backoff
        self._waiting_state = State.WAITING  # how a backoff shows in the status
        self._logged_in = asyncio.Event()  # set by each sync that did not fail at login
        self._logged_in.set()
        self._exclusive: asyncio.Queue[tuple[SyncRequest, dict[str, bool]]] = asyncio.Queue()
        self._pushes: dict[PushSource, asyncio.Task[None]] = {}  # each source's running task
        self._retired: set[asyncio.Task[None]] = set()  # restarted sources' old runs, ending

    # --- triggers from outside -----------------------------------------------------------

    def trigger(
        self,
        cause: Cause,
        mailboxes: frozenset[str] | None = None,
        full: bool = False,
        waiter: asyncio.Future[object] | None = None,
    ) -> None:
        self.queue.put(Trigger(cause, mailboxes, full, waiter))

    def retry_now(self) -> None:
        self.backoff.retry_now()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        # Every event of this task names the account, the stores' own too (a task's context).
        structlog.contextvars.bind_contextvars(account=self.runner.name)
        pushes = self.runner.push_sources()
        self._pushes = {s: self._start_push(s) for s in pushes}
        self.status.sources = pushes
        self.trigger(Cause.TIMER, None, full=True)  # the first sync is full
        try:
            while not (self.stop.is_set() or self.finish.is_set()):
                next_ = await self._next_request()
                if next_ is None:
                    break
                await self._serve(*next_)
                if self.backoff.failures:
                    await self._back_off()
        finally:
            # Cancelled again, a retired source stops waiting for its LOGOUT's answer.
            sources = [*self._pushes.values(), *self._retired]
            self._pushes, self._retired = {}, set()
            for task in sources:
                task.cancel()
            for task in sources:
                with contextlib.suppress(BaseException):
                    await task
            self.queue.discard(RuntimeError("the daemon is stopping"))
            self.status.state = State.STOPPED
            self.status.next_refresh = None
            await self.runner.close()

    def restart_server_pushes(self) -> None:
        """After a suspend: every server push source starts over at once, on a new
        connection.  The old connection is presumed dead; left alone, its silence would be
        noticed only after the keepalive and the command timeout (minutes without push).
        The old run winds down in the background."""
        if self.status.state is not State.SYNCING:
            # the held sync connections are dead too: dropped now, not at the catch-up sync,
            # or a stop before that sync would wait for their LOGOUT answers
            drop = asyncio.ensure_future(self.runner.drop_connections())
            self._retired.add(drop)
            drop.add_done_callback(self._retired.discard)
        for source, task in list(self._pushes.items()):
            if getattr(source, "server", False) and not task.done():
                task.cancel()
                self._retired.add(task)
                task.add_done_callback(self._retired.discard)
                self._pushes[source] = self._start_push(source)

    def _start_push(self, source: PushSource) -> asyncio.Task[None]:
        return asyncio.create_task(
            self._keep_running(source), name=f"{self.runner.name}:{source.name}"
        )

    def exclusive(self, request: SyncRequest, options: dict[str, bool]) -> None:
        """A request with options that must not widen to other triggers' mailboxes (the
        mass-delete guard lifted, deletions restored): run alone, before the next batch."""
        self._exclusive.put_nowait((request, options))

    async def _next_request(self) -> tuple[SyncRequest, dict[str, bool]] | None:
        """The next request (merged triggers, or an exclusive one), or a timer's trigger when
        a timer falls due first; None when the task is to end."""
        ending = asyncio.ensure_future(_first_set(self.stop, self.finish))
        try:
            while True:
                if not self._exclusive.empty():
                    return self._exclusive.get_nowait()
                self.status.state = State.IDLE
                self.status.alive()
                now = time.monotonic()
                due = self._due_timer(now)
                waiting = asyncio.ensure_future(self.queue.next_batch())
                special = asyncio.ensure_future(self._exclusive.get())
                timeout = None if due is None else max(0.0, due - now)
                done, _ = await asyncio.wait(
                    {waiting, ending, special},
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if special in done:
                    self._exclusive.put_nowait(special.result())  # taken next round, first
                else:
                    special.cancel()
                if waiting in done:
                    return waiting.result(), {}
                waiting.cancel()  # cancelling next_batch loses no trigger
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                if ending in done:
                    return None
                self._fire_timers(time.monotonic())
                if self._next_keepalive is not None and time.monotonic() >= self._next_keepalive:
                    self._next_keepalive = time.monotonic() + self.runner.schedule.keepalive
                    await self.runner.keepalive()
        finally:
            ending.cancel()

    def _due_timer(self, now: float) -> float | None:
        timers = (self._next_refresh, self._next_rescan, self._next_keepalive)
        dues = [t for t in timers if t is not None]
        return min(dues) if dues else None

    def _fire_timers(self, now: float) -> None:
        if self._next_refresh is not None and now >= self._next_refresh:
            self._next_refresh = None
            self.trigger(Cause.TIMER, None, full=self._timer_wants_full())
        if self._next_rescan is not None and now >= self._next_rescan:
            self._next_rescan = None
            self.trigger(Cause.TIMER, None)

    def _timer_wants_full(self) -> bool:
        """OfflineIMAP's ``quick``: N quick syncs between full ones; -1 always quick."""
        quick = self.runner.schedule.quick
        if quick < 0:
            return False
        if self._quick_left > 0:
            self._quick_left -= 1
            return False
        return True

    def _arm_timers(self) -> None:
        schedule = self.runner.schedule
        now = time.monotonic()
        if schedule.autorefresh > 0:
            self._next_refresh = now + schedule.autorefresh
            self.status.next_refresh = time.time() + schedule.autorefresh
        if schedule.watch_maildir and schedule.rescan > 0 and self._next_rescan is None:
            self._next_rescan = now + schedule.rescan
        if schedule.hold_connection_open:
            self._next_keepalive = now + schedule.keepalive

    def _told(self, request: SyncRequest) -> dict[str, dict[str, int]] | None:
        """The counters the push sources last told of each mailbox of ``request``, where it
        is only server news of the mailboxes it names and a source keeps each one's counters
        (NOTIFY); else None."""
        if request.causes != {Cause.SERVER_PUSH} or request.full or request.mailboxes is None:
            return None
        told: dict[str, dict[str, int]] = {}
        for name in request.mailboxes:
            items = next((t for s in self._pushes if (t := _told(s, name)) is not None), None)
            if items is None:
                return None
            told[name] = items
        return told

    async def _echo(self, request: SyncRequest, told: dict[str, dict[str, int]] | None) -> bool:
        """Whether ``request`` is only server news of what the state already holds: the echo
        of the account's own writes, which a sync would find unchanged.  Only where a push
        source keeps each named mailbox's counters as the server last told them (NOTIFY:
        ``told``), and the sync that wrote recorded the counters after its writes (it proved
        them its own: stores/imap/own_writes.py); a change the news has not told yet comes as
        news of its own, and is synced then."""
        return told is not None and await self.runner.holds(told)

    async def _serve(self, request: SyncRequest, options: dict[str, bool]) -> None:
        told = self._told(request)
        if not options and await self._echo(request, told):
            self.log.debug("daemon.echo", mailboxes=sorted(request.mailboxes or ()))
            request.settle(None)
            return
        names = sorted(request.mailboxes) if request.mailboxes is not None else None
        mode = "full" if request.full else "quick"
        self.status.state = State.SYNCING
        self.status.alive()
        started = time.time()
        if Cause.RESUME in request.causes:
            await self.runner.drop_connections()
        try:
            async with self.gate:
                report = await self._stoppable(
                    self.runner.sync(
                        request.mailboxes,
                        request.full,
                        self.stop,
                        progress=self.status.alive,
                        pushed=told,
                        **options,
                    )
                )
        except Exception as exc:  # a bug must cost this sync, not the daemon
            why = f"internal error: {type(exc).__name__}: {exc}"
            self.log.error("daemon.sync_crashed", error=why, exc_info=True)
            report = AccountReport(self.runner.name, error=why)
        request.settle(report)
        memory.give_back()  # what the sync's batches freed, before a long wait
        if request.full and self.runner.schedule.quick > 0:
            self._quick_left = self.runner.schedule.quick
        self.status.syncs += 1
        self.status.last = LastSync(
            started, time.time(), mode, names, report.result, report.totals(), _errors(report)
        )
        self.status.alive()
        if not report.login_failed:
            self._logged_in.set()
        if report.error is not None and not report.usage:
            self._waiting_state = (
                State.LOGIN_FAILED
                if report.login_failed
                else State.OFFLINE
                if report.offline
                else State.WAITING
            )
            self._failed(report.error)
        else:
            self._recovered()
        self._arm_timers()

    async def _stoppable(self, sync: Coroutine[Any, Any, AccountReport]) -> AccountReport:
        """Run ``sync``; once a stop is asked for, it has ``STOP_GRACE`` seconds to reach its
        next durable step and end there, else it is cancelled where it waits (a read from a
        server that never finishes its answer): what it had not made durable is redone by the
        next run, as after a crash, which every step is made to survive."""
        running = asyncio.ensure_future(sync)
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                await asyncio.wait({running}, timeout=STOP_GRACE)
            if not running.done():
                self.log.warning("daemon.sync_cancelled", grace=STOP_GRACE)
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                report = AccountReport(self.runner.name)
                report.stopped = True
                return report
            return running.result()
        finally:
            stopping.cancel()
            if not running.done():  # this task itself was cancelled
                running.cancel()

    def _failed(self, error: str) -> None:
        delay = self.backoff.failed()
        self.status.error = error
        self.status.retry_at = time.time() + delay
        if error != self._said or self.backoff.failures == 1:
            self.log.warning("daemon.account_failing", error=error, retry_in=round(delay, 1))
            self._said = error
        else:
            self.log.debug("daemon.account_failing", error=error, retry_in=round(delay, 1))
        # What the failed sync was asked for is still wanted: try it again after the wait.
        self.trigger(Cause.TIMER, None)

    def _recovered(self) -> None:
        if self.backoff.failures:
            self.log.info("daemon.account_recovered")
        self.backoff.succeeded()
        self.status.error = None
        self.status.retry_at = None
        self._said = None

    async def _back_off(self) -> None:
        self.status.state = self._waiting_state
        self.status.alive()
        waiting = asyncio.ensure_future(self.backoff.wait())
        ending = asyncio.ensure_future(_first_set(self.stop, self.finish))
        try:
            await asyncio.wait({waiting, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (waiting, ending):
                f.cancel()
        self.status.retry_at = None

    async def _keep_running(self, source: PushSource) -> None:
        """Run a push source; restart it after a backoff when it fails."""
        backoff = Backoff()
        cause = Cause.SERVER_PUSH if getattr(source, "server", False) else Cause.MAILDIR_PUSH

        def changed(mailboxes: frozenset[str] | None) -> None:
            self.trigger(cause, mailboxes)

        said = ""
        while True:
            started = time.monotonic()
            try:
                await source.run(changed)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started > 60:  # it ran well for a while: start over
                    backoff.succeeded()
                    said = ""
                delay = backoff.failed()
                refused = isinstance(exc, AuthenticationFailed)
                if refused:
                    self._logged_in.clear()  # until the sync triggered below logs in
                # The same failure again (a server still down) is said once, not per attempt;
                # a refused login is said by the account's sync.
                (self.log.debug if str(exc) == said or refused else self.log.warning)(
                    "daemon.push_failed", source=source.name, error=str(exc), retry_in=delay
                )
                said = str(exc)
                self.trigger(cause, None)  # what it may have missed meanwhile
                await backoff.wait()
                await self._logged_in.wait()


def _told(source: PushSource, mailbox: str) -> dict[str, int] | None:
    """The counters ``source`` keeps of ``mailbox`` as the server last told them, if any."""
    told = getattr(source, "told", None)
    return told(mailbox) if told is not None else None


async def _first_set(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _errors(report: AccountReport) -> list[str]:
    return report.failures() + report.stranded_lines()
