"""The daemon: one task per account, signals, systemd's notifications, resume detection.

- ``SIGUSR1``: sync every account now (and retry a failing one at once).
- ``SIGTERM`` / ``SIGINT``: every sync in flight ends after its current durable step; the
  daemon logs out and exits 0.  A second one while stopping exits at once (status 130).
- ``SIGUSR2``: the syncs in flight finish, then the daemon exits 0.
- Under systemd (``Type=notify``): ``READY=1`` once the account tasks are started (not after
  the first sync, which may be long), ``STATUS=`` a line per change, ``WATCHDOG=1`` only while
  the loop runs and no account task has hung, ``STOPPING=1`` on the way out.
- A jump between the boot clock and the monotonic clock means the machine slept: every
  connection is presumed dead.  Every account's server push starts over on new connections,
  its held sync connections are dropped without LOGOUT, it syncs again at once, and a failing
  one retries at once.

One failing account never stops the others, nor the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from mailtide.daemon.account_task import AccountTask
from mailtide.daemon.clock import watch_resumes
from mailtide.daemon.control import ControlError
from mailtide.daemon.control_server import ControlServer, report_json
from mailtide.daemon.runner import AccountRunner
from mailtide.daemon.sdnotify import Notifier, Watchdog
from mailtide.daemon.status import State
from mailtide.daemon.triggers import Cause, Trigger, merge
from mailtide.deadline import within
from mailtide.engine.account import AccountReport

log = structlog.get_logger(__name__)

HEARTBEAT = 5.0  # seconds between status checks (and watchdog pings, unless systemd wants more)
# A sync with no durable step for this long has hung (a batch is at most 16 MB: at 10 KB/s,
# 27 min).  MAILTIDE_TEST_STALL_LIMIT (seconds) shortens it for the tests.
STALL_LIMIT = 30 * 60.0
STALL_ENV = "MAILTIDE_TEST_STALL_LIMIT"


# Reads the configuration again (SIGHUP): the accounts to run and max_sync_accounts; raises
# an exception whose text says what is wrong (the file, the line) when it cannot.
Loader = Callable[[], tuple[Sequence[AccountRunner], int]]


class Supervisor:
    def __init__(
        self,
        runners: Sequence[AccountRunner],
        max_sync_accounts: int = 2,
        notifier: Notifier | None = None,
        loader: Loader | None = None,
    ) -> None:
        self.gate = asyncio.Semaphore(max_sync_accounts)
        self.max_sync_accounts = max_sync_accounts
        self.changed = asyncio.Event()  # an account's status changed
        self.tasks: dict[str, AccountTask] = {r.name: self._task(r) for r in runners}
        self.running: dict[str, asyncio.Task[None]] = {}
        self.notifier = notifier or Notifier.from_environment()
        self.watchdog = Watchdog.from_environment()
        self.loader = loader
        self._ending = asyncio.Event()  # SIGTERM or SIGUSR2: no new account task starts
        self._signals = 0
        self._reloads: set[asyncio.Task[None]] = set()
        self._hung_said = False

    def _task(self, runner: AccountRunner) -> AccountTask:
        return AccountTask(runner, self.gate, asyncio.Event(), asyncio.Event(), self.changed)

    def sync_now(self, names: Sequence[str] | None = None) -> None:
        """SIGUSR1: sync these accounts (default all) now, a failing one included."""
        for t in self.tasks.values():
            if names is None or t.runner.name in names:
                t.retry_now()
                t.trigger(Cause.SIGNAL, None)

    def request_stop(self) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("daemon.killed", why="a second stop signal while stopping")
            os._exit(130)
        log.info("daemon.stopping")
        self.notifier.stopping()
        self._ending.set()
        for t in self.tasks.values():
            t.stop.set()

    def request_finish(self) -> None:
        log.info("daemon.finishing")
        self.notifier.stopping()
        self._ending.set()
        for t in self.tasks.values():
            t.finish.set()

    def request_reload(self) -> None:
        reload = asyncio.ensure_future(self.reload())
        self._reloads.add(reload)
        reload.add_done_callback(self._reloads.discard)

    def resumed(self, slept: float) -> None:
        log.info("daemon.resumed", slept=round(slept))
        for t in self.tasks.values():
            t.retry_now()
            t.restart_server_pushes()
            t.trigger(Cause.RESUME, None)

    async def reload(self) -> None:
        """SIGHUP: read the configuration again.  Accounts added start, removed ones stop
        (after the durable step in flight), changed ones restart, unchanged ones are not
        disturbed; a configuration that does not load is reported and the old one runs on."""
        if self.loader is None or self._ending.is_set():
            return
        self.notifier.reloading()
        try:
            try:
                runners, max_sync = self.loader()
            except Exception as exc:
                for line in str(exc).splitlines() or [type(exc).__name__]:
                    log.error("daemon.reload_failed", error=line)
                return
            new = {r.name: r for r in runners}
            if max_sync != self.max_sync_accounts:
                self.max_sync_accounts = max_sync
                self.gate = asyncio.Semaphore(max_sync)  # for the tasks started from now on
            for name, task in list(self.tasks.items()):
                runner = new.get(name)
                if runner is None or runner.key != task.runner.key:
                    await self._end(name)
            for name, runner in new.items():
                if name not in self.tasks:
                    await self._start(runner)
            log.info("daemon.reloaded", accounts=sorted(self.tasks))
        finally:
            self.notifier.ready()

    async def _start(self, runner: AccountRunner) -> bool:
        try:
            await runner.start()
        except Exception as exc:
            log.error("daemon.cannot_start", account=runner.name, error=str(exc))
            await runner.close()
            return False
        task = self._task(runner)
        self.tasks[runner.name] = task
        self.running[runner.name] = asyncio.create_task(task.run(), name=runner.name)
        return True

    async def _end(self, name: str) -> None:
        task = self.tasks.pop(name)
        task.stop.set()
        running = self.running.pop(name, None)
        if running is not None:
            with contextlib.suppress(Exception):
                await running
        log.info("daemon.account_ended", account=name)

    async def _take_hold(self) -> bool:
        """Every account's state (and its lock) before anything starts: a second daemon for
        the same account refuses to start, naming the process that holds it."""
        for t in self.tasks.values():
            try:
                await t.runner.start()
            except Exception as exc:
                log.error("daemon.cannot_start", account=t.runner.name, error=str(exc))
                for other in self.tasks.values():
                    await other.runner.close()
                return False
        return True

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """A control request (see ``daemon.control``)."""
        op = request.get("op")
        if op == "status":
            return {
                "ok": True,
                "pid": os.getpid(),
                "accounts": [t.status.as_json() for t in self.tasks.values()],
            }
        if op != "sync":
            return {"ok": False, "error": f"unknown op {op!r}"}
        wanted = request.get("accounts")
        folders = request.get("folders")
        mailboxes = frozenset(folders) if folders else None
        options = {
            k: bool(request.get(k))
            for k in ("allow_mass_delete", "restore_deleted")
            if request.get(k)
        }
        loop = asyncio.get_running_loop()
        waiters = []
        for t in self.tasks.values():
            if wanted is not None and t.runner.name not in wanted:
                continue
            waiter: asyncio.Future[object] = loop.create_future()
            waiters.append(waiter)
            t.retry_now()
            if options:
                t.exclusive(
                    merge([Trigger(Cause.CONTROL, mailboxes, bool(request.get("full")), waiter)]),
                    options,
                )
            else:
                t.trigger(Cause.CONTROL, mailboxes, bool(request.get("full")), waiter)
        if not request.get("wait", True):
            return {"ok": True, "pid": os.getpid(), "reports": []}
        reports = []
        for waiter in waiters:
            try:
                result = await waiter
            except Exception as exc:  # the daemon stopped before serving it
                return {"ok": False, "error": str(exc)}
            assert isinstance(result, AccountReport)
            reports.append(report_json(result))
        return {"ok": True, "pid": os.getpid(), "reports": reports}

    async def run(self) -> int:
        if not await self._take_hold():
            return 1
        control = ControlServer(self.handle)
        try:
            await control.start()
        except (OSError, ControlError) as exc:
            log.error("daemon.control_socket_failed", path=str(control.path), error=str(exc))
            for t in self.tasks.values():
                await t.runner.close()
            return 1
        try:
            return await self._run()
        finally:
            await control.close()

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
            signal.SIGUSR1: self.sync_now,
            signal.SIGUSR2: self.request_finish,
            signal.SIGHUP: self.request_reload,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        for name, t in self.tasks.items():
            self.running[name] = asyncio.create_task(t.run(), name=name)
        helpers = [
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(watch_resumes(self.resumed), name="resume"),
        ]
        log.info("daemon.started", accounts=sorted(self.tasks), pid=os.getpid())
        self.notifier.ready()
        try:
            await self._ending.wait()
            while self.running:  # a reload may have started one meanwhile: wait for all
                name, running = next(iter(self.running.items()))
                try:
                    await running
                except Exception as exc:
                    log.error(
                        "daemon.account_task_crashed",
                        account=name,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                self.running.pop(name, None)
        finally:
            for h in [*helpers, *self._reloads]:
                h.cancel()
            for h in helpers:
                with contextlib.suppress(BaseException):
                    await h
            for sig in handlers:
                loop.remove_signal_handler(sig)
        log.info("daemon.stopped")
        return 0

    async def _heartbeat(self) -> None:
        said = ""
        interval = HEARTBEAT
        if self.watchdog is not None:
            interval = min(interval, self.watchdog.interval)
        while True:
            line = " | ".join(t.status.line() for t in self.tasks.values())
            if line != said:
                self.notifier.status(line)
                said = line
            if self.watchdog is not None and self.healthy():
                self.notifier.watchdog()
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await within(self.changed.wait(), interval)

    def healthy(self) -> bool:
        """No account task has hung: each is waiting, or its sync showed a sign of life
        within ``STALL_LIMIT``."""
        now = time.monotonic()
        raw = os.environ.get(STALL_ENV, "")
        limit = float(raw) if raw.replace(".", "", 1).isdigit() else STALL_LIMIT
        for t in self.tasks.values():
            status = t.status
            if status.state is State.SYNCING and now - status.progress > limit:
                if not self._hung_said:
                    log.error("daemon.account_hung", account=t.runner.name, seconds=round(limit))
                    self._hung_said = True
                return False
        self._hung_said = False
        return True
