"""The account's folder rules in a real sync against Dovecot: rename rules and map_special give
the local names both ways, two server folders the rules would make one local folder refuse the
run with their names (nothing is created or copied), and rules changed later rename the local
directory instead of downloading again."""

from __future__ import annotations

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderRules
from mailtide.core.rename_rule import RenameRule

LISTS = RenameRule("Lists/(.*)", "lists/{1:lower}")


def fill(s: Setup, folders: list[str]) -> None:
    with srv.session(s.imap) as c:
        for n, folder in enumerate(folders):
            srv.append(s.imap, folder, srv.make_message(n, folder), imap=c)


def inodes(s: Setup, folder: str) -> set[int]:
    return {m.path.stat().st_ino for m in loc.messages(s.root, s.layout, folder)}


def test_rename_rules_and_special_use_name_the_local_folders_both_ways(setup: Setup) -> None:
    s = setup.with_account(folders=FolderRules(renames=(LISTS,), map_special=True))
    fill(s, ["INBOX", "Lists/Python", "Gesendete Objekte"])
    report = s.sync()
    assert not report.failed and not report.warnings, report
    local = loc.folders(s.root, s.layout)
    assert {"INBOX", "lists/python", "Sent"} <= set(local), local
    assert "Lists" not in local and "Gesendete Objekte" not in local, local
    assert len(loc.messages(s.root, s.layout, "Sent")) == 1
    # a folder made locally goes up under the name the rules derive back
    loc.deliver(s.root, s.layout, "lists/rust", srv.make_message(9, "rust"))
    report = s.sync()
    assert not report.failed and not report.warnings, report
    assert "Lists/rust" in srv.list_folders(s.imap), srv.list_folders(s.imap)
    assert [m.message_id for m in srv.fetch_all(s.imap, "Lists/rust")] == [
        m.message_id for m in loc.messages(s.root, s.layout, "lists/rust")
    ]
    # and the next run has nothing to do: no folder twice, no message twice
    again = s.sync()
    assert not again.failed, again
    assert not any(again.totals().values()), again.totals()


def test_two_server_folders_one_local_name_refuse_the_run_with_both_names(
    fs_setup: Setup,
) -> None:
    s = fs_setup.with_account(folders=FolderRules(renames=(RenameRule("(.*)", "{1:lower}"),)))
    fill(s, ["Work", "WORK"])
    report = s.sync()
    assert report.usage and report.error is not None, report
    assert '"Work"' in report.error and '"WORK"' in report.error, report.error
    assert '"work"' in report.error, report.error
    assert loc.folders(s.root, "fs") == [], loc.folders(s.root, "fs")


def test_a_rule_added_later_renames_the_local_folder_and_downloads_nothing(
    setup: Setup,
) -> None:
    s = setup
    fill(s, ["Lists/Python"])
    assert not s.sync().failed
    before = inodes(s, "Lists/Python")
    ruled = s.with_account(folders=FolderRules(renames=(LISTS,)))
    report = ruled.sync()
    assert not report.failed, report
    assert not any(report.totals().values()), report.totals()
    assert "lists/python" in loc.folders(s.root, s.layout)
    assert "Lists/Python" not in loc.folders(s.root, s.layout)
    assert inodes(s, "lists/python") == before
    assert srv.list_folders(s.imap, selectable=True) == ["INBOX", "Lists/Python"]


def test_an_account_exclude_leaves_a_server_folder_out(fs_setup: Setup) -> None:
    s = fs_setup.with_account(
        folders=FolderRules(server_filters=(FolderFilter(exclude=("re:Old.*",)),))
    )
    fill(s, ["Old2020", "Current"])
    report = s.sync()
    assert not report.failed, report
    assert loc.folders(s.root, "fs") == ["Current", "INBOX"]


def test_moves_between_folders_with_other_local_names_are_moves(fs_setup: Setup) -> None:
    """A file moved between two folders the rules name otherwise locally is moved on the server
    (from the server names of both), and one moved on the server is renamed into the local
    name: same inode, nothing copied either way."""
    s = fs_setup.with_account(folders=FolderRules(renames=(LISTS,)))
    fill(s, ["Lists/Python", "Lists/Rust"])
    assert not s.sync().failed
    [mine] = loc.messages(s.root, "fs", "lists/python")
    inode = mine.path.stat().st_ino
    target = loc.folder_dir(s.root, "fs", "lists/rust") / "cur" / mine.path.name
    mine.path.rename(target)
    report = s.sync()
    assert not report.failed and not report.warnings, report
    assert not any(report.totals()[k] for k in ("new_remote", "new_local")), report.totals()
    assert [m.message_id for m in srv.fetch_all(s.imap, "Lists/Python")] == []
    assert mine.message_id in {m.message_id for m in srv.fetch_all(s.imap, "Lists/Rust")}
    with srv.session(s.imap) as c:
        srv._ok(c.select(srv._quote("Lists/Rust")))
        uids = b",".join(srv._uids_of(c, mine.message_id)).decode()
        srv._ok(c.uid("MOVE", uids, srv._quote("Lists/Python")))
    report = s.sync()
    assert not report.failed, report
    assert report.totals()["new_local"] == report.totals()["new_remote"] == 0, report.totals()
    back = loc.by_message_id(s.root, "fs", "lists/python")[mine.message_id]
    assert back.path.stat().st_ino == inode
