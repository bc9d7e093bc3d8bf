"""A Maildir whose folders OfflineIMAP or mbsync named in raw modified UTF-7, through the real
Dovecot, made by hand (test_adopt.py runs the real tools).

Both tools keep a server folder's name as IMAP sends it: the server's ``Entwürfe`` is the
directory ``Entw&APw-rfe``.  The first mailtide sync renames that directory to ``Entwürfe`` (the
same files, by inode) and pairs it with the server folder: no folder is made on the server,
nothing is downloaded or uploaded again.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_sync, steps_of, write_config

# server folder -> the message numbers both sides hold; the local copies sit in the raw names
SHARED = {
    "INBOX": [1, 2],
    "Entwürfe": [3, 4],
    "Archiv/Entwürfe": [5],
    "日本語": [6],
}
RAW = {"Entwürfe": "Entw&APw-rfe", "Archiv/Entwürfe": "Archiv/Entw&APw-rfe", "日本語": "&ZeVnLIqe-"}


def raw(folder: str) -> str:
    return RAW.get(folder, folder)


def fill_both(s: Setup) -> None:
    """The server and a Maildir another tool made from it (raw names); one more message
    only in the raw ``Entwürfe`` (a draft written offline, to go up)."""
    with srv.session(s.imap) as c:
        for folder, numbers in SHARED.items():
            for i in numbers:
                srv.append(s.imap, folder, srv.make_message(i, folder), ["\\Seen"], imap=c)
    for folder, numbers in SHARED.items():
        for i in numbers:
            loc.deliver(s.root, s.layout, raw(folder), srv.make_message(i, folder), "S")
    loc.deliver(s.root, s.layout, raw("Entwürfe"), srv.make_message(9, "Entwürfe"), "")


def inodes(s: Setup) -> dict[int, tuple[str, str]]:
    """Every local file: inode -> (folder, Message-ID)."""
    return {
        m.path.stat().st_ino: (folder, m.message_id)
        for folder in loc.folders(s.root, s.layout)
        for m in loc.messages(s.root, s.layout, folder)
    }


def server_counts(s: Setup) -> Counter[str]:
    with srv.session(s.imap) as c:
        return Counter(
            {
                f: len(srv.fetch_all(s.imap, f, imap=c))
                for f in srv.list_folders(s.imap, c, selectable=True)
            }
        )


def events(out: str, event: str) -> list[str]:
    return [line for line in out.splitlines() if f"event={event}" in line]


def test_a_raw_folder_is_renamed_and_paired_not_copied(setup: Setup) -> None:
    s = setup
    fill_both(s)
    loc.deliver(s.root, s.layout, "A&B", srv.make_message(7, "A&B"), "S")  # not mUTF-7
    before, counts = inodes(s), server_counts(s)
    code, out = run_sync(write_config(s))
    assert code == 0, out

    # each raw folder renamed once, naming both names; nothing else made on the server
    adopted = events(out, "folder.adopted")
    assert len(adopted) == 3, out
    assert any("folder=Entw&APw-rfe" in a and "to=Entwürfe" in a for a in adopted), adopted
    assert srv.list_folders(s.imap, selectable=True) == sorted([*counts, "A&B"])
    assert server_counts(s) == counts + Counter({"Entwürfe": 1, "A&B": 1})
    # the same files, now under the Unicode names; only the offline draft went up
    assert sorted(loc.folders(s.root, s.layout)) == sorted([*SHARED, "A&B"])
    assert inodes(s) == {
        ino: (srv._mutf7_decode(folder) if folder != "A&B" else folder, message_id)
        for ino, (folder, message_id) in before.items()
    }
    assert srv.make_message(9, "Entwürfe").replace(b"\r\n", b"\n") in [
        m.body.replace(b"\r\n", b"\n") for m in srv.fetch_all(s.imap, "Entwürfe")
    ]
    report = s.sync()
    assert not report.failed and not report.stranded, report
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert inodes(s) == {i: (srv._mutf7_decode(f), m) for i, (f, m) in before.items()}


def both(files: dict[int, tuple[str, str]]) -> dict[int, tuple[str, str]]:
    return {i: f for i, f in files.items() if f[0] in ("Entw&APw-rfe", "Entwürfe")}


def test_a_raw_folder_beside_its_unicode_name_is_reported_and_left_alone(setup: Setup) -> None:
    s = setup
    fill_both(s)
    for i in SHARED["Entwürfe"]:  # the Unicode folder holds the same mail
        loc.deliver(s.root, s.layout, "Entwürfe", srv.make_message(i, "Entwürfe"), "S")
    before, counts = inodes(s), server_counts(s)
    config = write_config(s)
    for _ in range(2):
        code, out = run_sync(config)
        assert code == 3, out  # the raw folder's mail stays local
        lines = [line for line in out.splitlines() if "raw modified UTF-7 name of" in line]
        # said once in the log and once among the run's stranded lines on stderr
        assert [line.startswith("mailtide: account test: ") for line in lines] == [False, True]
        for folder in ("Entw&APw-rfe", "Entwürfe"):
            assert str(loc.folder_dir(s.root, s.layout, folder)) in lines[1], lines
        assert "not synced" in lines[1] and "sync again" in lines[1], lines
        # both folders as they were (nothing merged, nothing deleted), nothing new on the server
        assert both(inodes(s)) == both(before)
        assert "Entw&APw-rfe" in loc.folders(s.root, s.layout)
        assert srv.list_folders(s.imap, selectable=True) == sorted(counts)
        assert server_counts(s) == counts


def test_a_dry_run_says_it_would_rename_and_does_not(setup: Setup) -> None:
    s = setup
    fill_both(s)
    before, counts = inodes(s), server_counts(s)
    config = write_config(s)
    code, out = run_sync(config, None, False, "--dry-run")
    assert code == 0, out
    would = events(out, "folder.would_rename")
    assert len(would) == 3 and any("folder=Entw&APw-rfe" in w for w in would), out
    assert "would_create" not in out, out
    assert inodes(s) == before and server_counts(s) == counts
    code, out = run_sync(config)
    assert code == 0, out
    assert sorted(loc.folders(s.root, s.layout)) == sorted(SHARED)


def test_killed_right_after_the_rename_the_next_run_converges(setup: Setup) -> None:
    s = setup
    fill_both(s)
    before, counts = inodes(s), server_counts(s)
    config = write_config(s)
    code, out = run_sync(config, 1, True)
    assert code == -9, out
    assert steps_of(out) == ["rename folder"], out  # killed right after the first rename
    assert len(set(loc.folders(s.root, s.layout)) & set(RAW.values())) == 2  # one renamed
    code, out = run_sync(config)
    assert code == 0, out
    assert sorted(loc.folders(s.root, s.layout)) == sorted(SHARED)
    assert inodes(s) == {i: (srv._mutf7_decode(f), m) for i, (f, m) in before.items()}
    assert server_counts(s) == counts + Counter({"Entwürfe": 1})
    assert not re.search(r"new_local=[1-9]", out), out


def test_a_maildir_plus_plus_rename_cut_short_after_its_subfolder(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """maildir++ renames a folder's subfolders (``.A.B`` beside ``.A``) before the folder: a
    kill in between leaves the subfolder under the Unicode name, the folder under the raw one;
    the next run adopts the folder alone."""
    s = make_setup(imap_account, tmp_path, "maildir++")
    for folder, i in (("Entwürfe", 3), ("Entwürfe/Alt", 4)):
        srv.append(s.imap, folder, srv.make_message(i, folder), ["\\Seen"])
    loc.deliver(s.root, s.layout, "Entw&APw-rfe", srv.make_message(3, "Entwürfe"), "S")
    loc.deliver(s.root, s.layout, "Entwürfe/Alt", srv.make_message(4, "Entwürfe/Alt"), "S")
    before, counts = inodes(s), server_counts(s)
    code, out = run_sync(write_config(s))
    assert code == 0, out
    assert sorted(loc.folders(s.root, s.layout)) == ["Entwürfe", "Entwürfe/Alt", "INBOX"]
    assert inodes(s) == {i: (srv._mutf7_decode(f), m) for i, (f, m) in before.items()}
    assert server_counts(s) == counts


@pytest.mark.parametrize("name", ["A&B", "R&-D", "Entw&APw-rfe"])
def test_an_ordinary_or_unmatched_name_is_left_as_it_is(fs_setup: Setup, name: str) -> None:
    """Not modified UTF-7, no encoded run, or no server folder of the decoded name: the folder
    is synced under its own name, as before."""
    s = fs_setup
    loc.deliver(s.root, "fs", name, srv.make_message(1, name), "S")
    report = s.sync()
    assert not report.failed and not report.stranded, report
    assert loc.folders(s.root, "fs") == sorted(["INBOX", name])
    assert srv.list_folders(s.imap) == sorted(["INBOX", name])


@pytest.mark.parametrize("asked", ["Entw&APw-rfe", "Entwürfe"])
def test_f_by_either_name_adopts_that_folder_alone(fs_setup: Setup, asked: str) -> None:
    s = fs_setup
    fill_both(s)
    counts = server_counts(s)
    code, out = run_sync(write_config(s), None, False, "-f", asked)
    assert code == 0, out
    # the others keep their raw names until a sync covers them
    assert loc.folders(s.root, "fs") == sorted(
        ["INBOX", "Entwürfe", "Archiv/Entw&APw-rfe", "&ZeVnLIqe-"]
    )
    assert server_counts(s) == counts + Counter({"Entwürfe": 1})
