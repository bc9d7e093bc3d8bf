"""The private servers listen where no other test session's connection can take their port."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier import Courier
from dovecot import OTHER_HOST, Dovecot
from fault_proxy import FaultProxy
from ports import ephemeral_range, free_port


@pytest.fixture
def server_root() -> Iterator[Path]:
    # Under /tmp, as private_dovecot's: the mail user must be able to traverse the path.
    root = Path(tempfile.mkdtemp(prefix="mailtide-dovecot-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def greets(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return s.recv(200).startswith(b"* OK")


def test_listening_ports_are_outside_the_ephemeral_range(dovecot: Dovecot) -> None:
    ephemeral = ephemeral_range()
    with FaultProxy(dovecot.port) as proxy:
        chosen = {
            "dovecot": dovecot.port,
            "dovecot imaps": dovecot.imaps_port,
            "proxy": proxy.port,
            "free_port": free_port(),
        }
    assert {name: port for name, port in chosen.items() if port in ephemeral} == {}


def test_courier_listens_outside_the_ephemeral_range(tmp_path: Path) -> None:
    # Only the port is looked at: the server is not started.
    assert Courier(tmp_path, tmp_path).port not in ephemeral_range()


def test_a_proxy_down_and_up_again_keeps_its_port(dovecot: Dovecot) -> None:
    with FaultProxy(dovecot.port) as proxy:
        port = proxy.port
        proxy.down()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        proxy.up()
        assert proxy.port == port
        assert greets(port)


def test_dovecot_whose_port_was_taken_starts_on_other_ports(server_root: Path) -> None:
    server = Dovecot(server_root)
    taken = server.port
    # Another session's listener on one of its addresses, between choosing and starting.
    with socket.socket() as other:
        other.bind((OTHER_HOST, taken))
        other.listen()
        with server:
            assert server.port != taken
            assert greets(server.port)


def test_dovecot_on_a_given_port_in_use_says_so_at_once(server_root: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        server = Dovecot(server_root, port=taken)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=rf"dovecot did not start: .*{taken}.* in use"):
            server.start()
        assert time.monotonic() - started < 10  # told, not left to wait for a greeting
        assert server.port == taken
