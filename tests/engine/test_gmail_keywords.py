"""``gmail_labels_as = "keywords"``: All Mail synced into one local folder, each message once,
its Gmail labels as keywords (Dovecot's keyword letters), both ways; against the fake Gmail of
tests/fake_gmail.py over a socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import maildir_helpers as loc
from engine_helpers import run_forked
from fake_gmail import ENGLISH, GERMAN, GmailServer, StoredMessage, serve_gmail
from gmail_helpers import (
    TOKEN,
    change,
    fill,
    interrupted,
    lf,
    mail,
    server_state,
    write_config,
)

KEYWORDS = 'gmail_labels = true\ngmail_labels_as = "keywords"\n'
ALL_MAIL = ENGLISH["\\All"]


def labels_here(root: Path, n: int) -> frozenset[str]:
    """The keywords of message ``n``'s one file in the All Mail folder (system flags left
    out)."""
    (found,) = [m for m in loc.messages(root, "fs", ALL_MAIL) if m.body == lf(mail(n))]
    names = loc.keyword_names(root, "fs", ALL_MAIL)
    return frozenset(names[c] for c in found.letters if c.islower())


def add_keyword(root: Path, n: int, keyword: str) -> None:
    """As a client would: a new keyword's letter in the table, and on message ``n``'s name."""
    table = root / ALL_MAIL / "dovecot-keywords"
    names = loc.keyword_names(root, "fs", ALL_MAIL)
    letter = next((c for c, k in names.items() if k == keyword), None)
    if letter is None:
        letter = chr(ord("a") + len(names))
        with table.open("a") as f:
            f.write(f"{len(names)} {keyword}\n")
    (found,) = [m for m in loc.messages(root, "fs", ALL_MAIL) if m.body == lf(mail(n))]
    loc.set_letters(found, found.letters + letter)


def drop_keyword(root: Path, n: int, keyword: str) -> None:
    letter = loc.letter_of_keyword(root, "fs", ALL_MAIL, keyword)
    (found,) = [m for m in loc.messages(root, "fs", ALL_MAIL) if m.body == lf(mail(n))]
    loc.set_letters(found, found.letters.replace(letter, ""))


def message(gmail: GmailServer, n: int) -> StoredMessage:
    return next(m for m in gmail.messages.values() if m.body == mail(n))


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[tuple[GmailServer, Path]]:
    """The fake Gmail filled, and a first sync with labels as keywords: (server, config)."""
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as gmail:
        fill(gmail)
        gmail.create_label("Project Alpha")
        change(gmail, 2, add="Project Alpha")
        config = write_config(tmp_path, gmail.port, KEYWORDS)
        code, output = run_forked(config)
        assert code == 0, output
        yield gmail, config


def test_all_mail_is_the_one_folder_and_each_message_is_there_once_with_its_labels(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = synced
    root = tmp_path / "Mail"
    assert loc.folders(root, "fs") == [ALL_MAIL]
    held = sorted(m.body for m in loc.messages(root, "fs", ALL_MAIL))
    assert held == sorted(lf(mail(n)) for n in (1, 2, 3, 4))  # Trash and Spam stay out
    assert all(n == 1 for n in gmail.downloads.values()), gmail.downloads
    assert labels_here(root, 1) == {"Inbox", "Work", "Travel"}
    assert labels_here(root, 2) == {"Inbox", "Project&ACA-Alpha"}
    assert labels_here(root, 3) == {"Sent"}
    (starred,) = [m for m in loc.messages(root, "fs", ALL_MAIL) if m.body == lf(mail(4))]
    assert "F" in starred.letters and labels_here(root, 4) == {"Work"}  # the star is F

    before = server_state(gmail)
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    assert "new_local=0" in output.split("account.done")[-1]
    assert server_state(gmail) == before
    # Nothing changed: no body, and of All Mail only what changed since the last sync.
    assert [(box, answered) for box, _, answered in gmail.fetches] == [(ALL_MAIL, 0)]
    assert "CHANGEDSINCE" in gmail.fetches[0][1] and "X-GM-LABELS" in gmail.fetches[0][1]


def test_a_label_added_and_removed_on_the_server_shows_here(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = synced
    root = tmp_path / "Mail"
    change(gmail, 2, add="Travel")
    change(gmail, 1, remove="Work")
    del gmail.fetches[:]
    code, output = run_forked(config)
    assert code == 0, output
    assert labels_here(root, 2) == {"Inbox", "Project&ACA-Alpha", "Travel"}
    assert labels_here(root, 1) == {"Inbox", "Travel"}
    assert sum(gmail.downloads.values()) == 4  # no body again
    assert [(box, answered) for box, _, answered in gmail.fetches] == [(ALL_MAIL, 2)]


def test_a_keyword_added_and_removed_here_is_a_label_on_the_server(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = synced
    root = tmp_path / "Mail"
    add_keyword(root, 3, "Travel")
    add_keyword(root, 3, "Receipts&ACA-2024")
    drop_keyword(root, 1, "Inbox")
    code, output = run_forked(config)
    assert code == 0, output
    third, first = message(gmail, 3), message(gmail, 1)
    assert third.labels == {"\\Sent", "Travel", "Receipts 2024"}
    assert first.labels == {"Work", "Travel"}
    assert len(gmail.messages) == 6 and sum(gmail.downloads.values()) == 4
    again, output = run_forked(config)
    assert again == 0, output
    assert labels_here(root, 3) == {"Sent", "Travel", "Receipts&ACA-2024"}


def test_deleting_the_file_moves_the_message_to_trash_never_out_of_gmail(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = synced
    root = tmp_path / "Mail"
    (found,) = [m for m in loc.messages(root, "fs", ALL_MAIL) if m.body == lf(mail(2))]
    found.path.unlink()
    code, output = run_forked(config)
    assert code == 0, output
    second = message(gmail, 2)
    assert second.place == "trash" and len(gmail.messages) == 6
    with gmail.lock:
        gone = gmail.add(mail(7), ["Work"])
    code, output = run_forked(config)
    assert code == 0, output
    assert labels_here(root, 7) == {"Work"}
    with gmail.lock:
        gmail.label(gone, "\\Trash")  # trashed on the server: the file goes
        gmail.touch(gone)
        gmail.refresh()
    code, output = run_forked(config)
    assert code == 0, output
    assert lf(mail(7)) not in [m.body for m in loc.messages(root, "fs", ALL_MAIL)]


def test_a_new_local_message_is_uploaded_once_with_its_labels(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    gmail, config = synced
    root = tmp_path / "Mail"
    path = loc.deliver(root, "fs", ALL_MAIL, lf(mail(8)))
    path.rename(path.parent.parent / "cur" / (path.name + ":2,S"))
    add_keyword(root, 8, "Work")
    code, output = run_forked(config)
    assert code == 0, output
    (added,) = [m for m in gmail.messages.values() if m.body == mail(8)]
    assert added.labels == {"Work"} and added.flags == {"\\Seen"}
    assert len(gmail.messages) == 7


def test_a_local_folder_beside_all_mail_stays_local_and_is_no_label(
    synced: tuple[GmailServer, Path], tmp_path: Path
) -> None:
    """Labels are keywords here, not folders: a folder made locally is left alone, never
    created on the server as a label, and never reported gone from the server."""
    gmail, config = synced
    root = tmp_path / "Mail"
    loc.deliver(root, "fs", "Local/Stuff", lf(mail(9)))
    boxes = sorted(gmail.boxes)
    for _ in range(2):
        code, output = run_forked(config)
        assert code == 0, output
    assert sorted(gmail.boxes) == boxes and len(gmail.messages) == 6
    assert [m.body for m in loc.messages(root, "fs", "Local/Stuff")] == [lf(mail(9))]


def test_a_german_account_keeps_its_all_mail_and_labels(tmp_path: Path) -> None:
    with serve_gmail(GmailServer(GERMAN, labels=["Arbeit"], token=TOKEN)) as gmail:
        gmail.add(mail(1), ["\\Inbox", "Arbeit", "\\Important"])
        config = write_config(tmp_path, gmail.port, KEYWORDS)
        code, output = run_forked(config)
        assert code == 0, output
    root = tmp_path / "Mail"
    all_mail = GERMAN["\\All"]
    assert loc.folders(root, "fs") == [all_mail]
    names = loc.keyword_names(root, "fs", all_mail)
    (only,) = loc.messages(root, "fs", all_mail)
    assert {names[c] for c in only.letters if c.islower()} == {"Inbox", "Arbeit", "Important"}


def test_labels_changed_both_ways_killed_after_a_durable_step_converge(tmp_path: Path) -> None:
    def prepare(gmail: GmailServer, config: Path) -> None:
        code, output = run_forked(config)
        assert code == 0, output
        root = config.parent / "Mail"
        add_keyword(root, 3, "Travel")
        drop_keyword(root, 1, "Inbox")
        change(gmail, 2, add="Work")
        loc.deliver(root, "fs", ALL_MAIL, lf(mail(8)), letters="S")
        add_keyword(root, 8, "Work")

    def check(gmail: GmailServer, root: Path) -> None:
        assert message(gmail, 3).labels == {"\\Sent", "Travel"}
        assert message(gmail, 1).labels == {"Work", "Travel"}
        assert message(gmail, 8).labels == {"Work"}
        assert len(gmail.messages) == 7
        assert labels_here(root, 2) == {"Inbox", "Work"}
        assert labels_here(root, 8) == {"Work"}

    interrupted(tmp_path, prepare, check, KEYWORDS)
