"""``mailtide sync`` of a ``type = "gmail"`` repository (the fake Gmail of tests/fake_gmail.py on
127.0.0.1) into a Maildir.

By default each label is synced as a plain folder: a message with three labels is three files,
and All Mail, Spam and Trash are left out.  With ``gmail_labels = true`` (the labels mode,
engine/gmail_labels.py) a message is downloaded once and hard-linked into the folder of each
label; labels added or taken away on either side, deletions (to Trash only from every local
folder), hostile label names, lost state and runs killed after a durable step are below."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import maildir_helpers as loc
from engine_helpers import run_forked
from fake_gmail import ENGLISH, GERMAN, GmailServer, serve_gmail
from gmail_helpers import (
    LABELS,
    TOKEN,
    change,
    copies_of,
    fill,
    interrupted,
    lf,
    mail,
    one_file,
    server_state,
    write_config,
)


@pytest.fixture(params=[ENGLISH, GERMAN], ids=["english", "german"])
def gmail(request: pytest.FixtureRequest) -> Iterator[GmailServer]:
    names: dict[str, str] = request.param
    with serve_gmail(GmailServer(names, labels=["Work", "Travel"], token=TOKEN)) as server:
        fill(server)
        yield server


def test_each_label_is_a_folder_and_all_mail_spam_trash_stay_out(
    gmail: GmailServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, gmail.port)
    server_before = server_state(gmail)
    code, output = run_forked(config)
    assert code == 0, output
    root = tmp_path / "Mail"
    names = gmail.names
    sent, starred = names["\\Sent"], names["\\Flagged"]
    expected = {
        "INBOX": [mail(1), mail(2)],
        "Work": [mail(1), mail(4)],
        "Travel": [mail(1)],
        sent.replace("&APw-", "ü"): [mail(3)],
        starred: [mail(4)],
        names["\\Important"]: [],
        names["\\Drafts"].replace("&APw-", "ü"): [],
    }
    assert loc.folders(root, "fs") == sorted(expected)
    for folder, bodies in expected.items():
        held = sorted(m.body for m in loc.messages(root, "fs", folder))
        assert held == sorted(lf(b) for b in bodies), folder
    (seen,) = [m for m in loc.messages(root, "fs", "Travel")]
    assert seen.letters == "S"  # flags are the message's, in every label
    # Today's behaviour: three labels, three downloads, three files.
    assert gmail.downloads[min(gmail.messages)] == 3

    again, output = run_forked(config)
    assert again == 0, output
    assert "new_local=0" in output.split("account.done")[-1]
    assert server_state(gmail) == server_before  # nothing uploaded back, no flag or label changed


def test_a_left_out_folder_named_whole_is_synced(tmp_path: Path) -> None:
    with serve_gmail(GmailServer(token=TOKEN)) as gmail:
        fill(gmail)
        trash = ENGLISH["\\Trash"]
        include = '["*", "[[]Gmail]/Trash"]'  # "[Gmail]" alone is a set of letters
        config = write_config(tmp_path, gmail.port, f"folders.include = {include}\n")
        code, output = run_forked(config)
        assert code == 0, output
    root = tmp_path / "Mail"
    assert [m.body for m in loc.messages(root, "fs", trash)] == [lf(mail(5))]
    assert ENGLISH["\\All"] not in loc.folders(root, "fs")  # "*" does not bring it back


def test_labels_mode_downloads_a_message_once_and_links_it_into_each_label(
    tmp_path: Path,
) -> None:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        first = min(gmail.messages)
        config = write_config(tmp_path, gmail.port, "gmail_labels = true\n")
        code, output = run_forked(config)
        assert code == 0, output
        assert gmail.downloads[first] == 1
    root = tmp_path / "Mail"
    copies = [
        m.path
        for folder in ("INBOX", "Work", "Travel")
        for m in loc.messages(root, "fs", folder)
        if m.message_id == "<m1@example.org>"
    ]
    assert len(copies) == 3
    assert len({p.stat().st_ino for p in copies}) == 1  # one file, three names
    assert copies[0].stat().st_nlink == 3


def local_copy(root: Path, folder: str, n: int) -> Path:
    (found,) = [m.path for m in loc.messages(root, "fs", folder) if m.body == lf(mail(n))]
    return found


def test_a_message_deleted_from_a_label_folder_loses_that_label_only(tmp_path: Path) -> None:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        first = gmail.messages[min(gmail.messages)]
        config = write_config(tmp_path, gmail.port)
        assert run_forked(config)[0] == 0
        root = tmp_path / "Mail"
        local_copy(root, "Work", 1).unlink()
        code, output = run_forked(config)
        assert code == 0, output
        assert first.labels == {"\\Inbox", "Travel"} and first.place == "all"
        assert len(gmail.messages) == 6
    assert [m.body for m in loc.messages(root, "fs", "Travel")] == [lf(mail(1))]
    assert lf(mail(1)) not in [m.body for m in loc.messages(root, "fs", "Work")]


def test_a_message_deleted_from_every_label_goes_to_trash(tmp_path: Path) -> None:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        first = gmail.messages[min(gmail.messages)]
        config = write_config(tmp_path, gmail.port, "gmail_labels = true\n")
        assert run_forked(config)[0] == 0
        for folder in ("INBOX", "Work", "Travel"):
            local_copy(tmp_path / "Mail", folder, 1).unlink()
        code, output = run_forked(config)
        assert code == 0, output
        assert first.place == "trash"


def test_a_local_move_between_label_folders_keeps_one_message(tmp_path: Path) -> None:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        second = sorted(gmail.messages)[1]
        config = write_config(tmp_path, gmail.port)
        assert run_forked(config)[0] == 0
        root = tmp_path / "Mail"
        moved = local_copy(root, "INBOX", 2)
        moved.rename(root / "Work" / moved.parent.name / moved.name)
        code, output = run_forked(config)
        assert code == 0, output
        assert len(gmail.messages) == 6
        assert gmail.messages[second].labels == {"Work"}


# ---- the labels mode (gmail_labels = true) ---------------------------------------------------


@pytest.fixture
def labelled(tmp_path: Path) -> Iterator[tuple[GmailServer, Path]]:
    """The fake Gmail filled, and a first sync in the labels mode done: (server, config)."""
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        config = write_config(tmp_path, gmail.port, LABELS)
        code, output = run_forked(config)
        assert code == 0, output
        yield gmail, config


def test_labels_mode_a_second_run_changes_nothing_and_files_stay_private(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    before = server_state(gmail)
    root = tmp_path / "Mail"
    first = copies_of(root, 1)
    assert sorted(first) == ["INBOX", "Travel", "Work"]
    inode = one_file(first)
    assert first["Work"].stat().st_mode & 0o777 == 0o600
    assert first["Travel"].name.endswith(":2,S")  # each name carries the message's flags
    code, output = run_forked(config)
    assert code == 0, output
    assert "new_local=0" in output.split("account.done")[-1]
    assert server_state(gmail) == before
    assert one_file(copies_of(root, 1)) == inode
    assert sum(gmail.downloads.values()) == 4  # messages 1 to 4, once each


def test_labels_mode_a_label_added_on_the_server_is_one_more_hard_link(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    inode = one_file(copies_of(root, 2))
    change(gmail, 2, add="Travel")
    code, output = run_forked(config)
    assert code == 0, output
    now = copies_of(root, 2)
    assert sorted(now) == ["INBOX", "Travel"]
    assert one_file(now) == inode
    assert gmail.downloads[min(gmail.messages) + 1] == 1


def test_labels_mode_a_label_removed_on_the_server_unlinks_that_name_only(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    change(gmail, 1, remove="Work")
    code, output = run_forked(config)
    assert code == 0, output
    now = copies_of(root, 1)
    assert sorted(now) == ["INBOX", "Travel"]
    one_file(now)


def test_labels_mode_a_file_deleted_from_one_label_folder_removes_that_label_only(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    first = gmail.messages[min(gmail.messages)]
    copies_of(root, 1)["Work"].unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert first.labels == {"\\Inbox", "Travel"} and first.place == "all"
    assert len(gmail.messages) == 6
    assert sorted(copies_of(root, 1)) == ["INBOX", "Travel"]
    one_file(copies_of(root, 1))


def test_labels_mode_a_message_in_one_label_deleted_there_goes_to_trash(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    second = gmail.messages[sorted(gmail.messages)[1]]
    copies_of(tmp_path / "Mail", 2)["INBOX"].unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert second.place == "trash" and second.msgid in gmail.messages
    all_mail = gmail.names["\\All"]
    assert second.msgid not in gmail.boxes[all_mail].uids  # in Trash, out of All Mail


def test_labels_mode_a_label_not_synced_keeps_a_message_out_of_trash(tmp_path: Path) -> None:
    """Deleted from every folder synced here, but still labelled Travel, which is left out:
    only the synced labels go, the message is never trashed for what is not seen here."""
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        first = gmail.messages[min(gmail.messages)]
        config = write_config(tmp_path, gmail.port, LABELS + 'folders.exclude = ["Travel"]\n')
        assert run_forked(config)[0] == 0
        for path in copies_of(tmp_path / "Mail", 1).values():
            path.unlink()
        code, output = run_forked(config)
        assert code == 0, output
        assert first.place == "all" and first.labels == {"Travel"}


def expected_files(root: Path) -> None:
    """The labels of ``fill`` on disk: each message once per label's folder, one file each."""
    starred, sent = ENGLISH["\\Flagged"], ENGLISH["\\Sent"]
    want = {1: ["INBOX", "Travel", "Work"], 2: ["INBOX"], 3: [sent], 4: ["Work", starred]}
    for n, folders in want.items():
        found = copies_of(root, n)
        assert sorted(found) == sorted(folders), n
        one_file(found)


def test_labels_mode_a_first_sync_killed_after_a_durable_step_converges(tmp_path: Path) -> None:
    def nothing(gmail: GmailServer, config: Path) -> None:
        pass

    def check(gmail: GmailServer, root: Path) -> None:
        assert len(gmail.messages) == 6
        assert all(m.place == "all" for m in gmail.messages.values() if m.labels)
        expected_files(root)

    interrupted(tmp_path, nothing, check)


def test_labels_mode_a_deletion_from_every_label_killed_after_a_step_converges(
    tmp_path: Path,
) -> None:
    def delete_everywhere(gmail: GmailServer, config: Path) -> None:
        code, output = run_forked(config)
        assert code == 0, output
        for path in copies_of(config.parent / "Mail", 1).values():
            path.unlink()

    def check(gmail: GmailServer, root: Path) -> None:
        first = gmail.messages[min(gmail.messages)]
        assert first.place == "trash" and len(gmail.messages) == 6
        assert copies_of(root, 1) == {}
        assert sorted(copies_of(root, 4)) == ["Work", ENGLISH["\\Flagged"]]

    interrupted(tmp_path, delete_everywhere, check)


def test_labels_mode_a_file_linked_into_another_label_folder_adds_that_label(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    second = gmail.messages[sorted(gmail.messages)[1]]
    source = copies_of(root, 2)["INBOX"]
    os.link(source, root / "Travel" / "cur" / "1700000000.M1P1.client:2,")
    code, output = run_forked(config)
    assert code == 0, output
    assert len(gmail.messages) == 6  # no second message: a label
    assert second.labels == {"\\Inbox", "Travel"}
    assert gmail.downloads[second.msgid] == 1
    again, output = run_forked(config)
    assert again == 0, output
    assert server_state(gmail)["Travel"][-1][1] == second.msgid


def test_labels_mode_a_clients_copy_into_a_new_local_folder_labels_the_message(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """A label folder made locally becomes a label, and a copy a mail client writes into it
    (a new file, the same message) labels the message instead of uploading it again."""
    gmail, config = labelled
    root = tmp_path / "Mail"
    fourth = next(m for m in gmail.messages.values() if m.body == mail(4))
    loc.deliver(root, "fs", "Receipts/2024", lf(mail(4)), letters="F")
    code, output = run_forked(config)
    assert code == 0, output
    assert len(gmail.messages) == 6
    assert fourth.labels == {"Work", "Receipts/2024"}
    assert "Receipts/2024" in gmail.boxes


def test_labels_mode_a_new_message_in_a_label_folder_is_uploaded_with_that_label(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    loc.deliver(tmp_path / "Mail", "fs", "Work", lf(mail(7)))
    code, output = run_forked(config)
    assert code == 0, output
    (added,) = [m for m in gmail.messages.values() if m.body == mail(7)]
    assert added.labels == {"Work"} and len(gmail.messages) == 7


def test_labels_mode_a_local_move_between_label_folders_moves_the_label(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    second = gmail.messages[sorted(gmail.messages)[1]]
    moved = copies_of(root, 2)["INBOX"]
    moved.rename(root / "Work" / moved.parent.name / moved.name)
    code, output = run_forked(config)
    assert code == 0, output
    assert len(gmail.messages) == 6 and second.labels == {"Work"}
    assert sorted(copies_of(root, 2)) == ["Work"]


def test_labels_mode_a_label_put_in_locally_killed_after_a_step_converges(
    tmp_path: Path,
) -> None:
    def link_into_travel(gmail: GmailServer, config: Path) -> None:
        code, output = run_forked(config)
        assert code == 0, output
        root = config.parent / "Mail"
        os.link(copies_of(root, 2)["INBOX"], root / "Travel" / "cur" / "1700000000.M1P1.x:2,")

    def check(gmail: GmailServer, root: Path) -> None:
        second = next(m for m in gmail.messages.values() if m.body == mail(2))
        assert len(gmail.messages) == 6 and second.labels == {"\\Inbox", "Travel"}
        assert sorted(copies_of(root, 2)) == ["INBOX", "Travel"]
        one_file(copies_of(root, 2))

    interrupted(tmp_path, link_into_travel, check)


HOSTILE = ["../escape", "a/../../b", "nul\x00byte", "/rooted"]


def test_labels_mode_hostile_label_names_are_refused_and_cost_nothing_else(
    tmp_path: Path,
) -> None:
    with serve_gmail(GmailServer(labels=["Work"], token=TOKEN)) as gmail:
        for label in HOSTILE:
            gmail.create_label(label)
        first = gmail.add(mail(1), ["\\Inbox", "Work", *HOSTILE])
        config = write_config(tmp_path, gmail.port, LABELS)
        code, output = run_forked(config)
        assert code == 3, output  # the folders refused: their mail stays on the server
        assert "remote folder '../escape' is not synced" in output
        root = tmp_path / "Mail"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["Mail", "config.toml", "state"]
        assert all(root in p.resolve().parents for p in root.rglob("*"))
        assert sorted(copies_of(root, 1)) == ["INBOX", "Work"]
        one_file(copies_of(root, 1))
        # Deleted from every folder synced here, it keeps the labels not synced: no Trash.
        for path in copies_of(root, 1).values():
            path.unlink()
        code, output = run_forked(config)
        assert code == 3, output
        assert first.place == "all" and first.labels == set(HOSTILE)


def test_labels_mode_a_flag_set_on_one_name_reaches_every_name_and_starred(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """Flags are the message's in Gmail: flagged in one label's folder, it is flagged on the
    server, shown in Starred, and every local name of the file says so."""
    gmail, config = labelled
    root = tmp_path / "Mail"
    first = gmail.messages[min(gmail.messages)]
    work = copies_of(root, 1)["Work"]
    work.rename(work.with_name(work.name.replace(":2,S", ":2,FS")))
    for _ in range(2):
        code, output = run_forked(config)
        assert code == 0, output
    assert first.flags == {"\\Seen", "\\Flagged"} and len(gmail.messages) == 6
    now = copies_of(root, 1)
    assert sorted(now) == sorted(["INBOX", "Travel", "Work", ENGLISH["\\Flagged"]])
    one_file(now)
    assert all(p.name.endswith(":2,FS") for p in now.values()), now


def test_labels_mode_asks_gmail_only_what_changed(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """Gmail has CONDSTORE without QRESYNC: a quick sync asks each label's mailbox for what
    changed since the last (CHANGEDSINCE), never for every message's flags, and learns of a
    message gone from a label by the count."""
    gmail, config = labelled
    root = tmp_path / "Mail"
    with gmail.lock:
        gmail.messages[min(gmail.messages)].flags.add("\\Answered")
        gmail.touch(gmail.messages[min(gmail.messages)])
        gmail.refresh()
    change(gmail, 4, remove="Work")
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    listings = [(box, args) for box, args, _ in gmail.fetches if args.startswith("1:*")]
    assert listings and all("CHANGEDSINCE" in args for _, args in listings), listings
    assert all(p.name.endswith(":2,RS") for p in copies_of(root, 1).values())
    assert sorted(copies_of(root, 4)) == [ENGLISH["\\Flagged"]]
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    assert sum(answered for _, _, answered in gmail.fetches) == 0, gmail.fetches


def test_labels_mode_after_lost_state_links_and_trash_work_as_before(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """The state deleted: the next run pairs every message by content and learns again which
    Gmail message each is, so a label added is a link and a deletion everywhere is Trash."""
    gmail, config = labelled
    root = tmp_path / "Mail"
    for path in (tmp_path / "state").iterdir():
        path.unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert "new_local=0" in output.split("account.done")[-1]
    inode = one_file(copies_of(root, 2))
    change(gmail, 2, add="Travel")
    for path in copies_of(root, 1).values():
        path.unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert one_file(copies_of(root, 2)) == inode and len(copies_of(root, 2)) == 2
    assert gmail.messages[min(gmail.messages)].place == "trash"


def test_labels_mode_takes_a_label_away_without_an_expunge_gmail_could_make_final(
    tmp_path: Path,
) -> None:
    """Gmail may be set to delete for good a message expunged from its last label.  The
    server took Work and Travel away meanwhile, and here the INBOX file goes while the Work
    and Travel files still stand: INBOX is taken away as a label (no expunge), so the message
    ends archived in All Mail, never deleted; the other files go as their labels did."""
    with serve_gmail(
        GmailServer(labels=["Work", "Travel"], token=TOKEN, expunge_last="delete")
    ) as gmail:
        fill(gmail)
        first = gmail.messages[min(gmail.messages)]
        config = write_config(tmp_path, gmail.port, LABELS)
        assert run_forked(config)[0] == 0
        change(gmail, 1, remove="Work")
        change(gmail, 1, remove="Travel")
        root = tmp_path / "Mail"
        copies_of(root, 1)["INBOX"].unlink()
        code, output = run_forked(config)
        assert code == 0, output
        assert first.msgid in gmail.messages, "deleted for good"
        assert first.place == "all" and first.labels == set()
        assert copies_of(root, 1) == {}


@pytest.mark.parametrize(
    ("folder", "label"),
    [("INBOX", "\\Inbox"), ("Work", "Work"), (ENGLISH["\\Sent"], "\\Sent")],
    ids=["inbox", "user-label", "sent"],
)
def test_labels_mode_a_file_gone_from_a_folder_takes_exactly_its_label(
    labelled: tuple[GmailServer, Path], tmp_path: Path, folder: str, label: str
) -> None:
    gmail, config = labelled
    n = 3 if label == "\\Sent" else 1
    msg = next(m for m in gmail.messages.values() if m.body == mail(n))
    if n == 3:
        change(gmail, 3, add="Work")  # so that it is not its last copy
        assert run_forked(config)[0] == 0
    before = set(msg.labels)
    copies_of(tmp_path / "Mail", n)[folder].unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert msg.labels == before - {label} and msg.place == "all"


def test_an_account_switched_to_the_labels_mode_links_from_the_files_it_has(
    tmp_path: Path,
) -> None:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        config = write_config(tmp_path, gmail.port)
        assert run_forked(config)[0] == 0  # plain folders first
        config.write_text(config.read_text() + LABELS)
        change(gmail, 2, add="Travel")
        code, output = run_forked(config)
        assert code == 0, output
        second = next(m for m in gmail.messages.values() if m.body == mail(2))
        assert gmail.downloads[second.msgid] == 1
    now = copies_of(tmp_path / "Mail", 2)
    assert sorted(now) == ["INBOX", "Travel"]
    one_file(now)


def test_labels_mode_a_second_copy_in_a_label_folder_that_holds_the_message_is_its_own(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """A file of a message its folder holds already (a client's copy into the same folder):
    never a second record of the message's one UID there, which would later read its deletion
    as the label's; it is a message of its own, uploaded once, and deleting either copy takes
    only that copy."""
    gmail, config = labelled
    root = tmp_path / "Mail"
    first = gmail.messages[min(gmail.messages)]
    work = copies_of(root, 1)["Work"]
    twin = root / "Work" / "cur" / "1700000000.M2P2.client:2,S"
    os.link(work, twin)
    code, output = run_forked(config)
    assert code == 0, output
    before = server_state(gmail)
    code, output = run_forked(config)
    assert code == 0, output
    assert server_state(gmail) == before
    twin.unlink()
    code, output = run_forked(config)
    assert code == 0, output
    assert "Work" in first.labels and first.place == "all"
    assert work.exists()
    held = [m.body for m in loc.messages(root, "fs", "Work")]
    assert held.count(lf(mail(1))) == 1
    kept = [m for m in gmail.messages.values() if m.body == mail(1) and m.place == "all"]
    assert kept == [first]  # the twin's own message went to Trash with its last file


def gmail_rows(state_dir: Path) -> list[tuple[str, int]]:
    """What the state records of Gmail messages: (mailbox, X-GM-MSGID) per UID."""
    with contextlib.closing(sqlite3.connect(state_dir / "gmail.sqlite")) as db:
        return list(
            db.execute(
                "SELECT m.name, g.msgid FROM gmail_message g JOIN mailbox m ON m.id = g.mailbox"
            )
        )


def test_labels_mode_forgets_the_gmail_ids_of_a_message_gone_everywhere(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    first = gmail.messages[min(gmail.messages)]
    fourth = next(m for m in gmail.messages.values() if m.body == mail(4))
    assert sorted(n for n, msgid in gmail_rows(tmp_path / "state") if msgid == first.msgid) == [
        "INBOX",
        "Travel",
        "Work",
    ]
    for path in copies_of(tmp_path / "Mail", 1).values():
        path.unlink()
    change(gmail, 4, remove="Work")  # a label gone on the server: its UID there too
    code, output = run_forked(config)
    assert code == 0, output
    assert first.place == "trash"
    rows = gmail_rows(tmp_path / "state")
    assert [n for n, msgid in rows if msgid == first.msgid] == []
    assert [n for n, msgid in rows if msgid == fourth.msgid] == [ENGLISH["\\Flagged"]]


def test_labels_mode_a_dry_run_says_link_and_label_where_the_run_would_not_copy(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = labelled
    root = tmp_path / "Mail"
    change(gmail, 2, add="Travel")  # a link here
    os.link(copies_of(root, 4)["Work"], root / "Travel" / "cur" / "1700000000.M3P3.x:2,F")
    before_files = sorted(p.name for p in root.rglob("*"))
    before = server_state(gmail)
    code, output = run_forked(config, "--dry-run")
    assert code == 0, output
    (line,) = [x for x in output.splitlines() if "mailbox.would_sync" in x and "=Travel" in x]
    assert "new_local=1" in line and "linked_local=1" in line, line
    assert "new_remote=1" in line and "labelled_remote=1" in line, line
    assert sorted(p.name for p in root.rglob("*")) == before_files
    assert server_state(gmail) == before
    code, output = run_forked(config)
    assert code == 0, output
    (line,) = [x for x in output.splitlines() if "mailbox.synced" in x and "=Travel" in x]
    assert "linked_local=1" in line and "labelled_remote=1" in line, line
    assert sum(gmail.downloads.values()) == 4 and len(gmail.messages) == 6


def test_labels_mode_all_mail_says_which_labels_a_quick_sync_looks_at(
    labelled: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """One CHANGEDSINCE FETCH on All Mail tells every label change: a sync with nothing
    changed asks nothing else (no label's mailbox, no body), and a label added asks only the
    labels of the message it changed."""
    gmail, config = labelled
    all_mail = ENGLISH["\\All"]
    time.sleep(1.1)  # the Maildir's stamps are taken once no mtime is in the current second
    assert run_forked(config)[0] == 0
    del gmail.fetches[:], gmail.commands[:]
    code, output = run_forked(config)
    assert code == 0, output
    # All Mail's HIGHESTMODSEQ and count as recorded: not even a FETCH, one SELECT.
    assert gmail.fetches == [] and gmail.commands.count("SELECT") == 1, gmail.commands
    change(gmail, 2, add="Travel")
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    assert {box for box, _, _ in gmail.fetches} <= {all_mail, "INBOX", "Travel"}, gmail.fetches
    assert sorted(copies_of(tmp_path / "Mail", 2)) == ["INBOX", "Travel"]
    assert sum(gmail.downloads.values()) == 4
    with gmail.lock:
        gmail.messages[min(gmail.messages)].flags.add("\\Answered")
        gmail.touch(gmail.messages[min(gmail.messages)])
        gmail.refresh()
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    assert gmail.fetches[0][0] == all_mail and gmail.fetches[0][2] == 1
    assert "CHANGEDSINCE" in gmail.fetches[0][1] and "X-GM-LABELS" in gmail.fetches[0][1]
    assert {box for box, _, _ in gmail.fetches} == {all_mail, "INBOX", "Work", "Travel"}
    assert all(p.name.endswith(":2,RS") for p in copies_of(tmp_path / "Mail", 1).values())
