"""A move made by a real mail client: neomutt, driven in a terminal (tmux) as a user would.

neomutt's ``s`` (save to another folder) writes a new file there, with a ``Content-Length:``
header added, and marks the original deleted; ``$`` purges it.  The next ``mailtide sync``
must carry that as a move: the server's copy is moved into the folder (``UID MOVE``), no
body crosses the wire, and nothing is lost or doubled.  Skipped, with the reason, where
neomutt or tmux is not installed (scripts/deps.sh installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, run_sync, write_config
from fault_proxy import FaultProxy

pytestmark = pytest.mark.skipif(
    shutil.which("neomutt") is None or shutil.which("tmux") is None,
    reason="needs neomutt and tmux (apt-get install neomutt tmux; scripts/deps.sh does it)",
)

SEEN = "\\Seen"


def long_message(i: int) -> bytes:
    filler = b"".join(b"line %05d of a body that no move may send\r\n" % n for n in range(300))
    return (
        (
            f"Message-ID: <nm{i}@neomutt.test>\r\nFrom: Ann <ann@example.org>\r\n"
            f"Date: Mon, 1 Jan 2024 10:0{i}:00 +0000\r\nSubject: subject number {i}\r\n\r\n"
        ).encode()
        + filler
        + b"END-OF-BODY-%d\r\n" % i
    )


class Terminal:
    """neomutt in a detached tmux session on a private tmux server (its own socket)."""

    def __init__(self, tmp: Path, command: list[str]) -> None:
        self.socket = str(tmp / "tmux.sock")
        env = {
            "HOME": str(tmp),
            "TERM": "xterm-256color",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", "mail", "-x", "160", "-y", "40", *command],
            env=env,
            check=True,
        )

    @property
    def tmux(self) -> list[str]:
        return ["tmux", "-S", self.socket]

    def screen(self) -> str:
        done = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "mail"], capture_output=True, text=True
        )
        return done.stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "mail", *keys], check=True)

    def running(self) -> bool:
        return (
            subprocess.run(
                [*self.tmux, "has-session", "-t", "mail"], capture_output=True
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[FaultProxy]:
    with FaultProxy(dovecot.port, record=True) as p:
        yield p


def muttrc(s: Setup, tmp: Path) -> Path:
    path = tmp / "muttrc"
    path.write_text(
        f"""
set folder = "{s.root}"
set spoolfile = "{s.root}/INBOX"
set mbox_type = Maildir
set confirmappend = no
set delete = yes
set move = no
set copy = no
set record = ""
set wait_key = no
set quit = yes
set beep = no
set mail_check_stats = no
set sort = date
""",
        encoding="utf-8",
    )
    return path


def test_neomutt_save_then_sync_is_a_move(
    imap_account: ImapAccount, tmp_path: Path, proxy: FaultProxy
) -> None:
    s = make_setup(imap_account, tmp_path, "fs", port=proxy.port)
    for i in (1, 2):
        srv.append(s.imap, "INBOX", long_message(i), [SEEN])
    srv.create_folder(s.imap, "Archive")
    config = write_config(s)
    code, out = run_sync(config)
    assert code == 0, out

    term = Terminal(tmp_path, ["neomutt", "-n", "-F", str(muttrc(s, tmp_path))])
    try:
        term.wait_for("subject number 1")
        term.keys("1")  # to the first message (sorted by date) ...
        term.wait_for("Jump to message")
        term.keys("Enter")
        term.keys("s")  # ... and save it ...
        term.wait_for("Save to mailbox")
        term.keys("C-u", "=Archive", "Enter")  # ... into Archive: marked deleted here
        term.wait_for("Del:1", timeout=10)
        term.keys("$")  # sync the mailbox: the original, marked deleted, is purged
        deadline = time.monotonic() + 10
        while loc.count(s.root, "fs", "INBOX") != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        term.keys("q")
        deadline = time.monotonic() + 10
        while term.running() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        term.close()
    (saved,) = loc.messages(s.root, "fs", "Archive")
    assert saved.message_id == "<nm1@neomutt.test>"
    assert b"\nContent-Length: " in saved.body.split(b"\n\n", 1)[0] + b"\n"
    assert [m.message_id for m in loc.messages(s.root, "fs", "INBOX")] == ["<nm2@neomutt.test>"]

    proxy.recorded.clear()
    code, out = run_sync(config)
    assert code == 0, out

    wire = proxy.stream("up") + proxy.stream("down")
    assert b"END-OF-BODY-1" not in wire, "a body crossed the wire for a move"
    assert b"UID MOVE" in proxy.stream("up")
    assert [m.message_id for m in srv.fetch_all(s.imap, "INBOX")] == ["<nm2@neomutt.test>"]
    (moved,) = srv.fetch_all(s.imap, "Archive")
    assert moved.body == long_message(1)  # the server's own copy, moved
    assert loc.by_message_id(s.root, "fs", "Archive")["<nm1@neomutt.test>"].body == saved.body
    code, out = run_sync(config)  # and then nothing to do
    assert code == 0 and "new_remote=1" not in out and "new_local=1" not in out, out
