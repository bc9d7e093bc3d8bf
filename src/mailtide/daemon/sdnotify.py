"""Telling systemd how the daemon is doing: the ``sd_notify`` protocol, in a few lines.

Contract:

- Each message is one datagram of ``KEY=value`` lines sent over ``AF_UNIX``/``SOCK_DGRAM`` to
  ``$NOTIFY_SOCKET``; a leading ``@`` names a socket in the abstract namespace (``\\0``).
- Without ``$NOTIFY_SOCKET`` (not started by systemd, or ``Type=simple``) every call does
  nothing and returns False.
- No call ever raises or blocks: a failed send (no listener, a full queue, an address we do
  not speak, such as ``vsock:``) returns False and is logged once, at debug; systemd notices
  a silent daemon by itself (the watchdog, the start timeout).
- Values are single lines: a line break in a status text would start a new assignment
  (a folder name could say ``STOPPING=1``), so control characters become spaces.
- The environment is read, never changed: children (``password_command``, hooks) inherit
  ``$NOTIFY_SOCKET``, and systemd's default ``NotifyAccess=main`` ignores what they send.

``Watchdog.from_environment`` reads ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID``: whether systemd
wants ``WATCHDOG=1`` from this process, and how often (half the timeout, as systemd advises).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

_USEC = 1_000_000


@dataclass(frozen=True, slots=True)
class Watchdog:
    """systemd's watchdog for this process: ping at least every ``interval`` seconds."""

    interval: float

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] = os.environ, pid: int | None = None
    ) -> Watchdog | None:
        """The watchdog systemd asked of process ``pid`` (default: this one), or None.

        None when ``$WATCHDOG_USEC`` is unset, not a positive integer, or when
        ``$WATCHDOG_PID`` names another process (the variables leaked to a child).
        """
        usec = environ.get("WATCHDOG_USEC", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        owner = environ.get("WATCHDOG_PID", "")
        if owner and owner != str(os.getpid() if pid is None else pid):
            return None
        return cls(interval=int(usec) / _USEC / 2)


def _address(notify_socket: str) -> bytes | None:
    """The socket address for ``$NOTIFY_SOCKET``, or None for a kind we do not speak."""
    if notify_socket.startswith("@"):
        return b"\0" + os.fsencode(notify_socket[1:])
    if notify_socket.startswith("/"):
        return os.fsencode(notify_socket)
    return None


def _one_line(text: str) -> str:
    return "".join(" " if ch < " " or ch == "\x7f" else ch for ch in text)


class Notifier:
    """The daemon's channel to systemd (a no-op outside a ``Type=notify`` service)."""

    def __init__(self, notify_socket: str | None) -> None:
        self._target = notify_socket or None
        self._socket: socket.socket | None = None
        self._failed_before = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to (sends may still fail)."""
        return self._target is not None

    def ready(self) -> bool:
        """Start-up is over: the account tasks run (systemd ends ``systemctl start``)."""
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """The one line ``systemctl status`` shows, e.g. ``work: offline, retry in 40 s``."""
        return self.send("STATUS=" + _one_line(text))

    def watchdog(self) -> bool:
        """The loop is healthy: resets systemd's ``WatchdogSec=`` timer."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun (sent on SIGTERM, before the state is flushed)."""
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """A config reload has begun; send ``ready()`` when it is done.

        systemd >= 253 wants the CLOCK_MONOTONIC time of the reload with it.
        """
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={now}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd gives up on a start or stop in progress."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * _USEC))}")

    def send(self, *assignments: str) -> bool:
        """Send ``assignments`` (``KEY=value``) as one datagram; True if it was sent."""
        if self._target is None:
            return False
        address = _address(self._target)
        if address is None:
            return self._failed(OSError(f"unsupported socket address {self._target!r}"))
        try:
            if self._socket is None:
                # Non-blocking: a stuck systemd must never stall the event loop.
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._socket.sendto("\n".join(assignments).encode(), address)
        except OSError as error:
            return self._failed(error)
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _failed(self, error: OSError) -> bool:
        if not self._failed_before:
            self._failed_before = True
            log.debug("sdnotify.failed", socket=self._target, error=str(error))
        return False
