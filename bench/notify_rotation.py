#!/usr/bin/env python3
"""Does Dovecot still push a change at once after it rotated an index log?  By hand:

    .venv/bin/python bench/notify_rotation.py

Starts a lab Dovecot (../shared/lab/dovecot-up.sh) and watches it as mailtide's daemon does,
on a raw socket: NOTIFY (``NOTIFY SET (personal (...))`` then IDLE), or IDLE on a selected
INBOX.  For each case it APPENDs a message and times the push (``* STATUS`` or ``* EXISTS``):
before Dovecot rotates the index log that the push watches, right after the rotation, after
DONE + IDLE on the same connection, and after the push is set up again (NOTIFY SET, or
SELECT).  Rotations are forced the way a busy mailbox makes them: APPENDs to another folder
(``dovecot.list.index.log``), flag changes in INBOX (INBOX's ``dovecot.index.log``).

Measured with Dovecot 2.3.19.1 (bench/README.md, "NOTIFY after a rotation"): after a rotation
NOTIFY reports changes only every ``mailbox_idle_check_interval`` (30 s) until NOTIFY SET is
sent again; DONE + IDLE does not help."""

from __future__ import annotations

import argparse
import select
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]

from daemon_bench.lab import Server, server_down, server_up  # noqa: E402
from daemon_bench.server_view import quoted  # noqa: E402

import imap_helpers as srv  # noqa: E402

NOTIFY_SET = b"NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName))"
WAIT = 40.0  # s: longer than Dovecot's 30 s mailbox_idle_check_interval


class Watcher:
    """One raw IMAP connection that idles and reports when a push line arrives."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection((server.host, server.port))
        self.file = self.sock.makefile("rb")
        self.tag = 0
        self.file.readline()
        self.command(f"LOGIN {server.user} {server.password}".encode())

    def command(self, line: bytes) -> bytes:
        self.tag += 1
        tag = b"t%d " % self.tag
        self.sock.sendall(tag + line + b"\r\n")
        while not (answer := self.file.readline()).startswith(tag):
            pass
        return answer

    def idle(self) -> None:
        self.sock.sendall(b"i IDLE\r\n")
        while not self.file.readline().startswith(b"+"):
            pass

    def done(self) -> None:
        self.sock.sendall(b"DONE\r\n")
        while not self.file.readline().startswith(b"i "):
            pass

    def drain(self) -> None:
        while select.select([self.sock], [], [], 1.0)[0]:
            self.file.readline()

    def pushed(self, wanted: Callable[[bytes], bool], since: float) -> float | None:
        """Seconds from ``since`` until a line ``wanted`` arrives, None after ``WAIT``."""
        while time.monotonic() - since < WAIT:
            if select.select([self.sock], [], [], 0.2)[0] and wanted(self.file.readline()):
                return time.monotonic() - since
        return None


def rotations(maildir: Path, name: str) -> float:
    """When ``name`` (an index log) was last rotated: the mtime of ``name.2``."""
    rotated = maildir / f"{name}.2"
    return rotated.stat().st_mtime if rotated.exists() else 0.0


def case(
    server: Server,
    label: str,
    folder: str,
    set_up: Callable[[Watcher], None],
    rotate: Callable[[], int],
    wanted: Callable[[bytes], bool],
) -> None:
    """Time one APPEND to ``folder`` before and after ``rotate``, and after each remedy."""
    watcher = Watcher(server)
    set_up(watcher)
    with srv.session(server) as client:

        def probe(when: str) -> None:
            watcher.drain()
            started = time.monotonic()
            message = b"Subject: probe\r\nMessage-ID: <probe-%f@bench>\r\n\r\nhi\r\n" % started
            client.append(quoted(folder), "()", None, message)
            took = watcher.pushed(wanted, started)
            shown = f"{took:.2f} s" if took is not None else f"nothing within {WAIT:g} s"
            print(f"  {when:<42} {shown}", flush=True)

        print(label)
        watcher.idle()
        probe("before the rotation")
        print(f"  ({rotate()} changes until Dovecot rotated the log)")
        probe("after the rotation")
        watcher.done()
        watcher.idle()
        probe("after DONE + IDLE")
        watcher.done()
        set_up(watcher)
        watcher.idle()
        probe("after setting the push up again")
        watcher.done()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lab", type=Path, default=REPO.parent / "shared" / "lab")
    p.add_argument("--dir", type=Path, default=Path("/tmp/mailtide-notify-rotation"))
    args = p.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    args.dir.chmod(0o755)
    server = server_up(args.lab.resolve(), args.dir / "server")
    maildir = server.dir / "home" / server.user / "Maildir"
    try:
        with srv.session(server) as client:
            for folder in ("Receipts", "Scratch"):
                client.create(quoted(folder))
            for i in range(200):
                client.append("INBOX", "()", None, srv.make_message(i, "INBOX"))

            def rotate_list() -> int:
                before, n = rotations(maildir, "dovecot.list.index.log"), 0
                while rotations(maildir, "dovecot.list.index.log") == before:
                    client.append(quoted("Scratch"), "()", None, b"Subject: s\r\n\r\nx\r\n")
                    n += 1
                return n

            def rotate_inbox() -> int:
                before, n = rotations(maildir, "dovecot.index.log"), 0
                client.select("INBOX")
                while rotations(maildir, "dovecot.index.log") == before:
                    client.store("1:*", "+FLAGS" if n % 2 == 0 else "-FLAGS", "(\\Flagged)")
                    n += 1
                client.close()
                return n

            def notify(w: Watcher) -> None:
                w.command(NOTIFY_SET)

            def examine(w: Watcher) -> None:
                w.command(b"EXAMINE INBOX")

            def status_of(folder: str) -> Callable[[bytes], bool]:
                return lambda line: line.startswith(b"* STATUS") and folder.encode() in line

            case(
                server,
                "NOTIFY, a folder other than INBOX, the mailbox list's log rotated",
                "Receipts",
                notify,
                rotate_list,
                status_of("Receipts"),
            )
            case(
                server,
                "NOTIFY, INBOX, INBOX's log rotated",
                "INBOX",
                notify,
                rotate_inbox,
                status_of("INBOX"),
            )
            case(
                server,
                "IDLE on INBOX (EXAMINEd), INBOX's log rotated",
                "INBOX",
                examine,
                rotate_inbox,
                lambda line: line.endswith(b"EXISTS\r\n"),
            )
    finally:
        server_down(args.lab.resolve(), args.dir / "server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
