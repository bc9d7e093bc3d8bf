"""TCP keepalive on IMAP sockets: a dead peer is found in about two minutes, not fifteen.

Linux keeps a silent TCP connection for ever unless SO_KEEPALIVE is on (asyncio does not set
it), and a write to a peer that vanished (a suspended laptop, a NAT box that forgot the flow)
is retried for ``tcp_retries2`` ≈ 924 s.  With these options the kernel probes a connection
idle for ``IDLE`` seconds every ``INTERVAL`` seconds and drops it after ``COUNT`` unanswered
probes; ``TCP_USER_TIMEOUT`` bounds unacknowledged data (and the probes) by the same time.
The application's own deadlines (``timeout``, IDLE's ``keepalive``) come on top.
"""

from __future__ import annotations

import socket
from typing import Any

IDLE = 60  # seconds of silence before the first probe
INTERVAL = 15  # seconds between probes
COUNT = 4  # unanswered probes before the connection is dropped
USER_TIMEOUT_MS = (IDLE + INTERVAL * COUNT) * 1000  # unacknowledged data: the same 2 minutes


def tcp_options() -> list[tuple[int, int, int]]:
    """(level, option, value) for every option this platform has (Linux has all)."""
    wanted = [
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", IDLE),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", INTERVAL),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", COUNT),
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ]
    return [
        (level, getattr(socket, name), value)
        for level, name, value in wanted
        if hasattr(socket, name)
    ]


def keep_alive(sock: Any) -> None:
    """Set ``tcp_options`` on a connected TCP socket (an asyncio transport's ``socket``);
    a socket that is not TCP (a test's pipe) is left alone."""
    if sock is None or getattr(sock, "type", None) != socket.SOCK_STREAM:
        return
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    for level, option, value in tcp_options():
        sock.setsockopt(level, option, value)
