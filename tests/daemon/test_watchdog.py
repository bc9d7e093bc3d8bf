"""systemd's watchdog: WATCHDOG=1 goes on while the daemon is healthy and stops when an
account's sync hangs, so that systemd restarts it.  The hang is a server that keeps a FETCH
alive forever with chatter (every line resets the read timeout, no answer ever completes)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from fake_imap import FakeMessage, FakeServer, chatter_forever, serve


def config_for(port: int, tmp: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f"""
[general]
state_dir = "{tmp / "state"}"

[account.test]
local = "local"
remote = "remote"
autorefresh = 0

[repository.local]
type = "maildir"
path = "{tmp / "Mail"}"

[repository.remote]
type = "imap"
host = "127.0.0.1"
port = {port}
tls = "none"
user = "me"
password = "secret-password"
"""
    )
    config.chmod(0o600)
    return config


# Linux's SO_TIMESTAMP (Python does not name it): the kernel stamps each datagram as it arrives.
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
# How long after READY=1 the notifications are watched: the hang (STALL_LIMIT 2 s) is seen,
# and pinging has then been stopped for more than 2.5 s.
WINDOW = 8.0


def _receive(sock: socket.socket) -> tuple[float, str]:
    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16))
    for level, kind, stamp in ancillary:
        if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMP):
            seconds, micros = struct.unpack("@ll", stamp[:16])
            return seconds + micros / 1e6, data.decode()
    raise AssertionError("a datagram without its arrival time")


def datagrams(sock: socket.socket, ready_within: float) -> tuple[list[tuple[float, str]], float]:
    """The notifications, each with the wall-clock time it reached the socket (the kernel's:
    a test process that gets no CPU for a while under load does not shift them), from the
    first (READY=1) until ``WINDOW`` seconds after it; and the end of that window."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    sock.settimeout(ready_within)
    got = [_receive(sock)]
    end = got[0][0] + WINDOW
    while (left := end - time.time()) > 0:
        sock.settimeout(left)
        try:
            got.append(_receive(sock))
        except TimeoutError:
            break
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):  # what arrived in the window, not yet read
        while True:
            got.append(_receive(sock))
    return [(at, text) for at, text in got if at <= end], end


def test_watchdog_pings_stop_while_a_sync_hangs(tmp_path: Path) -> None:
    message = FakeMessage(1, b"Subject: x\r\n\r\nbody\r\n")
    server = FakeServer({"INBOX": [message]})
    server.faults[("INBOX", 1, "listing")] = chatter_forever
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    with serve(server):
        env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(run),
            "NOTIFY_SOCKET": str(path),
            "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
            "MAILTIDE_TEST_STALL_LIMIT": "2",
        }
        log = (tmp_path / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailtide",
                "daemon",
                "-c",
                str(config_for(server.port, tmp_path)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            got, window_end = datagrams(sock, ready_within=60)
        finally:
            stopped = time.monotonic()
            proc.terminate()
            code = proc.wait(10)
            took = time.monotonic() - stopped
            log.close()
            sock.close()
    output = (tmp_path / "daemon.log").read_text()
    assert got and got[0][1] == "READY=1", (got, output)
    pings = [t for t, text in got if text == "WATCHDOG=1"]
    assert pings, f"no ping at all while healthy: {got}\n{output}"
    start = got[0][0]
    # healthy at first (the sync is new), then the hang is seen 2 s after the sync's last
    # durable step, and pinging stops for good (pings are due every 0.2 s while healthy)
    assert any(t - start < 1.5 for t in pings), pings
    assert window_end - pings[-1] > 2.5, [round(t - start, 2) for t in pings]
    assert "event=daemon.account_hung" in output, output
    # SIGTERM: the hung sync gets its grace to reach a step, then is cancelled; exit 0 in 5 s
    assert code == 0 and took < 5, (code, took, output[-2000:])
    assert "event=daemon.sync_cancelled" in output
