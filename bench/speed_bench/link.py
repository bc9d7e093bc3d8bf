"""The slow link of the benchmark: ``tests/fault_proxy.py`` with a ``Shape`` in front of each
tool's server, and a measure of what it really gives (so a report never claims a link it did
not have): the round trip of an IMAP NOOP through it, and the rate of a bulk transfer through
a link of the same shape."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass

from fault_proxy import FaultProxy, Shape


@dataclass(frozen=True, slots=True)
class LinkMeasure:
    rtt_ms_min: float
    rtt_ms_median: float
    mbit: float  # megabits a second, one way, measured

    def record(self) -> dict[str, object]:
        return {
            "kind": "link",
            "rtt_ms_min": round(self.rtt_ms_min, 2),
            "rtt_ms_median": round(self.rtt_ms_median, 2),
            "mbit": round(self.mbit, 1),
        }


def noop_rtts(port: int, rounds: int = 20) -> list[float]:
    """Seconds per IMAP NOOP round trip to the server behind ``port`` (no login needed)."""
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        f.readline()  # the greeting
        for i in range(rounds):
            started = time.monotonic()
            s.sendall(b"n%d NOOP\r\n" % i)
            while not f.readline().startswith(b"n%d " % i):
                pass
            times.append(time.monotonic() - started)
        s.sendall(b"z LOGOUT\r\n")
    return times


def bulk_mbit(shape: Shape, size: int = 4_000_000) -> float:
    """Megabits a second of ``size`` bytes sent through a link of ``shape`` (from the first
    byte sent to the last one read, less one one-way delay)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    payload = b"x" * size

    def send() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(payload)

    threading.Thread(target=send, daemon=True).start()
    with listener, FaultProxy(listener.getsockname()[1], shape=shape) as proxy:
        got = 0
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
            started = time.monotonic()
            while chunk := s.recv(65536):
                got += len(chunk)
            took = time.monotonic() - started - shape.delay
    if got != size:
        raise RuntimeError(f"the shaped link lost bytes: {got} of {size}")
    return float(size * 8 / took / 1e6)


def measure(shape: Shape, server_port: int) -> LinkMeasure:
    with FaultProxy(server_port, shape=shape) as proxy:
        rtts = noop_rtts(proxy.port)
    return LinkMeasure(min(rtts) * 1000, statistics.median(rtts) * 1000, bulk_mbit(shape))
