"""The fake Gmail's account as the Gmail tests use it: sample messages, the config of an
account syncing it into a Maildir, and what the server and the Maildir hold."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import maildir_helpers as loc
from engine_helpers import run_sync, steps_of
from fake_gmail import GmailServer, serve_gmail

LABELS = "gmail_labels = true\n"  # the labels mode, labels as folders

TOKEN = "ya29.fake-access-token"


def mail(n: int) -> bytes:
    return (
        f"From: a@example.org\r\nTo: me@gmail.com\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:0{n} +0000\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


def lf(body: bytes) -> bytes:
    return body.replace(b"\r\n", b"\n")


def fill(gmail: GmailServer) -> None:
    """Six messages: one with three labels, the others in one place each."""
    gmail.add(mail(1), ["\\Inbox", "Work", "Travel"], flags=["\\Seen"])
    gmail.add(mail(2), ["\\Inbox"])
    gmail.add(mail(3), ["\\Sent"], flags=["\\Seen"])
    gmail.add(mail(4), ["Work"], flags=["\\Flagged"])  # starred
    gmail.add(mail(5), place="trash")
    gmail.add(mail(6), place="spam")


def write_config(tmp: Path, port: int, extra: str = "") -> Path:
    """The account "gmail": the preset's only changes are the fake's address and no TLS."""
    config = tmp / "config.toml"
    config.write_text(
        f"""\
[general]
state_dir = "state"

[account.gmail]
local = "local"
remote = "gmail"

[repository.local]
type = "maildir"
path = "Mail"

[repository.gmail]
type = "gmail"
host = "127.0.0.1"
port = {port}
tls = "none"
user = "me@gmail.com"
oauth2_token_command = ["{sys.executable}", "-c", "print('{TOKEN}')"]
{extra}"""
    )
    return config


def server_state(gmail: GmailServer) -> dict[str, list[tuple[int, int, list[str], list[str]]]]:
    """What each mailbox holds: (UID, X-GM-MSGID, labels, flags) of each message."""
    return {
        name: [(uid, m.msgid, sorted(m.labels), sorted(m.flags)) for uid, m in gmail.mailbox(name)]
        for name in gmail.boxes
    }


def copies_of(root: Path, n: int) -> dict[str, Path]:
    """Each local folder's file of message ``n``, by folder (at most one per folder)."""
    out: dict[str, Path] = {}
    for folder in loc.folders(root, "fs"):
        for m in loc.messages(root, "fs", folder):
            if m.body == lf(mail(n)):
                assert folder not in out, f"message {n} twice in {folder}"
                out[folder] = m.path
    return out


def one_file(paths: dict[str, Path]) -> int:
    """The inode all ``paths`` share (they must be one file), checking its link count."""
    inodes = {p.stat().st_ino for p in paths.values()}
    assert len(inodes) == 1, paths
    (path, *_) = paths.values()
    assert path.stat().st_nlink == len(paths)
    return inodes.pop()


def change(gmail: GmailServer, n: int, add: str = "", remove: str = "") -> None:
    """On the server, as the web interface would: give message ``n`` a label or take one."""
    with gmail.lock:
        msg = next(m for m in gmail.messages.values() if m.body == mail(n))
        if add:
            gmail.label(msg, add)
        if remove:
            gmail.strip(msg, remove)
        gmail.touch(msg)
        gmail.refresh()


def crash_points(steps: list[str]) -> list[int]:
    """Where to interrupt: after the first step of each kind, after every link made and the
    intent before it, and after the last step."""
    firsts = {steps.index(kind) + 1 for kind in steps}
    links = {i for i, kind in enumerate(steps, 1) if kind == "link local"}
    return sorted(firsts | links | {i - 1 for i in links} | {len(steps)})


def interrupted(
    tmp: Path,
    prepare: Callable[[GmailServer, Path], None],
    check: Callable[[GmailServer, Path], None],
    mode: str = LABELS,
) -> None:
    """For each crash point of the run after ``prepare(server, config)``: on a fresh fake Gmail
    (``fill``-ed) and Maildir synced with the repository keys ``mode``, that run killed after
    the step, then a complete run, then one that changes nothing; ``check(server, Maildir
    root)`` after each complete run."""
    reference = tmp / "reference"
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        config = write_config(reference.mkdir() or reference, gmail.port, mode)
        prepare(gmail, config)
        code, output = run_sync(config, verbose=True)
        assert code == 0, output
        steps = steps_of(output)
    for point in crash_points(steps):
        where = tmp / f"after-{point}"
        with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
            fill(gmail)
            config = write_config(where.mkdir() or where, gmail.port, mode)
            prepare(gmail, config)
            code, output = run_sync(config, crash_after=point, verbose=True)
            # A run may take a step fewer than the reference (a folder's stamp settled in
            # time or not: a listing's marks are then a step of their own): it ends whole.
            if code != -9:
                assert code == 0 and len(steps_of(output)) < point, f"after step {point}: {output}"
            code, output = run_sync(config)
            assert code == 0, f"after step {point} ({steps[point - 1]}): {output}"
            check(gmail, where / "Mail")
            before = server_state(gmail)
            code, output = run_sync(config)
            assert code == 0, output
            totals = output.split("account.done")[-1]
            assert "new_local=0" in totals and "new_remote=0" in totals, totals
            assert server_state(gmail) == before, f"after step {point} ({steps[point - 1]})"
            check(gmail, where / "Mail")
