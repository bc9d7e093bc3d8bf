"""sd_notify against a real datagram socket the test binds, as systemd would."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from mailtide.daemon.sdnotify import Notifier, Watchdog


@pytest.fixture
def debug_logging() -> Iterator[None]:
    """Debug events pass, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.fixture(params=["path", "abstract"])
def systemd_socket(request: pytest.FixtureRequest) -> Iterator[tuple[str, socket.socket]]:
    """A bound SOCK_DGRAM socket and the ``$NOTIFY_SOCKET`` value that names it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2)
    with tempfile.TemporaryDirectory(prefix="sdn") as short_dir:  # sun_path holds 108 bytes
        if request.param == "path":
            notify_socket = str(Path(short_dir) / "notify")
            sock.bind(notify_socket)
        else:
            name = f"mailtide-test-{os.getpid()}-{id(sock)}"
            sock.bind("\0" + name)
            notify_socket = "@" + name
        yield notify_socket, sock
        sock.close()


@pytest.mark.parametrize(
    ("say", "datagram"),
    [
        (Notifier.ready, b"READY=1"),
        (Notifier.watchdog, b"WATCHDOG=1"),
        (Notifier.stopping, b"STOPPING=1"),
        (lambda n: n.status("work: INBOX idle"), b"STATUS=work: INBOX idle"),
        (lambda n: n.status("Entwürfe 日本語"), "STATUS=Entwürfe 日本語".encode()),
        (lambda n: n.extend_timeout(90), b"EXTEND_TIMEOUT_USEC=90000000"),
        (lambda n: n.extend_timeout(0.25), b"EXTEND_TIMEOUT_USEC=250000"),
    ],
)
def test_each_message_is_one_exact_datagram(
    systemd_socket: tuple[str, socket.socket],
    say: Callable[[Notifier], bool],
    datagram: bytes,
) -> None:
    notify_socket, sock = systemd_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": notify_socket})
    assert say(notifier) is True
    assert sock.recv(4096) == datagram
    notifier.close()


def test_reloading_carries_the_monotonic_time(systemd_socket: tuple[str, socket.socket]) -> None:
    notify_socket, sock = systemd_socket
    notifier = Notifier(notify_socket)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = sock.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    key, usec = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(usec) <= after
    notifier.close()


def test_a_status_cannot_smuggle_another_assignment(
    systemd_socket: tuple[str, socket.socket],
) -> None:
    notify_socket, sock = systemd_socket
    notifier = Notifier(notify_socket)
    notifier.status("folder\nSTOPPING=1\r\tx")
    assert sock.recv(4096) == b"STATUS=folder STOPPING=1  x"
    notifier.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False


@pytest.mark.parametrize("target", ["/nonexistent-dir/notify", "@no-listener-here", "vsock:2:99"])
@pytest.mark.usefixtures("debug_logging")
def test_a_failed_send_returns_false_and_logs_once(target: str) -> None:
    notifier = Notifier(target)
    with capture_logs() as logs:
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert [entry["event"] for entry in logs] == ["sdnotify.failed"]
    assert logs[0]["log_level"] == "debug"
    assert logs[0]["socket"] == target
    notifier.close()


def test_a_send_recovers_when_the_listener_appears() -> None:
    with tempfile.TemporaryDirectory(prefix="sdn") as short_dir:
        path = str(Path(short_dir) / "notify")
        notifier = Notifier(path)
        assert notifier.ready() is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(2)
            assert notifier.ready() is True
            assert sock.recv(4096) == b"READY=1"
        notifier.close()


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "120000000"}, 60.0),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "4242"}, 60.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "4242"}, 0.25),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "2m"}, None),
        ({"WATCHDOG_PID": "4242"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_is_wanted_only_for_this_process(
    environ: dict[str, str], interval: float | None
) -> None:
    watchdog = Watchdog.from_environment(environ, pid=4242)
    assert (watchdog.interval if watchdog else None) == interval


def test_the_watchdog_defaults_to_this_process() -> None:
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Watchdog.from_environment(mine) == Watchdog(interval=1.0)
