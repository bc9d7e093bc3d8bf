"""What a run says and how it exits: mail that stays on one side, `-f` mistakes, a dry run
that plans what the real run does, nested folders in one run, and the way back from a refused
mass deletion.  `mailtide sync` runs as a process against the private Dovecot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config

EXIT_USAGE, EXIT_FAILED, EXIT_STRANDED = 2, 1, 3


def sync(s: Setup, *args: str) -> tuple[int, str]:
    return run_forked(write_config(s), *args)


def summary(output: str) -> str:
    (line,) = [x for x in output.splitlines() if "account.done" in x]
    return line


# ---- mail that stays on one side ---------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "server_folder"),
    [
        pytest.param("fs", "Projekte/new", id="fs-new"),
        pytest.param("fs", "tmp", id="fs-tmp"),
    ],
)
def test_a_folder_one_side_cannot_hold_exits_3_and_the_dry_run_plans_the_same(
    imap_account: ImapAccount, tmp_path: Path, layout: str, server_folder: str
) -> None:
    s = make_setup(imap_account, tmp_path, layout)
    srv.append(s.imap, server_folder, srv.make_message(1, "x"), ["\\Seen"])
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    dry_code, dry = sync(s, "--dry-run")
    assert dry_code == EXIT_STRANDED, dry
    assert f"{server_folder!r} cannot be made on the local side" in dry, dry
    assert not [x for x in dry.splitlines() if "would_create" in x and server_folder in x], dry
    # the dry run plans nothing for the folder the real run cannot make, and one copy for INBOX
    planned = [x for x in dry.splitlines() if "mailbox.would_sync" in x]
    assert len(planned) == 1 and "mailbox=INBOX" in planned[0] and "new_local=1" in planned[0]
    for _ in range(2):  # every run says so, and exits 3
        code, out = sync(s)
        assert code == EXIT_STRANDED, out
        assert f"mailtide: account test: folder {server_folder!r} cannot be made" in out, out
        assert "failed=0" in summary(out) and "stranded=1" in summary(out), summary(out)
    assert srv.message_id(2, "INBOX") in loc.by_message_id(s.root, layout, "INBOX")
    assert len(srv.fetch_all(s.imap, server_folder)) == 1


def test_a_backslash_in_a_server_folder_name(imap_account: ImapAccount, tmp_path: Path) -> None:
    """A name in the server's listing that cannot be mapped to a canonical name is stranded
    on the server, said once per run, and the run exits 3."""
    s = make_setup(imap_account, tmp_path, "fs")
    typ, said = srv.create_raw_folder(s.imap, "Back\\slash")
    assert typ == "OK", said
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    code, out = sync(s)
    assert code == EXIT_STRANDED, out
    (line,) = [x for x in out.splitlines() if x.startswith("mailtide: ")]
    assert "remote folder 'Back" in line and "its mail stays on the remote side" in line, line
    assert "stranded=1" in summary(out), out
    assert loc.folders(s.root, "fs") == ["INBOX"]


def test_a_local_message_the_server_refuses_is_named_and_exits_3(fs_setup: Setup) -> None:
    s = fs_setup
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(1, "INBOX"), "S")
    empty = loc.deliver(s.root, "fs", "INBOX", b"x", "S")
    empty.write_bytes(b"")
    code, out = sync(s)
    assert code == EXIT_STRANDED, out
    lines = [x for x in out.splitlines() if x.startswith("mailtide: ")]
    assert len(lines) == 1, out
    assert "folder 'INBOX'" in lines[0] and str(empty) in lines[0], lines[0]
    assert "the server said: NO" in lines[0], lines[0]
    assert "failed=0" in summary(out) and "stranded=1" in summary(out), summary(out)
    assert {m.message_id for m in srv.fetch_all(s.imap, "INBOX")} == {srv.message_id(1, "INBOX")}


# ---- -f names a folder that is not there ------------------------------------------------------


def test_a_folder_that_does_not_exist_is_a_usage_mistake(fs_setup: Setup) -> None:
    s = fs_setup
    srv.append(s.imap, "Archive", srv.make_message(1, "Archive"), ["\\Seen"])
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    code, out = sync(s, "-f", "INBOX,Archiv")
    assert code == EXIT_USAGE, out
    assert 'no folder "Archiv" on either side (did you mean "Archive"?)' in out, out
    assert loc.folders(s.root, "fs") == [], "nothing is synced after a usage mistake"


def test_a_filtered_folder_asked_for_is_a_usage_mistake(fs_setup: Setup) -> None:
    s = fs_setup
    config = write_config(s)
    config.write_text(
        config.read_text().replace('type = "imap"', 'type = "imap"\nfolders.exclude = ["Spam"]')
    )
    srv.append(s.imap, "Spam", srv.make_message(1, "Spam"), ["\\Seen"])
    code, out = run_forked(config, "-f", "Spam")
    assert code == EXIT_USAGE, out
    assert 'folder "Spam" is left out by the folders.include/exclude rules' in out, out


# ---- a new nested folder converges in one run -------------------------------------------------


@pytest.mark.parametrize("layout", ["fs", "maildir++"])
def test_a_new_nested_local_folder_converges_in_one_run(
    imap_account: ImapAccount, tmp_path: Path, layout: str
) -> None:
    """``NewLocal/Sub`` whose parent is no folder: the server makes ``NewLocal`` as well when it
    creates ``NewLocal/Sub``; the same run makes it locally, so the next run has nothing to do."""
    s = make_setup(imap_account, tmp_path, layout)
    loc.deliver(s.root, layout, "NewLocal/Sub", srv.make_message(1, "x"), "S")
    code, out = sync(s)
    assert code == 0, out
    server = set(srv.list_folders(s.imap, selectable=True))
    assert {"NewLocal/Sub"} <= server, server
    assert set(loc.folders(s.root, layout)) == server, (loc.folders(s.root, layout), server)
    code, again = sync(s, "-v")
    assert code == 0, again
    assert "folder.created" not in again and "would_create" not in again, again


# ---- the way back from a refused mass deletion ------------------------------------------------


def _synced_inbox(s: Setup, n: int) -> None:
    for i in range(n):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"])
    code, out = sync(s)
    assert code == 0, out


def test_a_refused_mass_delete_says_both_ways_back_and_restoring_the_files_changes_nothing(
    fs_setup: Setup,
) -> None:
    s = fs_setup
    _synced_inbox(s, 40)
    backup = s.root.parent / "backup"
    cur = loc.folder_dir(s.root, "fs", "INBOX") / "cur"
    shutil.copytree(cur, backup)
    doomed = sorted(cur.iterdir())[:30]
    for f in doomed:
        f.unlink()
    code, out = sync(s)
    assert code == EXIT_FAILED, out
    (line,) = [x for x in out.splitlines() if x.startswith("mailtide: ")]
    assert "would delete 30 of 40 messages on the remote side" in line, line
    assert "--allow-mass-delete" in line and "--restore-deleted" in line, line
    assert "put the messages back on the local side" in line, line
    assert len(srv.fetch_all(s.imap, "INBOX")) == 40
    for f in doomed:  # the user restores the files from the backup
        shutil.copy2(backup / f.name, f)
    for mode in ((), ("--full",)):
        code, out = sync(s, *mode)
        assert code == 0, out
        assert "new_remote=0 new_local=0" in summary(out), summary(out)
        assert "deleted" not in out.replace("deleted_remote=0", "").replace("deleted_local=0", "")
    assert len(srv.fetch_all(s.imap, "INBOX")) == 40
    assert sorted(p.name for p in cur.iterdir()) == sorted(p.name for p in backup.iterdir())


def test_restore_deleted_copies_the_messages_back_from_the_other_side(fs_setup: Setup) -> None:
    s = fs_setup
    _synced_inbox(s, 40)
    cur = loc.folder_dir(s.root, "fs", "INBOX") / "cur"
    gone = sorted(cur.iterdir())[:30]
    for f in gone:
        f.unlink()
    assert sync(s)[0] == EXIT_FAILED
    code, dry = sync(s, "--restore-deleted", "--dry-run")
    assert code == 0 and "new_local=30" in dry and "deleted_remote=0" in dry, dry
    code, out = sync(s, "--restore-deleted")
    assert code == 0, out
    assert "new_local=30" in summary(out), summary(out)
    local = loc.by_message_id(s.root, "fs", "INBOX")
    server = {m.message_id for m in srv.fetch_all(s.imap, "INBOX")}
    assert len(server) == 40 and set(local) == server
    assert len(loc.messages(s.root, "fs", "INBOX")) == 40
    code, out = sync(s, "--full")  # settled: a full comparison finds nothing to do
    assert code == 0 and "new_remote=0 new_local=0" in summary(out), out


def test_a_local_folder_maildir_plus_plus_cannot_see_is_stranded(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """A Maildir folder at a maildir++ root without the leading dot (made by hand, or by a
    tool set to another layout) is mail that would stay local in silence: it is said, exit 3."""
    s = make_setup(imap_account, tmp_path, "maildir++")
    loc.deliver(s.root, "maildir++", "INBOX", srv.make_message(1, "INBOX"), "S")
    assert sync(s)[0] == 0
    stray = s.root / "Dot.Name"
    for sub in ("cur", "new", "tmp"):
        (stray / sub).mkdir(parents=True)
    (stray / "cur" / "1.x.host:2,S").write_bytes(srv.make_message(2, "x"))
    code, out = sync(s)
    assert code == EXIT_STRANDED, out
    assert "local folder 'Dot.Name' is not synced" in out and "named .NAME" in out, out
