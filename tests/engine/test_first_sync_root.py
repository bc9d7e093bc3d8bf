"""An account's first sync into an existing root that does not fit its config, through
``mailtide sync`` and the real Dovecot.

A new user points mailtide at the Maildir another program wrote, with the wrong ``layout``,
or at a directory that is no Maildir at all.  The first sync must refuse in one line on
stderr that says what the root looks like and which key to change, exit with status 1 (an
account that failed; the others would still run), and change nothing on either side.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config

SEEN = "\\Seen"
OTHER = {"fs": "maildir++", "maildir++": "fs"}


def on_disk(root: Path) -> dict[str, int]:
    """Every path below ``root`` with its size (-1 for a directory)."""
    return {
        p.relative_to(root).as_posix(): -1 if p.is_dir() else p.stat().st_size
        for p in root.rglob("*")
    }


def on_server(s: Setup) -> dict[str, list[tuple[int, frozenset[str], str]]]:
    return {
        folder: [(m.uid, m.flags, m.message_id) for m in srv.fetch_all(s.imap, folder)]
        for folder in srv.list_folders(s.imap, selectable=True)
    }


def switching_user(s: Setup, tree_layout: str) -> None:
    """Mail on the server, and the same mail but one message in a Maildir in ``tree_layout``
    that another program wrote (as a user switching to mailtide has)."""
    for folder, numbers in {"INBOX": (1, 2, 3), "Sent": (4,)}.items():
        for i in numbers:
            message = srv.make_message(i, folder)
            srv.append(s.imap, folder, message, [SEEN])
            if i != 3:
                loc.deliver(s.root, tree_layout, folder, message, "S")


def refused(s: Setup, *args: str) -> str:
    """Run ``mailtide sync`` (exit status 1 required); its one error line."""
    code, output = run_forked(write_config(s), *args)
    assert code == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("mailtide: ")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize("tree_layout", ["maildir++", "fs"])
def test_a_tree_in_the_other_layout_is_refused_until_the_layout_is_set(
    imap_account: ImapAccount, tmp_path: Path, tree_layout: str
) -> None:
    s = make_setup(imap_account, tmp_path, OTHER[tree_layout])
    switching_user(s, tree_layout)
    disk, server = on_disk(s.root), on_server(s)
    line = refused(s)
    assert line.startswith(f"mailtide: account test: Maildir root {s.root} looks like a Maildir ")
    assert line.endswith(f'set layout = "{tree_layout}" in [repository.local]')
    assert f"in the {tree_layout} layout" in line
    assert refused(s, "--dry-run") == line
    assert on_disk(s.root) == disk and on_server(s) == server

    # the user sets the layout: the first sync pairs what both sides hold and copies only the
    # one message the Maildir lacked
    fixed = replace(s, layout=tree_layout)
    code, output = run_forked(write_config(fixed))
    assert code == 0, output
    assert on_server(fixed) == server
    local = {
        folder: sorted(m.message_id for m in loc.messages(fixed.root, tree_layout, folder))
        for folder in loc.folders(fixed.root, tree_layout)
    }
    assert local == {folder: sorted(m[2] for m in msgs) for folder, msgs in server.items()}


def test_a_directory_that_is_no_maildir_is_refused(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """A home directory with documents (and a Maildir in it)."""
    s = make_setup(imap_account, tmp_path, "fs")
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [SEEN])
    (s.root / "Documents").mkdir()
    (s.root / "Documents" / "letter.odt").write_bytes(b"PK")
    (s.root / "notes.txt").write_text("shopping\n")
    (s.root / ".bashrc").write_text("alias ll='ls -l'\n")
    loc.deliver(s.root / "Mail", "fs", "INBOX", srv.make_message(2, "INBOX"), "S")
    disk, server = on_disk(s.root), on_server(s)
    assert refused(s) == (
        f"mailtide: account test: Maildir root {s.root} holds other things than a Maildir "
        "(Documents, notes.txt): mailtide does not put its folders among them; set path in "
        "[repository.local] to a directory of its own (new, empty, or holding only a Maildir)"
    )
    assert on_disk(s.root) == disk and on_server(s) == server


def test_only_the_first_sync_looks(imap_account: ImapAccount, tmp_path: Path) -> None:
    """Once an account has synced, its root is its own: a file put there later is no reason
    to stop (and a root with only Maildir data, or nothing, was fine to begin with)."""
    s = make_setup(imap_account, tmp_path, "maildir++")
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [SEEN])
    (s.root / "dovecot-uidvalidity").write_text("65a1b2c3\n")
    (s.root / ".notmuch").mkdir()
    code, output = run_forked(write_config(s))
    assert code == 0, output
    (s.root / "README").write_text("my mail\n")
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), [SEEN])
    code, output = run_forked(write_config(s))
    assert code == 0, output
    assert len(loc.messages(s.root, "maildir++", "INBOX")) == 2
