"""Gmail's extension (stores/imap/gmail.py): X-GM-MSGID, X-GM-THRID and X-GM-LABELS read from
what the fake Gmail sends to the project's own client, labels written back with STORE, and
every malformed value refused."""

from __future__ import annotations

import pytest

from fake_gmail import ENGLISH, GmailServer, serve_gmail
from fake_imap import FakeServer, serve
from mailtide.stores.imap import ImapStore
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.gmail import (
    FETCH_ITEMS,
    GmailMessage,
    gmail_message,
    labels_argument,
    with_selected,
)
from mailtide.stores.imap.mailbox import fetch_attributes
from mailtide.stores.imap.parse import ParseError, RawResponse, untagged
from stores.imap.imap_store_helpers import fake_settings

BODY = b"Subject: labels\r\nMessage-ID: <l@example.org>\r\n\r\nbody\r\n"
USER_LABEL = "Entw&APw-rfe/2024"  # Entwürfe/2024, as Gmail sends it: modified UTF-7


async def fetched(client: ImapClient, mailbox: str) -> list[GmailMessage]:
    await client.run("SELECT", f'"{mailbox}"')
    done = await client.run("UID FETCH", "1:*", f"(UID {FETCH_ITEMS})")
    return [gmail_message(fetch_attributes(u)) for u in done.untagged if u.kind == "FETCH"]


async def test_msgid_thread_and_labels_as_gmail_sends_them() -> None:
    with serve_gmail(GmailServer(labels=["Work", USER_LABEL])) as gmail:
        msg = gmail.add(BODY, ["\\Inbox", "Work", USER_LABEL, "\\Important"], ["\\Flagged"])
        client = ImapClient(fake_settings(gmail.port))
        await client.connect()
        try:
            in_work = await fetched(client, "Work")
            in_all = await fetched(client, ENGLISH["\\All"])
        finally:
            await client.close()
    everything = frozenset({"\\Inbox", "Work", "Entwürfe/2024", "\\Important", "\\Starred"})
    (work,) = in_work
    assert (work.msgid, work.thread) == (msg.msgid, msg.thrid) and work.msgid > 1 << 32
    assert work.labels == everything - {"Work"}  # Gmail leaves out the selected label
    assert with_selected(work.labels, "Work") == everything
    assert [m.labels for m in in_all] == [everything]  # All Mail is no label
    assert with_selected(in_all[0].labels, None) == everything


async def test_labels_written_with_store_arrive_as_labels() -> None:
    with serve_gmail(GmailServer()) as gmail:
        msg = gmail.add(BODY, ["\\Inbox"])
        client = ImapClient(fake_settings(gmail.port))
        await client.connect()
        try:
            await client.run("SELECT", "INBOX")
            wanted = {"Entwürfe/2024", 'say "hi"', "\\Starred"}
            await client.run("UID STORE", "1", "+X-GM-LABELS", labels_argument(wanted))
            (after,) = await fetched(client, "INBOX")
        finally:
            await client.close()
    assert msg.labels == {"\\Inbox", USER_LABEL, 'say "hi"'} and "\\Flagged" in msg.flags
    assert after.labels == frozenset(wanted)


async def test_the_store_knows_a_gmail_server_by_its_capability() -> None:
    with serve_gmail(GmailServer()) as gmail, serve(FakeServer({"INBOX": []})) as plain:
        found = []
        for port in (gmail.port, plain.port):
            store = ImapStore(fake_settings(port))
            await store.connect()
            found.append(store.speaks_gmail)
            await store.close()
    assert found == [True, False]


def attributes(line: bytes) -> GmailMessage:
    return gmail_message(fetch_attributes(untagged(RawResponse([line]))))


def test_system_labels_quoted_or_in_any_case_are_spelt_one_way() -> None:
    got = attributes(b'* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS ("\\\\Important" \\inbox Work))')
    assert got == GmailMessage(7, None, frozenset({"\\Important", "\\Inbox", "Work"}))


@pytest.mark.parametrize(
    "line",
    [
        b"* 1 FETCH (X-GM-MSGID 0 X-GM-LABELS ())",
        b"* 1 FETCH (X-GM-MSGID 18446744073709551616 X-GM-LABELS ())",
        b"* 1 FETCH (X-GM-MSGID abc X-GM-LABELS ())",
        b"* 1 FETCH (X-GM-MSGID 7 X-GM-THRID -1 X-GM-LABELS ())",
        b"* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS NIL)",
        b"* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS (Work (nested)))",
        b'* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS (""))',
        b"* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS (&Jjo))",
        b'* 1 FETCH (X-GM-MSGID 7 X-GM-LABELS ("a\tb"))',
        b"* 1 FETCH (X-GM-MSGID 7)",
        b"* 1 FETCH (X-GM-LABELS (Work))",
    ],
    ids=[
        "msgid-zero",
        "msgid-65-bits",
        "msgid-word",
        "thread-negative",
        "labels-nil",
        "labels-nested",
        "label-empty",
        "label-bad-utf7",
        "label-control",
        "no-labels",
        "no-msgid",
    ],
)
def test_malformed_gmail_attributes_are_refused(line: bytes) -> None:
    with pytest.raises(ParseError):
        attributes(line)
