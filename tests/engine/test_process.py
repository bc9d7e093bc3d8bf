"""`mailtide sync` as a real process: a 25 MB message in bounded memory.  (Runs killed with
SIGKILL at random instants: test_torture.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup, write_config


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
