"""The fault proxy itself: faults land at the exact byte, in the right way, on the right
connection (the network-fault tests rely on it, so it is checked against plain sockets)."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fault_proxy import Fault, FaultProxy, Shape

GREETING = bytes(range(256)) * 8  # 2048 bytes the server sends first


@contextlib.contextmanager
def listening(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server running ``serve`` on each connection in a thread; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


@contextlib.contextmanager
def server() -> Iterator[tuple[int, list[bytes]]]:
    """Sends GREETING to each connection, then keeps what it receives (one entry a client)."""
    received: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.sendall(GREETING)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    data += chunk
            received.append(data)

    with listening(serve) as port:
        yield port, received


def read_all(s: socket.socket) -> tuple[bytes, str]:
    """Everything until the end, and how it ended ("eof", "reset" or "timeout")."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        except TimeoutError:
            return data, "timeout"
        if not chunk:
            return data, "eof"
        data += chunk


def client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(0.3)
    return s


@pytest.mark.parametrize("after", [0, 1, 700, 2047])
def test_cut_down_after_exactly_n_bytes(after: int) -> None:
    with server() as (port, _), FaultProxy(port) as proxy:
        proxy.arm(Fault("cut", "down", after))
        with client(proxy.port) as s:
            data, end = read_all(s)
        assert (data, end) == (GREETING[:after], "eof")
        assert [(f.connection, f.offset) for f in proxy.fired] == [(1, after)]


def test_cut_up_after_n_bytes_and_the_next_connection_passes() -> None:
    with server() as (port, received), FaultProxy(port) as proxy:
        proxy.arm(Fault("cut", "up", 10))
        with client(proxy.port) as s:
            s.sendall(b"0123456789abcdef")
            read_all(s)
        with client(proxy.port) as s:
            s.sendall(b"whole")
            assert read_all(s) == (GREETING, "timeout")  # the server keeps it open
        for _ in range(100):
            if len(received) == 2:
                break
            threading.Event().wait(0.02)
        assert sorted(received) == [b"0123456789", b"whole"]
        assert proxy.connections == 2 and len(proxy.fired) == 1


def test_reset_is_a_tcp_rst() -> None:
    with server() as (port, _), FaultProxy(port) as proxy:
        proxy.arm(Fault("reset", "down", 100))
        with client(proxy.port) as s:
            threading.Event().wait(0.2)  # the RST arrives after the bytes
            _, end = read_all(s)
        assert end == "reset"


def test_stall_keeps_the_connection_open_and_silent() -> None:
    with server() as (port, _), FaultProxy(port) as proxy:
        proxy.arm(Fault("stall", "down", 100))
        with client(proxy.port) as s:
            assert read_all(s) == (GREETING[:100], "timeout")


def test_global_count_spans_connections_and_per_connection_faults() -> None:
    with server() as (port, _), FaultProxy(port) as proxy:
        # byte 3000 of the run is byte 952 of the second connection
        proxy.arm(Fault("cut", "down", 3000), Fault("cut", "down", 5, connection=3))
        results = []
        for _ in range(4):
            with client(proxy.port) as s:
                results.append(read_all(s)[0])
        assert results == [GREETING, GREETING[:952], GREETING[:5], GREETING]


def test_down_refuses_and_up_listens_again_on_the_same_port() -> None:
    with server() as (port, _), FaultProxy(port) as proxy:
        listening = proxy.port
        proxy.down()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listening), timeout=5)
        proxy.up()
        assert proxy.port == listening
        with client(proxy.port) as s:
            assert read_all(s) == (GREETING, "timeout")  # the server keeps it open


def test_before_hits_every_connection_right_before_the_bytes() -> None:
    with server() as (port, received), FaultProxy(port) as proxy:
        proxy.arm(Fault("cut", "up", before=b"SELECT B"))
        for text in (b"a SELECT A\r\n", b"b SEL", b"c SELECT B\r\n"):
            with client(proxy.port) as s:
                s.sendall(text)
                read_all(s)
        with client(proxy.port) as s:  # split across two reads
            s.sendall(b"d SELE")
            threading.Event().wait(0.1)
            s.sendall(b"CT B\r\n")
            read_all(s)
        for _ in range(100):
            if len(received) == 4:
                break
            threading.Event().wait(0.02)
        assert sorted(received) == [b"a SELECT A\r\n", b"b SEL", b"c ", b"d SELE"]
        assert len(proxy.fired) == 2


@contextlib.contextmanager
def echo() -> Iterator[int]:
    """A server that sends back every byte it receives, as soon as it has it."""

    def serve(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn, contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                conn.sendall(chunk)

    with listening(serve) as port:
        yield port


def ping_pong(port: int, rounds: int = 10) -> list[float]:
    """Seconds each one-byte round trip took through ``port``."""
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(rounds):
            started = time.monotonic()
            s.sendall(bytes([i]))
            assert s.recv(1) == bytes([i])
            times.append(time.monotonic() - started)
    return times


def test_a_shaped_link_takes_its_rtt_for_every_round_trip() -> None:
    with echo() as port:
        with FaultProxy(port) as plain:
            loopback = statistics.median(ping_pong(plain.port))
        with FaultProxy(port, shape=Shape.of(rtt_ms=25, mbit=100)) as proxy:
            shaped = ping_pong(proxy.port)
    assert loopback < 0.01
    assert min(shaped) >= 0.025  # a link never delivers early
    assert statistics.median(shaped) < 0.025 + 0.05  # and adds nothing of its own (a loaded host)


def test_a_shaped_link_caps_throughput_and_delivers_every_byte_then_the_end() -> None:
    bulk = bytes(range(256)) * (3_000_000 // 256)  # 3 MB: 0.24 s at 100 Mbit/s

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def send_and_close() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(bulk)

    threading.Thread(target=send_and_close, daemon=True).start()
    with listener, FaultProxy(listener.getsockname()[1], shape=Shape.of(25, 100)) as proxy:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.settimeout(5)
            data, end = read_all(s)
        took = time.monotonic() - started
    assert (len(data), data == bulk, end) == (len(bulk), True, "eof")
    assert took >= len(bulk) / 12_500_000 + 0.0125
    assert took < 2.0  # near the cap, not far below it (generous: a loaded host)


def test_connections_through_a_shaped_link_share_its_rate() -> None:
    bulk = bytes(range(256)) * (1_500_000 // 256)  # 1.5 MB each, 3 MB in all: 0.24 s at 100 Mbit/s

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            threading.Thread(
                target=lambda c=conn: (c.sendall(bulk), c.close()), daemon=True
            ).start()

    threading.Thread(target=serve, daemon=True).start()
    got: list[bytes] = []

    def fetch(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            got.append(read_all(s)[0])

    with listener, FaultProxy(listener.getsockname()[1], shape=Shape.of(25, 100)) as proxy:
        started = time.monotonic()
        readers = [threading.Thread(target=fetch, args=(proxy.port,)) for _ in range(2)]
        for r in readers:
            r.start()
        for r in readers:
            r.join(10)
        took = time.monotonic() - started
    assert got == [bulk, bulk]
    assert took >= 2 * len(bulk) / 12_500_000  # one link: two connections do not get twice
