"""What a one-shot ``mailtide sync`` loads: nothing only the daemon or OAuth2 needs.  Each such
package costs every run's start-up, and a no-change re-sync is mostly start-up (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imap_helpers as srv
from dovecot import ImapAccount
from engine_helpers import make_setup, write_config

# Loaded only by what needs them: the Maildir watcher (watchdog), OAuth2's HTTP client
# (urllib.request, http.client), a newmail hook's header parser (email.parser).
NOT_AT_START = {
    "watchdog",
    "mailtide.stores.maildir.watch",
    "urllib.request",
    "http.client",
    "mailtide.auth.oauth2_source",
    "email.parser",
}


def test_a_password_sync_loads_nothing_only_the_daemon_or_oauth2_needs(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    setup = make_setup(imap_account, tmp_path)
    srv.append(imap_account, "INBOX", srv.make_message(1, "startup"))
    config = write_config(setup)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mailtide", "sync", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"mailtide.wiring", "mailtide.stores.imap.client"} <= loaded  # it did sync
    assert sorted(loaded & NOT_AT_START) == []
    assert len(list((setup.root / "INBOX").glob("*/*"))) == 1
