"""A TCP proxy on 127.0.0.1 that breaks connections on purpose, at an exact byte.

It sits between mailtide and a server's plain port and forwards both ways
(``up``: client -> server, ``down``: server -> client), counting every byte.
A ``Fault`` says what to do once a number of bytes has passed in one direction:

- ``cut``: close both sockets (the client sees an orderly end of stream);
- ``reset``: close the client's socket with SO_LINGER 0, so it gets a TCP RST;
- ``stall``: forward nothing more either way but keep both sockets open, as a
  server that hangs or a network that silently drops everything does;
- ``none``: no fault (only the ``then`` hook runs), e.g. to stop the server
  behind the proxy at an exact point of a sync;
- ``corrupt``: every byte after that point on that connection and direction
  arrives as 0xFF (a compressed stream that cannot be inflated, when the point
  is the start of a DEFLATE block: 0xFF's block type is the reserved one).

Bytes are counted across the whole run (``Fault.connection`` None: the fault
hits whichever connection carries byte ``after``, once) or on one connection
(``connection=k``: the k-th connection, counted from 1, on its own bytes).
Every other connection passes through untouched.  ``Fault.before`` instead
hits every connection right before given bytes (say a SELECT of one mailbox).  ``down()`` closes the
listening socket (new connections are refused) and ``up()`` opens it again
on the same port.  ``stall_open()`` stalls every connection open now at once
(an idle one never reaches a byte count), as a suspend does.  A clean run
with ``record=True`` keeps every byte with its offset, so a test can find
where a command or a literal starts and sweep the fault point across the
whole run.

Either side ending its stream ends the connection both ways (IMAP never
half-closes).  Threads only (no event loop), so it serves code on any loop,
or none.

A ``Shape`` makes the proxy a slow link as well (the speed benchmark's
"25 ms RTT, 100 Mbit/s"): every byte arrives ``delay`` seconds after it was
sent, in each direction (so a round trip takes at least twice that), and each
direction carries at most ``rate`` bytes a second, shared by every connection
through the proxy (one link, as a real one: two connections do not get twice
the rate), queued behind the bytes before it.  What the link holds is bounded,
so a fast sender is held back by TCP as it would be by a real bottleneck.  An
end of stream is delayed like the bytes before it.  Faults apply as bytes
enter the link.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from ports import listen

Direction = Literal["up", "down"]
Kind = Literal["cut", "reset", "stall", "none", "corrupt"]
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Kind
    direction: Direction
    after: int = 0  # bytes in ``direction`` forwarded before the fault
    connection: int | None = None  # None: bytes counted over every connection, fires once
    then: Callable[[], None] | None = None  # run (in the proxy's thread) when the fault fires
    # Instead of a count: on every connection, right before these bytes would pass (e.g. a
    # command naming one mailbox); such a fault is never used up.
    before: bytes | None = None
    # Instead of a count: right after the end of the first line that holds these bytes (on
    # ``connection``, or any), where a count would depend on the line's length (a server's
    # timing text); fires once.
    after_line: bytes | None = None


@dataclass(frozen=True, slots=True)
class Shape:
    """A slow link: ``delay`` seconds one way (RTT = 2 x delay), ``rate`` bytes a second in
    each direction (None: as fast as loopback)."""

    delay: float = 0.0
    rate: float | None = None

    @classmethod
    def of(cls, rtt_ms: float, mbit: float | None = None) -> Shape:
        """The link with this round-trip time and this many megabits a second."""
        return cls(rtt_ms / 2000, None if mbit is None else mbit * 1_000_000 / 8)

    @property
    def capacity(self) -> int:
        """Bytes in flight the link holds before the sender is held back: twice the
        bandwidth-delay product (enough for full rate), at least 256 KiB."""
        rate = self.rate if self.rate is not None else 1e9
        return max(256 * 1024, int(2 * rate * self.delay))


class _Rate:
    """One direction of the link's capacity, shared by every connection: when it is free."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._free_at = 0.0  # when the link has finished sending what it was given
        self._lock = threading.Lock()

    def sent(self, size: int) -> float:
        """When ``size`` bytes handed over now have left, behind what was handed over before."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + (size / self.rate if self.rate else 0.0)
            return self._free_at


class _Wire:
    """One direction of one connection through a shaped link: bytes go in now and come out
    ``delay`` after the shared ``_Rate`` let them leave; at most ``capacity`` bytes wait,
    more blocks the sender."""

    def __init__(
        self, shape: Shape, rate: _Rate, dst: socket.socket, on_end: Callable[[], None]
    ) -> None:
        self.shape = shape
        self.rate = rate
        self.dst = dst
        self.on_end = on_end
        self._queue: deque[tuple[float, bytes | None]] = deque()  # (when due, bytes or end)
        self._held = 0
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._deliver, daemon=True).start()

    def put(self, data: bytes | None) -> None:
        """Queue ``data`` (None: the end of the stream); blocks while the link is full."""
        with self._cond:
            while data and self._held >= self.shape.capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                return
            self._queue.append((self.rate.sent(len(data or b"")) + self.shape.delay, data))
            self._held += len(data or b"")
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                due, data = self._queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                if self._closed:
                    return
                self._queue.popleft()
                self._held -= len(data or b"")
                self._cond.notify_all()
            if data is None:
                self.on_end()
                return
            try:
                self.dst.sendall(data)
            except OSError:
                self.on_end()
                return


@dataclass(frozen=True, slots=True)
class Fired:
    """What a fault did: on which connection, after how many bytes in total."""

    fault: Fault
    connection: int
    offset: int  # bytes that had passed in the fault's direction (as counted by the fault)
    opened: int  # connections opened until then (more later: the client connected again)


class _Link:
    """One proxied connection: two sockets and a pump thread per direction."""

    def __init__(self, proxy: FaultProxy, number: int, client: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.server: socket.socket | None = None
        self.sent = {"up": 0, "down": 0}  # this connection's own counts
        self.tail = {"up": b"", "down": b""}  # the last bytes passed, for ``Fault.before``
        self.stalled = False
        self.garbled: set[str] = set()  # directions whose bytes arrive as 0xFF (``corrupt``)
        self.closed = False
        self.wires: dict[str, _Wire] = {}

    def start(self) -> None:
        try:
            self.server = socket.create_connection(self.proxy.target, timeout=10)
            self.server.settimeout(None)
        except OSError:
            self.close()
            return
        shape = self.proxy.shape
        if shape is not None:
            # The delay is the link's alone: no Nagle wait in the proxy on top of it.
            for s in (self.client, self.server):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wires = {
                "up": _Wire(shape, self.proxy.rates["up"], self.server, self.close),
                "down": _Wire(shape, self.proxy.rates["down"], self.client, self.close),
            }
        for direction in ("up", "down"):
            threading.Thread(target=self._pump, args=(direction,), daemon=True).start()

    def _pump(self, direction: Direction) -> None:
        assert self.server is not None
        src, dst = (self.client, self.server) if direction == "up" else (self.server, self.client)
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self.stalled:
                continue  # read and drop: neither side hears anything more, neither blocks
            if direction in self.garbled:
                data = b"\xff" * len(data)
            passing, fault = self.proxy._admit(self, direction, data)
            if fault is not None and fault.kind == "none":
                passing = len(data)  # a hook only: the bytes still pass
            if fault is not None and fault.kind == "corrupt":
                self.garbled.add(direction)
                data = data[:passing] + b"\xff" * (len(data) - passing)
                passing = len(data)
            if passing:
                wire = self.wires.get(direction)
                try:
                    if wire is not None:
                        wire.put(data[:passing])
                    else:
                        dst.sendall(data[:passing])
                except OSError:
                    break
            if fault is not None:
                self._apply(fault)
        wire = self.wires.get(direction)
        if wire is not None and not self.closed:
            wire.put(None)  # the end reaches the other side after the bytes before it
            return
        # One side hung up (or the fault closed both): so does the other.
        self.close()

    def _apply(self, fault: Fault) -> None:
        if fault.kind == "stall":
            self.stalled = True
        elif fault.kind == "reset":
            self.close(reset=True)
        elif fault.kind == "cut":
            self.close()
        if fault.then is not None:
            fault.then()

    def close(self, reset: bool = False) -> None:
        with self.proxy._lock:
            if self.closed:
                return
            self.closed = True
        for wire in self.wires.values():
            wire.close()
        if reset:
            # No FIN first: SO_LINGER 0 makes close() send a RST.  SHUT_RD wakes a thread
            # blocked reading this socket (and sends nothing), so the socket really goes now.
            with contextlib.suppress(OSError):
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.client.shutdown(socket.SHUT_RD)
        for s in (self.client, self.server):
            if s is None:
                continue
            if not (reset and s is self.client):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class FaultProxy:
    """Listen on 127.0.0.1 (a free port, kept across ``down``/``up``), forward to ``target``."""

    def __init__(
        self,
        target_port: int,
        target_host: str = HOST,
        record: bool = False,
        shape: Shape | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.record = record
        self.shape = shape
        rate = shape.rate if shape is not None else None
        self.rates = {"up": _Rate(rate), "down": _Rate(rate)}  # the link's, per direction
        self.faults: list[Fault] = []
        self.fired: list[Fired] = []
        self.total = {"up": 0, "down": 0}
        self.connections = 0
        # (direction, offset of the first byte in that direction over the run, connection, data)
        self.recorded: list[tuple[Direction, int, int, bytes]] = []
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._stopping = False
        self.port = 0
        self.up()

    # -- control --------------------------------------------------------------------

    def arm(self, *faults: Fault) -> None:
        """Replace the faults still to fire and reset the counts."""
        with self._lock:
            self.faults = list(faults)
            self.fired = []
            self.total = {"up": 0, "down": 0}
            self.connections = 0
            self.recorded = []

    def up(self) -> None:
        """Listen (again, on the same port once it was chosen)."""
        if self._listener is not None:
            return
        if self.port == 0:  # outside the ephemeral range: no connection takes it while down
            s = listen(HOST, 64)
        else:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, self.port))
            s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        """Stop listening: new connections are refused (those open stay as they are)."""
        s, self._listener = self._listener, None
        if s is not None:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def gone(self) -> None:
        """The network is gone: new connections are refused, and every open one is cut."""
        self.down()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    def stall_open(self) -> None:
        """Every connection open now goes silent at once (as after a suspend: nothing more
        forwarded, nothing closed); connections opened later pass normally."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.stalled = True

    def close(self) -> None:
        self._stopping = True
        self.down()
        for link in list(self._links):
            link.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._stopping:
                client.close()
                return
            with self._lock:
                self.connections += 1
                link = _Link(self, self.connections, client)
                self._links = [x for x in self._links if not x.closed] + [link]
            link.start()

    def _admit(self, link: _Link, direction: Direction, data: bytes) -> tuple[int, Fault | None]:
        """How many bytes of ``data`` may pass, and the fault that fires right after them."""
        with self._lock:
            passing, hit = len(data), None
            tail = link.tail[direction]
            for fault in self.faults:
                if fault.direction != direction:
                    continue
                if fault.before is not None:
                    at = (tail + data).find(fault.before) - len(tail)  # < 0: began in tail
                    if -len(tail) <= at <= passing:
                        passing, hit = max(at, 0), fault
                    continue
                if fault.after_line is not None:
                    if fault.connection not in (None, link.number):
                        continue
                    joined = tail + data
                    found = joined.find(fault.after_line)
                    end = joined.find(b"\r\n", found) if found >= 0 else -1
                    at = end + 2 - len(tail)
                    if end >= 0 and 0 <= at <= passing:
                        passing, hit = at, fault
                    continue
                if fault.connection is None:
                    count = self.total[direction]
                elif fault.connection == link.number:
                    count = link.sent[direction]
                else:
                    continue
                room = max(fault.after - count, 0)
                if room <= passing:  # it fires within this chunk (or right at its end)
                    passing, hit = room, fault
            keep = max(
                [len(f.before) - 1 for f in self.faults if f.before]
                + [len(f.after_line) + 256 for f in self.faults if f.after_line],
                default=0,
            )
            link.tail[direction] = (tail + data[:passing])[-keep:] if keep else b""
            if hit is not None and hit.before is None:
                self.faults.remove(hit)
            if hit is not None:
                count = self.total[direction] if hit.connection is None else link.sent[direction]
                self.fired.append(Fired(hit, link.number, count + passing, self.connections))
            if self.record and passing:
                self.recorded.append(
                    (direction, self.total[direction], link.number, data[:passing])
                )
            self.total[direction] += passing
            link.sent[direction] += passing
            return passing, hit

    def open_links(self) -> int:
        """The connections through the proxy still open (neither side has closed them)."""
        with self._lock:
            return sum(1 for link in self._links if not link.closed)

    def stream(self, direction: Direction) -> bytes:
        """Every byte recorded in ``direction`` (with ``record=True``), in the order it passed."""
        with self._lock:
            return b"".join(d for dr, _, _, d in self.recorded if dr == direction)


@contextlib.contextmanager
def fault_proxy(
    target_port: int, record: bool = False, shape: Shape | None = None
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port, record=record, shape=shape)
    try:
        yield proxy
    finally:
        proxy.close()
