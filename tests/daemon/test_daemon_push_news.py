"""What the daemon syncs for the server's push news: exactly the mailboxes it names, through
a real ``mailtide daemon`` and the private Dovecot (NOTIFY)."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, cli, eventually, local_ids, settled
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, write_config
from mailtide.stores.maildir.stamp import folder_stamp


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


def synced_since(d: Daemon, start: int) -> list[int]:
    """The number of mailboxes of each sync the daemon finished after ``start`` (an offset
    into its output)."""
    return [int(n) for n in re.findall(r"event=account\.done .*?mailboxes=(\d+)", d.output[start:])]


def test_a_delivery_into_a_non_ascii_folder_syncs_that_folder_only(
    setup: Setup, daemons: Callable[..., Daemon]
) -> None:
    # Dovecot 2.3 names Entwürfe in UTF-8 in NOTIFY's news, not in modified UTF-7.
    s = setup
    for folder in ("INBOX", "Work", "Entwürfe"):
        srv.append(s.imap, folder, srv.make_message(1, folder), [])
    d = daemons(write_config(s))
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    start = len(d.output)
    srv.append(s.imap, "Entwürfe", srv.make_message(2, "Entwürfe"), [])
    eventually(lambda: srv.message_id(2, "Entwürfe") in local_ids(s, "Entwürfe"), 10, "pushed", d)
    settled(d)
    assert synced_since(d, start) == [1], d.output[start:]
    (account,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
    assert account["last_sync"]["mailboxes"] == ["Entwürfe"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def server_flags(s: Setup, folder: str, message_id: str) -> frozenset[str]:
    return next(m.flags for m in srv.fetch_all(s.imap, folder) if m.message_id == message_id)


def flag_locally_until_stored(s: Setup, d: Daemon, message_id: str) -> None:
    """Flag a message in the Maildir (as a mail client does) and wait until the daemon has
    stored the flag on the server."""
    loc.set_letters(loc.by_message_id(s.root, "fs", "INBOX")[message_id], "F")
    eventually(lambda: "\\Flagged" in server_flags(s, "INBOX", message_id), 10, "stored", d)


@pytest.fixture
def watching(setup: Setup, daemons: Callable[..., Daemon]) -> Daemon:
    """A daemon watching an account of two mailboxes with NOTIFY, done with its first sync."""
    for folder in ("INBOX", "Work"):
        srv.append(setup.imap, folder, srv.make_message(1, folder), [])
    d = daemons(write_config(setup))
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    return d


def test_our_own_change_on_the_server_makes_one_sync(setup: Setup, watching: Daemon) -> None:
    """NOTIFY also reports what our own sync stored on the server: that news is our echo,
    and must not start a second sync (measured: a second one, finding nothing)."""
    start = len(watching.output)
    flag_locally_until_stored(setup, watching, srv.message_id(1, "INBOX"))
    settled(watching, quiet=3)
    assert synced_since(watching, start) == [1], watching.output[start:]


def test_a_server_change_right_after_our_own_still_arrives(setup: Setup, watching: Daemon) -> None:
    """Whatever is done about the echo of our own writes, another client's change right after
    them is news, never mistaken for the echo."""
    s, d = setup, watching
    first = srv.message_id(1, "INBOX")
    flag_locally_until_stored(s, d, first)
    srv.set_flags(s.imap, "INBOX", first, ["\\Flagged", "\\Answered"])
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), [])
    eventually(
        lambda: (
            srv.message_id(2, "INBOX") in local_ids(s)
            and "R" in loc.by_message_id(s.root, "fs", "INBOX")[first].letters
        ),
        10,
        "the other client's changes in the Maildir",
        d,
    )
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_a_pushed_delivery_keeps_the_folders_stamp_and_a_readers_file_still_arrives(
    setup: Setup, daemons: Callable[..., Daemon]
) -> None:
    """The daemon's sync of a pushed message writes into INBOX; once the times of that write
    have settled, its next sync records the stamp after it before looking at INBOX (which
    then is not listed).  A file a mail reader adds after that is seen by the watcher, and
    the sync it makes lists INBOX and uploads it."""
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    s.sync()
    inbox = str(loc.folder_dir(s.root, s.layout, "INBOX"))
    deadline = time.monotonic() + 5
    while folder_stamp(inbox) is None:  # times that prove something: a stamp to start from
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d = daemons(write_config(s))
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    for i in (2, 3):
        start = len(d.output)
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"])
        eventually(lambda i=i: srv.message_id(i, "INBOX") in local_ids(s), 10, "pushed", d)
        settled(d)  # 1.5 s: the times of the write have settled
    events = re.findall(r"event=(mailbox\.(?:restamped|synced)) .*?mailbox=INBOX", d.output[start:])
    assert events[:2] == ["mailbox.restamped", "mailbox.synced"], d.output[start:]
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(4, "INBOX"), "S")

    def uploaded() -> bool:
        return srv.message_id(4, "INBOX") in {m.message_id for m in srv.fetch_all(s.imap, "INBOX")}

    eventually(uploaded, 10, "uploaded", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


ENGINE_LIST = 'LIST \\"\\" \\"*\\" RETURN (SPECIAL-USE'


def test_a_pushed_delivery_is_synced_without_listing_the_folders_again(
    setup: Setup, daemons: Callable[..., Daemon]
) -> None:
    """NOTIFY's news names the mailbox and tells its status: the sync of it takes the folders
    from its last listing (the connections are held, the store's own among them) and the
    status from the news, so the server is not asked its LIST-STATUS (on Maildir a re-read of
    every changed folder) before the mailbox's own commands, from the first push on.  A
    folder made on the server is news of its own, and the sync of it lists the folders."""
    s = setup
    for folder in ("INBOX", "Work"):
        srv.append(s.imap, folder, srv.make_message(1, folder), [])
    d = daemons(write_config(s), None, "-v")  # -vv: the IMAP conversation
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    start = len(d.output)
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), [])
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 10, "pushed", d)
    settled(d)
    assert "event=imap.listed_by_push" in d.output[start:], d.output[start:]
    assert ENGINE_LIST not in d.output[start:], d.output[start:]
    start = len(d.output)
    srv.create_folder(s.imap, "Made")
    srv.append(s.imap, "Made", srv.make_message(5, "Made"), [])
    eventually(lambda: srv.message_id(5, "Made") in local_ids(s, "Made"), 10, "new folder", d)
    assert ENGINE_LIST in d.output[start:], d.output[start:]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
