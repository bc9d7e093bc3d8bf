"""The quiet check's TCP connection to a server (probe.py), blocking, on the interpreter's own
socket type.  Loads nothing else: the connection may begin before the rest of the command has
loaded (quiet/early.py), and the ``socket`` module's enums cost more to load (at every start)
than the whole check spends otherwise."""

from __future__ import annotations

import _socket

# Seconds the probe waits for the server at most, whatever the repository's timeout: it only
# saves time when the server answers at once, and the sync that follows a give-up waits anew.
LONGEST_WAIT = 10.0
# ... and for the connection: a server that does not take it at once is left to the sync's own
# connect, its timeout and its retries, which then wait no longer than they would have.
CONNECT_WAIT = 3.0


def connect(host: str, port: int, timeout: float) -> _socket.socket:
    """A TCP connection to the first address of ``host`` that takes it within ``timeout``
    seconds and ``CONNECT_WAIT``, waiting at most ``timeout`` seconds and ``LONGEST_WAIT`` for
    data from then on; OSError when none does.  An ASCII host name goes as bytes: the
    resolver then needs no IDNA codec."""
    connecting, reading = min(timeout, CONNECT_WAIT), min(timeout, LONGEST_WAIT)
    name: str | bytes = host.encode() if host.isascii() else host
    failure: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(connecting)
            sock.connect(address)
            sock.settimeout(reading)
            return sock
        except OSError as e:
            sock.close()
            failure = e
    raise failure


def unreachable(host: str, port: int, error: OSError) -> str:
    """Why the probe has no answers when ``connect`` failed with ``error``."""
    return f"cannot connect to {host}:{port}: {error}"
