"""`mailtide sync` as a real process: a 25 MB message in bounded memory, and runs killed with
SIGKILL at seeded instants that the next complete run repairs."""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup


def write_config(s: Setup) -> Path:
    path = s.root.parent / "config.toml"
    path.write_text(
        f"""
[general]
state_dir = "{s.config.general.state_dir}"

[account.test]
local = "local"
remote = "remote"

[repository.local]
type = "maildir"
path = "{s.root}"
layout = "{s.layout}"

[repository.remote]
type = "imap"
host = "{s.imap.host}"
port = {s.imap.port}
tls = "none"
user = "{s.imap.user}"
password = "{s.imap.password}"
""",
        encoding="utf-8",
    )
    return path


def mailtide(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def run_to_end(config: Path, *args: str) -> str:
    proc = mailtide(config, *args)
    out, _ = proc.communicate(timeout=300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def peak_rss_mb(config: Path) -> float:
    """Run one sync in a child and return the child's peak RSS in MB."""
    code = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'mailtide', 'sync', '-c', {str(config)!r}])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    return int(out.stdout.split()[-1]) / 1024


def test_25_mb_message_both_ways_in_bounded_memory(fs_setup: Setup) -> None:
    s = fs_setup
    big = srv.make_message(1, "INBOX", size=25 * 1024 * 1024)
    srv.append(s.imap, "INBOX", big, ["\\Seen"])
    config = write_config(s)
    rss_down = peak_rss_mb(config)
    (local,) = loc.messages(s.root, "fs", "INBOX")
    assert local.body == big.replace(b"\r\n", b"\n")
    # and one written locally goes up
    up = srv.make_message(2, "INBOX", size=25 * 1024 * 1024)
    loc.deliver(s.root, "fs", "INBOX", up, "S")
    rss_up = peak_rss_mb(config)
    remote = {m.message_id: m.body for m in srv.fetch_all(s.imap, "INBOX")}
    assert remote[srv.message_id(2, "INBOX")] == up
    assert rss_down < 100 and rss_up < 100, (rss_down, rss_up)


def test_sigkill_at_ten_seeded_instants_then_converges(fs_setup: Setup) -> None:
    s = fs_setup
    rng = random.Random(20261122)
    with srv.session(s.imap) as c:
        for i in range(2000):
            size = rng.choice([800, 2000, 6000, 30000])
            srv.append(
                s.imap,
                "INBOX",
                srv.make_message(i, "INBOX", size),
                ["\\Seen"] if i % 3 else [],
                imap=c,
            )
        for i in range(200):
            srv.append(s.imap, "Archive", srv.make_message(5000 + i, "Archive"), imap=c)
    config = write_config(s)
    run_to_end(config)

    # changes on both sides
    with srv.session(s.imap) as c:
        for i in range(2000, 2300):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), imap=c)
    for i in range(0, 60, 3):
        srv.set_flags(s.imap, "INBOX", srv.message_id(i, "INBOX"), ["\\Flagged"])
    for i in range(1, 40, 4):
        srv.expunge(s.imap, "INBOX", srv.message_id(i, "INBOX"))
    local = loc.by_message_id(s.root, "fs", "INBOX")
    for i in range(100, 160, 2):
        loc.set_letters(local[srv.message_id(i, "INBOX")], "RS")
    for i in range(200, 215):
        local[srv.message_id(i, "INBOX")].path.unlink()
    for i in range(3000, 3200):
        loc.deliver(s.root, "fs", "INBOX", srv.make_message(i, "INBOX"), "S" if i % 2 else "")
    for i in range(6000, 6050):
        loc.deliver(s.root, "fs", "Outbox", srv.make_message(i, "Outbox"), "S")

    expected_gone = {srv.message_id(i, "INBOX") for i in range(1, 40, 4)} | {
        srv.message_id(i, "INBOX") for i in range(200, 215)
    }
    expected_present = ({srv.message_id(i, "INBOX") for i in range(2300)} - expected_gone) | {
        srv.message_id(i, "INBOX") for i in range(3000, 3200)
    }

    kills = 0
    for _ in range(10):
        proc = mailtide(config)
        time.sleep(rng.uniform(0.05, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 5, "the kills should land while the sync runs"
    run_to_end(config)

    remote = srv.fetch_all(s.imap, "INBOX")
    remote_ids = Counter(m.message_id for m in remote)
    local_ids = Counter(m.message_id for m in loc.messages(s.root, "fs", "INBOX"))
    assert [k for k, n in remote_ids.items() if n > 1] == []
    assert [k for k, n in local_ids.items() if n > 1] == []
    assert set(remote_ids) == expected_present
    assert set(local_ids) == expected_present
    flags = {m.message_id: m.flags for m in remote}
    for i in range(0, 60, 3):
        if srv.message_id(i, "INBOX") in flags:
            assert "\\Flagged" in flags[srv.message_id(i, "INBOX")]
    for i in range(100, 160, 2):
        assert "\\Answered" in flags[srv.message_id(i, "INBOX")]
    outbox = {m.message_id for m in srv.fetch_all(s.imap, "Outbox")}
    assert outbox == {srv.message_id(i, "Outbox") for i in range(6000, 6050)}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
