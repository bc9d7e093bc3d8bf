"""``mailtide daemon`` on a Gmail account in the labels mode, against the fake Gmail (IDLE, no
NOTIFY): a label added on the server reaches the Maildir without a signal, through the poll
(the label's mailbox is not IDLEd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import maildir_helpers as loc
from daemon_helpers import Daemon, eventually, settled
from fake_gmail import ENGLISH, GmailServer, serve_gmail
from gmail_helpers import TOKEN, change, copies_of, fill, lf, mail, write_config

FAST = 'poll = "10s"\nautorefresh = 0\nidle_folders = ["INBOX"]\n'


@pytest.fixture
def gmail() -> Iterator[GmailServer]:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], token=TOKEN)) as server:
        fill(server)
        yield server


def start(tmp_path: Path, port: int, labels: str) -> Daemon:
    config = write_config(tmp_path, port, labels)
    config.write_text(config.read_text().replace("[account.gmail]\n", "[account.gmail]\n" + FAST))
    daemon = Daemon(config)
    eventually(lambda: "event=account.done" in daemon.output, 30, "first sync", daemon)
    settled(daemon)
    return daemon


def test_labels_as_folders_a_label_added_on_the_server_is_linked_by_the_daemon(
    gmail: GmailServer, tmp_path: Path
) -> None:
    daemon = start(tmp_path, gmail.port, "gmail_labels = true\n")
    try:
        root = tmp_path / "Mail"
        change(gmail, 2, add="Travel")
        eventually(lambda: "Travel" in copies_of(root, 2), 30, "the label by the poll", daemon)
        now = copies_of(root, 2)
        assert len({p.stat().st_ino for p in now.values()}) == 1  # a link, not a download
        assert gmail.downloads[next(iter(gmail.downloads))] == 1
        assert sum(gmail.downloads.values()) == 4
    finally:
        daemon.close()


def test_labels_as_keywords_a_label_added_on_the_server_reaches_the_keyword(
    gmail: GmailServer, tmp_path: Path
) -> None:
    daemon = start(tmp_path, gmail.port, 'gmail_labels = true\ngmail_labels_as = "keywords"\n')
    all_mail = ENGLISH["\\All"]
    root = tmp_path / "Mail"

    def keywords_of_second() -> set[str]:
        names = loc.keyword_names(root, "fs", all_mail)
        (m,) = [m for m in loc.messages(root, "fs", all_mail) if m.body == lf(mail(2))]
        return {names.get(c, "?") for c in m.letters if c.islower()}

    try:
        assert keywords_of_second() == {"Inbox"}
        change(gmail, 2, add="Travel")
        eventually(lambda: "Travel" in keywords_of_second(), 30, "the label by the poll", daemon)
        assert sum(gmail.downloads.values()) == 4
        assert "level=error" not in daemon.output, daemon.output[-3000:]
    finally:
        daemon.close()
