"""The fake Gmail (fake_gmail.py) behaves as Gmail does, seen by a plain IMAP client (imaplib).

Each test asserts what a client sees over the socket, and what the store then holds."""

from __future__ import annotations

import base64
import imaplib
import re
import threading
from collections.abc import Iterator

import pytest

from fake_gmail import ENGLISH, GERMAN, GmailServer, StoredMessage, serve_gmail

ALL = ENGLISH["\\All"]
TRASH = ENGLISH["\\Trash"]
STARRED = ENGLISH["\\Flagged"]


def mail(n: int, extra: str = "") -> bytes:
    return (
        f"From: a@example.org\r\nSubject: message {n}\r\nMessage-ID: <m{n}@example.org>\r\n"
        f"{extra}\r\nbody {n}\r\n"
    ).encode()


def q(name: str) -> str:
    return '"' + name + '"'


@pytest.fixture
def gmail() -> Iterator[GmailServer]:
    with serve_gmail(GmailServer(labels=["Work", "Travel"], password="secret")) as server:
        yield server


def client(server: GmailServer) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    imap.login("me@gmail.com", "secret")
    return imap


def uids(imap: imaplib.IMAP4, mailbox: str) -> list[int]:
    typ, _ = imap.select(q(mailbox))
    assert typ == "OK"
    typ, data = imap.uid("SEARCH", "ALL")
    return [int(n) for n in (data[0] or b"").split()]


def fetch_line(imap: imaplib.IMAP4, uid: int, items: str) -> str:
    typ, data = imap.uid("FETCH", str(uid), items)
    assert typ == "OK" and data[0] is not None
    first = data[0]
    return (first[0] if isinstance(first, tuple) else first).decode()


def labels_of(imap: imaplib.IMAP4, uid: int) -> set[str]:
    line = fetch_line(imap, uid, "(X-GM-LABELS)")
    m = re.search(r"X-GM-LABELS \(([^)]*)\)", line)
    assert m is not None, line
    return {w.strip('"') for w in re.findall(r'"[^"]*"|\S+', m.group(1))}


def msgid_of(imap: imaplib.IMAP4, uid: int) -> int:
    m = re.search(r"X-GM-MSGID (\d+)", fetch_line(imap, uid, "(X-GM-MSGID)"))
    assert m is not None
    return int(m.group(1))


def test_capabilities_are_gmails_without_qresync_or_xlist(gmail: GmailServer) -> None:
    imap = imaplib.IMAP4("127.0.0.1", gmail.port, timeout=10)
    assert "X-GM-EXT-1" in imap.capabilities and "AUTH=XOAUTH2" in imap.capabilities
    imap.login("me@gmail.com", "secret")
    _typ, data = imap.capability()
    caps = set(data[0].decode().split())
    assert {"X-GM-EXT-1", "CONDSTORE", "UIDPLUS", "MOVE", "IDLE", "SPECIAL-USE"} <= caps
    assert not {"QRESYNC", "XLIST", "LIST-STATUS", "NOTIFY"} & caps
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        imap.xatom("XLIST", '""', '"*"')
    imap.logout()


@pytest.mark.parametrize("names", [ENGLISH, GERMAN], ids=["english", "german"])
def test_list_names_the_special_mailboxes_by_their_special_use(names: dict[str, str]) -> None:
    with serve_gmail(GmailServer(names, labels=["Work/2024"])) as server:
        imap = client(server)
        _typ, data = imap.list('""', '"*"')
        listed = {}
        for line in data:
            assert isinstance(line, bytes)
            m = re.fullmatch(rb'\(([^)]*)\) "/" (.*)', line)
            assert m is not None, line
            listed[m.group(2).decode().strip('"')] = set(m.group(1).decode().split())
        for use, name in names.items():
            assert use in listed[name], (name, listed[name])
        parent = names["\\All"].split("/")[0]
        assert "\\Noselect" in listed[parent]
        assert listed["Work"] >= {"\\HasChildren"} and "Work/2024" in listed
        assert "INBOX" in listed
        imap.logout()


def test_a_message_with_three_labels_is_one_message_in_four_mailboxes(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox", "Work", "Travel"])
    imap = client(gmail)
    seen: dict[str, tuple[int, int]] = {}
    for box in ("INBOX", "Work", "Travel", ALL):
        (uid,) = uids(imap, box)
        _typ, data = imap.status(q(box), "(UIDVALIDITY)")
        validity = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))  # type: ignore[union-attr]
        seen[box] = (uid, validity)
        assert msgid_of(imap, uid) == msg.msgid > 2**32
        # Gmail leaves the selected mailbox's own label out of X-GM-LABELS
        expected = {"\\Inbox", "Work", "Travel"} - {"\\Inbox" if box == "INBOX" else box}
        assert labels_of(imap, uid) == expected
    assert len({validity for _, validity in seen.values()}) == 4  # a UIDVALIDITY per mailbox
    imap.logout()


def test_a_reply_joins_the_thread_of_the_message_it_answers(gmail: GmailServer) -> None:
    first = gmail.add(mail(1))
    reply = gmail.add(mail(2, "In-Reply-To: <m1@example.org>\r\n"))
    other = gmail.add(mail(3))
    imap = client(gmail)
    threads = []
    for uid in uids(imap, "INBOX"):
        m = re.search(r"X-GM-THRID (\d+)", fetch_line(imap, uid, "(X-GM-THRID)"))
        assert m is not None
        threads.append(int(m.group(1)))
    assert threads == [first.msgid, first.msgid, other.msgid] and reply.thrid == first.msgid


def test_append_is_always_a_new_message_even_with_the_same_message_id(gmail: GmailServer) -> None:
    imap = client(gmail)
    answers = [imap.append("Work", "(\\Seen)", None, mail(1)) for _ in range(2)]
    for typ, data in answers:
        assert typ == "OK" and b"APPENDUID" in data[0]
    work = gmail.mailbox("Work")
    assert [uid for uid, _ in work] == [1, 2]
    assert work[0][1].msgid != work[1][1].msgid
    assert all(m.labels == {"Work"} and m.flags == {"\\Seen"} for _, m in work)
    assert len(gmail.mailbox(ALL)) == 2 and gmail.mailbox("INBOX") == []
    imap.logout()


def test_append_keeps_the_message_whole_to_its_last_line_end(gmail: GmailServer) -> None:
    imap = client(gmail)
    body = mail(1) + b"last line\r\n\r\n"
    assert imap.append("Work", None, None, body)[0] == "OK"
    ((_, stored),) = gmail.mailbox("Work")
    assert stored.body == body
    imap.logout()


def test_copy_to_a_label_adds_the_label_to_the_same_message(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1))
    imap = client(gmail)
    (uid,) = uids(imap, "INBOX")
    typ, data = imap.uid("COPY", str(uid), "Travel")
    assert typ == "OK"
    ((_travel_uid, copied),) = gmail.mailbox("Travel")
    assert copied is msg and msg.labels == {"\\Inbox", "Travel"}
    assert imap.untagged_responses.get("COPYUID") or b"COPYUID" in data[0]
    assert len(gmail.messages) == 1
    imap.logout()


def test_store_of_labels_adds_creates_and_removes(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1))
    imap = client(gmail)
    (uid,) = uids(imap, "INBOX")
    assert imap.uid("STORE", str(uid), "+X-GM-LABELS", '(Receipts "Big Trips")')[0] == "OK"
    assert msg.labels == {"\\Inbox", "Receipts", "Big Trips"}
    _typ, data = imap.list('""', '"*"')
    assert any(b'"Big Trips"' in line for line in data if isinstance(line, bytes))
    assert imap.uid("STORE", str(uid), "-X-GM-LABELS", "(Receipts \\Inbox)")[0] == "OK"
    assert msg.labels == {"Big Trips"}
    assert gmail.mailbox("INBOX") == [] and [m for _, m in gmail.mailbox(ALL)] == [msg]
    (uid,) = uids(imap, ALL)  # out of INBOX now, so no longer found there
    assert imap.uid("STORE", str(uid), "+X-GM-LABELS", "(\\Starred)")[0] == "OK"
    assert "\\Flagged" in msg.flags and [m for _, m in gmail.mailbox(STARRED)] == [msg]


@pytest.mark.parametrize("auto_expunge", [True, False], ids=["auto-expunge", "expunge"])
def test_expunge_from_a_label_removes_that_label_only(auto_expunge: bool) -> None:
    with serve_gmail(GmailServer(labels=["Work"], auto_expunge=auto_expunge)) as server:
        msg = server.add(mail(1), labels=["\\Inbox", "Work"])
        imap = client(server)
        (uid,) = uids(imap, "Work")
        imap.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        # Gmail's default, "Auto-Expunge on": marked deleted is gone from the label at once
        assert (server.mailbox("Work") == []) is auto_expunge
        assert imap.uid("EXPUNGE", str(uid))[0] == "OK"
        assert server.mailbox("Work") == [] and msg.labels == {"\\Inbox"}
        assert [m for _, m in server.mailbox("INBOX")] == [msg]
        assert [m for _, m in server.mailbox(ALL)] == [msg]
        assert "\\Deleted" not in msg.flags
        imap.logout()


@pytest.mark.parametrize("setting", ["archive", "trash", "delete"])
def test_expunged_from_its_last_label_a_message_follows_the_setting(setting: str) -> None:
    with serve_gmail(GmailServer(labels=["Work"], expunge_last=setting)) as gmail:
        msg = gmail.add(mail(1), ["Work"])
        kept = gmail.add(mail(2), ["Work"])
        imap = client(gmail)
        imap.select("Work")
        imap.uid("STORE", "2", "-X-GM-LABELS", "(Work)")  # a label taken away: no expunge
        imap.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        imap.logout()
        assert kept.place == "all" and kept.labels == set()
        if setting == "delete":
            assert msg.msgid not in gmail.messages
        else:
            assert msg.place == ("all" if setting == "archive" else "trash")


def test_trash_takes_every_label_and_expunge_there_deletes_for_good(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox", "Work", "\\Important"])
    imap = client(gmail)
    (uid,) = uids(imap, "Work")
    assert imap.uid("MOVE", str(uid), q(TRASH))[0] == "OK"
    assert msg.place == "trash" and msg.labels == set()
    for box in ("INBOX", "Work", ALL, ENGLISH["\\Important"]):
        assert gmail.mailbox(box) == [], box
    (trash_uid,) = uids(imap, TRASH)
    imap.uid("STORE", str(trash_uid), "+FLAGS", "(\\Deleted)")
    imap.expunge()
    assert gmail.messages == {} and gmail.mailbox(TRASH) == []
    imap.logout()


def test_expunge_from_all_mail_moves_to_trash(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox", "Travel"])
    imap = client(gmail)
    (uid,) = uids(imap, ALL)
    imap.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
    imap.expunge()
    assert gmail.mailbox(ALL) == [] and [m for _, m in gmail.mailbox(TRASH)] == [msg]
    assert msg.labels == set() and gmail.messages == {msg.msgid: msg}
    imap.logout()


def test_move_between_labels_swaps_the_labels(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox"])
    imap = client(gmail)
    (uid,) = uids(imap, "INBOX")
    typ, _ = imap.uid("MOVE", str(uid), "Work")
    assert typ == "OK" and msg.labels == {"Work"} and len(gmail.messages) == 1
    (uid,) = uids(imap, ALL)
    assert imap.uid("MOVE", str(uid), "Travel")[0] == "OK"  # All Mail keeps it: a label added
    assert msg.labels == {"Work", "Travel"} and msg.place == "all"
    imap.logout()


def test_starred_is_the_flagged_flag_and_flags_are_message_wide(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox", "Work"])
    imap = client(gmail)
    (uid,) = uids(imap, "INBOX")
    imap.uid("STORE", str(uid), "+FLAGS", "(\\Flagged \\Seen)")
    (starred_uid,) = uids(imap, STARRED)
    assert "\\Starred" in labels_of(imap, uids(imap, "Work")[0])
    line = fetch_line(imap, uids(imap, "Work")[0], "(FLAGS)")
    assert "\\Seen" in line and "\\Flagged" in line
    uids(imap, STARRED)
    imap.uid("STORE", str(starred_uid), "+FLAGS", "(\\Deleted)")  # auto-expunged: unstarred
    assert "\\Flagged" not in msg.flags and msg.labels == {"\\Inbox", "Work"}
    imap.logout()


def test_a_body_fetch_without_peek_marks_the_message_seen(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1))
    imap = client(gmail)
    (uid,) = uids(imap, "INBOX")
    imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert "\\Seen" not in msg.flags
    _typ, data = imap.uid("FETCH", str(uid), "(BODY[])")
    assert data[0] is not None and isinstance(data[0], tuple) and data[0][1] == mail(1)
    assert "\\Seen" in msg.flags
    imap.logout()


def test_condstore_reports_label_changes_since_a_modseq(gmail: GmailServer) -> None:
    first, second = gmail.add(mail(1)), gmail.add(mail(2))
    imap = client(gmail)
    imap.xatom("ENABLE", "CONDSTORE")  # imaplib knows only the capabilities before login

    def highest() -> int:
        _typ, data = imap.status("INBOX", "(HIGHESTMODSEQ)")
        return int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))  # type: ignore[union-attr]

    before = highest()
    uids(imap, "INBOX")
    imap.uid("STORE", "2", "+X-GM-LABELS", "(Work)")
    assert highest() > before
    _typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)", f"(CHANGEDSINCE {before})")
    lines = [d for d in data if isinstance(d, bytes)]
    assert len(lines) == 1 and b"UID 2 " in lines[0] and b"MODSEQ" in lines[0]
    assert second.labels == {"\\Inbox", "Work"} and first.labels == {"\\Inbox"}
    imap.logout()


def test_other_sessions_learn_of_changes_at_their_next_command(gmail: GmailServer) -> None:
    gmail.add(mail(1), labels=["\\Inbox", "Work"])
    watcher, actor = client(gmail), client(gmail)
    uids(watcher, "Work")
    (uid,) = uids(actor, "Work")
    actor.uid("STORE", str(uid), "-X-GM-LABELS", "(Work)")
    actor.append("Work", None, None, mail(2))
    watcher.untagged_responses.clear()
    watcher.noop()
    assert watcher.untagged_responses.get("EXPUNGE") == [b"1"]
    assert watcher.untagged_responses.get("EXISTS") == [b"1"]
    watcher.logout()
    actor.logout()


def test_idle_tells_of_new_mail_at_once(gmail: GmailServer) -> None:
    imap = client(gmail)
    uids(imap, "INBOX")
    tag = imap._new_tag().decode()  # imaplib has no IDLE before 3.14: speak it by hand
    imap.send(f"{tag} IDLE\r\n".encode())
    assert imap.readline().startswith(b"+")
    threading.Timer(0.2, lambda: gmail.add(mail(1))).start()
    assert imap.readline() == b"* 1 EXISTS\r\n"
    imap.send(b"DONE\r\n")
    assert imap.readline().startswith(tag.encode() + b" OK")
    imap.logout()


@pytest.mark.parametrize(
    ("token", "ok"), [("good-token", True), ("stale-token", False)], ids=["good", "refused"]
)
def test_xoauth2_takes_the_token(token: str, ok: bool) -> None:
    with serve_gmail(GmailServer(token="good-token")) as server:
        imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
        blob = f"user=me@gmail.com\x01auth=Bearer {token}\x01\x01".encode()
        if ok:
            assert imap.authenticate("XOAUTH2", lambda _: blob)[0] == "OK"
            assert imap.select("INBOX")[0] == "OK"
        else:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.authenticate("XOAUTH2", lambda _: blob)
        assert base64.b64encode(blob)  # the form imaplib sent


def test_the_store_holds_what_the_model_says(gmail: GmailServer) -> None:
    """The helpers tests read the fake through: one message, its mailboxes and labels."""
    msg = gmail.add(mail(1), labels=["\\Inbox", "Work"], flags=["\\Seen"])
    assert isinstance(msg, StoredMessage)
    assert [name for name in gmail.boxes if any(m is msg for _, m in gmail.mailbox(name))] == [
        "INBOX",
        ALL,
        "Work",
    ]


def test_search_finds_a_message_by_its_gmail_id(gmail: GmailServer) -> None:
    gmail.add(mail(1), labels=["Work"])
    second = gmail.add(mail(2), labels=["\\Inbox", "Work"])
    imap = client(gmail)
    uids(imap, "Work")
    typ, data = imap.uid("SEARCH", "X-GM-MSGID", str(second.msgid))
    assert typ == "OK" and data == [b"2"]
    typ, data = imap.uid("SEARCH", "X-GM-THRID", str(second.thrid))
    assert data == [b"2"]
    imap.logout()


def test_the_trash_label_moves_to_trash_and_taking_it_away_restores(gmail: GmailServer) -> None:
    msg = gmail.add(mail(1), labels=["\\Inbox", "Work"])
    imap = client(gmail)
    (uid,) = uids(imap, "Work")
    imap.uid("STORE", str(uid), "+X-GM-LABELS", "(\\Trash)")
    assert msg.place == "trash" and msg.labels == set() and gmail.mailbox("Work") == []
    (uid,) = uids(imap, TRASH)
    imap.uid("STORE", str(uid), "-X-GM-LABELS", "(\\Trash)")
    assert msg.place == "all" and [m for _, m in gmail.mailbox(ALL)] == [msg]
    imap.logout()
