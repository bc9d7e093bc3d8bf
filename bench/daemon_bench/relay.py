"""A TCP relay on 127.0.0.1 between the daemon and the server, which breaks every connection
open through it at once, on demand:

- ``cut()``: both sockets closed (the daemon reads end of stream, as when a server restarts);
- ``reset()``: the daemon's socket closed with SO_LINGER 0 (it gets a TCP RST, as from a NAT
  box or a firewall that forgot the connection);
- ``stall()``: nothing more forwarded either way, sockets left open (a network that silently
  drops everything, as after a suspend while the server timed the connection out).

New connections are relayed normally; ``tests/fault_proxy.py`` breaks connections at a byte
count, which an idle connection never reaches, hence this one."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

HOST = "127.0.0.1"


class _Link:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.stalled = False
        self.closed = False
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self.stalled:
                continue  # read and drop: neither side hears anything, neither blocks
            try:
                dst.sendall(data)
            except OSError:
                break
        if not self.stalled:
            self.close()

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if reset:
            # SO_LINGER 0 makes close() send a RST; SHUT_RD first wakes our pump blocked in
            # recv() on it (sending nothing), without which the socket, and the RST, would
            # wait until that recv returned.
            with contextlib.suppress(OSError):
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.client.shutdown(socket.SHUT_RD)
        for s in (self.client, self.server):
            if not (reset and s is self.client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class Relay:
    def __init__(self, target_port: int) -> None:
        self.target = (HOST, target_port)
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:  # the server is down: so is this connection
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._links = [x for x in self._links if not x.closed] + [_Link(client, server)]

    def _take(self) -> list[_Link]:
        with self._lock:
            links, self._links = [x for x in self._links if not x.closed], []
            return links

    def cut(self) -> int:
        """Close every open connection; how many there were."""
        links = self._take()
        for link in links:
            link.close()
        return len(links)

    def reset(self) -> int:
        links = self._take()
        for link in links:
            link.close(reset=True)
        return len(links)

    def stall(self) -> int:
        """Make every open connection silent for good (it is never closed by the relay)."""
        links = self._take()
        for link in links:
            link.stalled = True
        return len(links)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        for link in self._take():
            link.close()
