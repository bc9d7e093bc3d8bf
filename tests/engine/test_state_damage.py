"""A damaged, truncated or deleted state database: the next sync re-pairs both sides by
content identity and copies nothing either side already holds.

A damaged file is moved aside (kept for a post-mortem) with a clear warning; it is never
silently reinitialised.  Without records nothing can look deleted, so nothing is deleted; each
message already on both sides keeps its UID and its file (no re-upload, no re-download).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, write_config

FOLDERS = ("INBOX", "Archive")


def mailtide(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def holdings(s: Setup) -> dict[str, tuple[Counter[str], Counter[str]]]:
    """Per folder: Message-IDs with their count on the server and locally."""
    out = {}
    for folder in FOLDERS:
        server = Counter(m.message_id for m in srv.fetch_all(s.imap, folder))
        local = Counter(m.message_id for m in loc.messages(s.root, s.layout, folder))
        out[folder] = (server, local)
    return out


def identities(s: Setup) -> tuple[set[tuple[str, int]], set[str]]:
    """What cannot change without a copy: server (folder, UID) and local file unique parts."""
    uids = {(f, m.uid) for f in FOLDERS for m in srv.fetch_all(s.imap, f)}
    files = {m.path.name.split(":")[0] for f in FOLDERS for m in loc.messages(s.root, s.layout, f)}
    return uids, files


def damage(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "garbage":
        db.write_bytes(os.urandom(len(data)))
    elif how == "header":  # the magic string and page size gone: "not a database"
        db.write_bytes(b"\x00" * 100 + data[100:])
    elif how == "pages":  # every page after the first overwritten
        db.write_bytes(data[:4096] + b"\xa5" * (len(data) - 4096))
    elif how == "tail":  # only the last page: opening works, reading records would not
        db.write_bytes(data[:-4096] + b"\xa5" * 4096)
    elif how == "half":
        db.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        db.write_bytes(b"")
    elif how == "deleted":
        db.unlink()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "header", "pages", "tail", "half", "empty", "deleted"])
def test_damaged_state_repairs_by_content_without_copying(
    imap_account: ImapAccount, tmp_path: Path, how: str
) -> None:
    s = make_setup(imap_account, tmp_path)
    with srv.session(s.imap) as c:
        for i in range(30):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), {"\\Seen"}, imap=c)
        for i in range(10):
            srv.append(s.imap, "Archive", srv.make_message(i, "Archive"), {"Work"}, imap=c)
    for i in range(100, 110):
        loc.deliver(s.root, s.layout, "INBOX", srv.make_message(i, "INBOX"), "F")
    config = write_config(s)
    first = mailtide(config)
    assert first.returncode == 0, first.stderr
    db = s.config.general.state_dir / "test.sqlite"
    assert db.exists() and not db.with_name("test.sqlite-wal").exists()

    # Changes while the state is lost are carried too.
    srv.append(s.imap, "Archive", srv.make_message(50, "Archive"), set())
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(200, "INBOX"), "S")
    uids, files = identities(s)
    damage(db, how)

    run = mailtide(config)
    assert run.returncode == 0, run.stderr
    aside = sorted(p.name for p in db.parent.iterdir() if ".corrupt-" in p.name)
    if how in ("empty", "deleted"):  # as good as no state: nothing to keep
        assert aside == []
    else:
        assert aside and aside[0].startswith("test.sqlite.corrupt-"), sorted(db.parent.iterdir())
        assert "damaged" in run.stderr and aside[0] in run.stderr, run.stderr
        assert "Traceback" not in run.stderr

    for folder, (server, local) in holdings(s).items():
        assert set(server.values()) == {1} and set(local.values()) == {1}, folder
        assert server == local, folder
    assert holdings(s)["INBOX"][0][srv.message_id(200, "INBOX")] == 1
    assert holdings(s)["Archive"][1][srv.message_id(50, "Archive")] == 1
    new_uids, new_files = identities(s)
    assert uids <= new_uids and len(new_uids) == len(uids) + 1, "a server message was re-uploaded"
    assert files <= new_files and len(new_files) == len(files) + 1, "a local file was re-downloaded"

    again = mailtide(config)
    assert again.returncode == 0, again.stderr
    assert identities(s) == (new_uids, new_files)
    assert "damaged" not in again.stderr


def test_damaged_state_never_creates_a_missing_maildir_root(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """Damaged state and an unmounted Maildir together must not look like a first sync."""
    s = make_setup(imap_account, tmp_path)
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), set())
    config = write_config(s)
    assert mailtide(config).returncode == 0
    damage(s.config.general.state_dir / "test.sqlite", "garbage")
    s.root.rename(tmp_path / "unmounted")
    run = mailtide(config)
    assert run.returncode == 1
    assert not s.root.exists()
