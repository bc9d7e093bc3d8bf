"""What the quiet check compares of an IMAP session (stores/imap/seen.py): the answers as read,
each byte kept, the order of folders and LIST's marks left out."""

from __future__ import annotations

from mailtide.stores.imap.seen import answers, enable_wanted, kind_of, response_bytes, unmarked

CAPS = ["IMAP4REV1", "LIST-STATUS", "QRESYNC"]


def test_a_literal_is_kept_with_the_line_that_announced_it() -> None:
    lines = [b'* LIST () "/" {5}', b""]
    assert response_bytes(lines, [bytearray(b"Box\r\n")]) == b'* LIST () "/" {5}\r\nBox\r\n\r\n'


def test_a_literal_kept_on_disk_cannot_be_compared() -> None:
    assert response_bytes([b"* 1 FETCH (BODY[] {9}", b")"], [object()]) is None


def test_the_order_of_folders_does_not_count_but_every_byte_of_a_status_does() -> None:
    a = b"* STATUS INBOX (UIDNEXT 5 HIGHESTMODSEQ 7)\r\n"
    b = b"* STATUS Archive (UIDNEXT 2 HIGHESTMODSEQ 3)\r\n"
    assert answers(CAPS, [], [], [a, b]) == answers(reversed(CAPS), [], [], [b, a])
    changed = b"* STATUS INBOX (UIDNEXT 5 HIGHESTMODSEQ 8)\r\n"
    assert answers(CAPS, [], [], [a, b]) != answers(CAPS, [], [], [changed, b])
    assert answers(CAPS, [], [], [a]) != answers(CAPS, ["QRESYNC"], [], [a])
    assert answers(CAPS, [], [], [a]) != answers(CAPS, [], [b"* NAMESPACE NIL NIL NIL\r\n"], [a])


def test_the_marks_another_client_changes_by_selecting_do_not_count() -> None:
    marked = b'* LIST (\\Marked \\HasNoChildren) "/" INBOX\r\n'
    unmarked_answer = b'* LIST (\\UnMarked \\HasNoChildren) "/" INBOX\r\n'
    assert (
        unmarked(marked) == unmarked(unmarked_answer) == b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    )
    assert unmarked(b'* list (\\unmarked) "/" INBOX\r\n') == b'* list () "/" INBOX\r\n'
    status = b"* STATUS INBOX (\\Marked)\r\n"
    assert unmarked(status) == status
    noselect = b'* LIST (\\Noselect \\Marked) "/" Old\r\n'
    assert unmarked(noselect) == b'* LIST (\\Noselect) "/" Old\r\n'


def test_kinds_and_what_a_session_enables() -> None:
    assert kind_of(b"* STATUS INBOX ()") == "STATUS"
    assert kind_of(b"* 3 EXISTS") == ""
    assert kind_of(b"+ go on") == ""
    assert enable_wanted(frozenset({"ENABLE", "QRESYNC", "CONDSTORE"})) == "QRESYNC"
    assert enable_wanted(frozenset({"ENABLE", "CONDSTORE"})) == "CONDSTORE"
    assert enable_wanted(frozenset({"QRESYNC"})) is None
