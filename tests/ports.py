"""Ports for the private test servers to listen on, chosen so that nothing else takes them.

A server that is told its port and binds it later (Dovecot, Courier), or that closes its
listener and opens it again (the fault proxy's ``down``/``up``, ``Dovecot.restart``), leaves
the port free for a while.  A port found with ``bind(0)`` lies in the kernel's ephemeral range,
the range every outgoing connection takes its source port from: with the suite on several
workers, and other sessions on the machine, a client's connection can take it in that while,
and the server's bind fails with "Address already in use".  So the ports here come from below
(or above) the ephemeral range, which ``connect()`` never hands out, at random so that
concurrent sessions seldom pick the same one; a server that loses such a race anyway picks
again (``Dovecot.start``).

Standard library only: tests/dovecot.py is also a script.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterable
from pathlib import Path

# Not the well-known or registered ports many services use.
LOWEST = 10_000
HIGHEST = 65_535
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_random = random.SystemRandom()


def ephemeral_range() -> range:
    """The ports the kernel gives outgoing connections (Linux's default when it cannot tell)."""
    try:
        low, high = (int(n) for n in _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        low, high = 32_768, 60_999
    return range(low, high + 1)


def candidates() -> list[range]:
    """The ranges a listening port is chosen from: outside the ephemeral one."""
    ephemeral = ephemeral_range()
    spans = [range(LOWEST, ephemeral.start), range(ephemeral.stop, HIGHEST + 1)]
    return [span for span in spans if len(span) > 0]


def is_free(port: int, hosts: Iterable[str]) -> bool:
    """True if a listener could bind ``port`` on every one of ``hosts`` now."""
    with contextlib.ExitStack() as stack:
        for host in hosts:
            s = stack.enter_context(socket.socket())
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(hosts: Iterable[str] = ("127.0.0.1",), avoid: Iterable[int] = ()) -> int:
    """A port outside the ephemeral range that is free on every one of ``hosts`` (and is none of
    ``avoid``); ``bind(0)``'s port only when the kernel leaves no other range."""
    hosts, avoid = tuple(hosts), set(avoid)
    spans = candidates()
    for _ in range(200):
        if not spans:
            break
        span = _random.choices(spans, weights=[len(s) for s in spans])[0]
        port = _random.choice(span)
        if port not in avoid and is_free(port, hosts):
            return port
    with socket.socket() as s:  # no room outside the ephemeral range: the old way
        s.bind((hosts[0], 0))
        return int(s.getsockname()[1])


def listen(host: str = "127.0.0.1", backlog: int = 64) -> socket.socket:
    """A listening socket on a port from ``free_port`` (bound at once: no one can take it)."""
    for _ in range(50):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, free_port((host,))))
        except OSError:  # taken since it was checked: choose again
            s.close()
            continue
        s.listen(backlog)
        return s
    raise OSError(f"no free port to listen on {host}")
