"""`mailtide sync` as a real process: a 25 MB message in bounded memory, and runs killed with
SIGKILL at seeded instants that the next complete run repairs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup, write_config


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
    """A 2,000-message mailbox; before each run, new changes on both sides; each run is killed
    at a seeded instant; the final complete run must leave both sides equal, nothing lost,
    nothing twice, every flag change carried."""
    s = fs_setup
    rng = random.Random(20261122)
    with srv.session(s.imap) as c:
        for i in range(2000):
            size = rng.choice([800, 2000, 6000, 30000])
            flags = ["\\Seen"] if i % 3 else []
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX", size), flags, imap=c)
    config = write_config(s)
    run_to_end(config)

    initial = {srv.message_id(i, "INBOX") for i in range(2000)}
    present = set(initial)
    flagged_remote: set[str] = set()  # \Flagged set on the server
    answered_local: set[str] = set()  # R set locally
    next_id = 10_000
    kills = rounds = 0
    while kills < 10 and rounds < 30:
        rounds += 1
        # changes on both sides: new mail, flags, deletions (never of a message just flagged)
        with srv.session(s.imap) as c:
            for _ in range(150):
                srv.append(s.imap, "INBOX", srv.make_message(next_id, "INBOX"), imap=c)
                present.add(srv.message_id(next_id, "INBOX"))
                next_id += 1
        local = loc.by_message_id(s.root, "fs", "INBOX")
        for _ in range(60):
            loc.deliver(s.root, "fs", "INBOX", srv.make_message(next_id, "INBOX"), "S")
            present.add(srv.message_id(next_id, "INBOX"))
            next_id += 1
        # only messages known to be on both sides (the first, complete run synced these)
        synced = sorted(present & initial - flagged_remote - answered_local)
        for mid in rng.sample(synced, 10):
            srv.set_flags(s.imap, "INBOX", mid, ["\\Flagged"])
            flagged_remote.add(mid)
        for mid in rng.sample(sorted(set(synced) - flagged_remote), 10):
            loc.set_letters(local[mid], "".join(sorted(set(local[mid].letters) | {"R"})))
            answered_local.add(mid)
        for mid in rng.sample(sorted(set(synced) - flagged_remote - answered_local), 4):
            if rng.random() < 0.5:
                srv.expunge(s.imap, "INBOX", mid)
            else:
                local[mid].path.unlink()
            present.discard(mid)

        proc = mailtide(config)
        time.sleep(rng.uniform(0.2, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
    assert kills == 10, f"only {kills} kills landed in {rounds} rounds"
    run_to_end(config)

    remote = srv.fetch_all(s.imap, "INBOX")
    remote_ids = Counter(m.message_id for m in remote)
    local_msgs = loc.messages(s.root, "fs", "INBOX")
    local_ids = Counter(m.message_id for m in local_msgs)
    assert [k for k, n in remote_ids.items() if n > 1] == []
    assert [k for k, n in local_ids.items() if n > 1] == []
    assert set(remote_ids) == present
    assert set(local_ids) == present
    flags = {m.message_id: m.flags for m in remote}
    letters = {m.message_id: m.letters for m in local_msgs}
    for mid in flagged_remote & present:
        assert "\\Flagged" in flags[mid] and "F" in letters[mid], mid
    for mid in answered_local & present:
        assert "\\Answered" in flags[mid] and "R" in letters[mid], mid
