"""Special-use folders (RFC 6154): LIST gives each folder its use, and a repository that leaves
some out (Gmail's All Mail, Spam, Trash) does so by the use, in any language, unless the
folder is named whole; the daemon's poll leaves them out too.  Against the fake Gmail."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from fake_gmail import ENGLISH, GERMAN, GmailServer, serve_gmail
from mailtide.core.folder_filter import FolderFilter
from mailtide.stores.base import UnsafeFolderName
from mailtide.stores.imap import ImapStore
from mailtide.stores.imap.push import PushSettings, StatusPoll, connector
from mailtide.stores.imap.special_use import LeftOut, special_use_of
from push_helpers import Reports, names, running
from stores.imap.imap_store_helpers import fake_settings

GMAIL_LEFT_OUT = frozenset({"\\All", "\\Junk", "\\Trash"})


def test_special_use_is_found_in_any_case_among_other_attributes() -> None:
    assert special_use_of(["\\HasNoChildren", "\\trash"]) == "\\Trash"
    assert special_use_of(["\\Noselect", "\\HasChildren"]) is None


@pytest.mark.parametrize("names_", [ENGLISH, GERMAN], ids=["english", "german"])
async def test_list_gives_each_folder_its_special_use(names_: dict[str, str]) -> None:
    with serve_gmail(GmailServer(names_, labels=["Work"])) as gmail:
        store = ImapStore(fake_settings(gmail.port))
        try:
            await store.connect()
            listed = {f.name: f.special_use for f in await store.list_folders()}
        finally:
            await store.close()
    assert listed["INBOX"] is None and listed["Work"] is None
    for use, name in names_.items():
        assert listed[name.replace("&APw-", "ü")] == use


@pytest.mark.parametrize("names_", [ENGLISH, GERMAN], ids=["english", "german"])
async def test_left_out_uses_are_not_listed_whatever_their_names(names_: dict[str, str]) -> None:
    left_out = LeftOut(GMAIL_LEFT_OUT)
    with serve_gmail(GmailServer(names_, labels=["Work"])) as gmail:
        store = ImapStore(replace(fake_settings(gmail.port), left_out=left_out))
        try:
            await store.connect()
            listed = {f.name for f in await store.list_folders()}
            with pytest.raises(UnsafeFolderName, match=r"\\All folder, which this repository"):
                store.check_name(names_["\\All"])  # exists unlisted: never created again
        finally:
            await store.close()
    kept = {"\\Sent", "\\Flagged", "\\Important"}
    assert {"INBOX", "Work"} | {names_[use] for use in kept} <= listed
    assert not {names_[use] for use in GMAIL_LEFT_OUT} & listed


async def test_a_left_out_folder_named_whole_is_listed() -> None:
    left_out = LeftOut(GMAIL_LEFT_OUT, named=FolderFilter(include=("[[]Gmail]/Trash",)))
    with serve_gmail(GmailServer()) as gmail:
        store = ImapStore(replace(fake_settings(gmail.port), left_out=left_out))
        try:
            await store.connect()
            listed = {f.name for f in await store.list_folders()}
        finally:
            await store.close()
    assert ENGLISH["\\Trash"] in listed
    assert ENGLISH["\\All"] not in listed and ENGLISH["\\Junk"] not in listed


async def test_the_poll_does_not_report_left_out_folders() -> None:
    """New mail in a label also changes All Mail; only the label is reported."""
    with serve_gmail(GmailServer(labels=["Work"])) as gmail:
        settings = replace(fake_settings(gmail.port), left_out=LeftOut(GMAIL_LEFT_OUT))
        reports = Reports()
        source = StatusPoll(connector(settings), PushSettings(poll=0.2))
        async with running(source.run(reports)):
            await asyncio.sleep(0.5)  # the first round only records
            await asyncio.to_thread(gmail.add, b"Subject: x\r\n\r\nx\r\n", ["Work"])
            await reports.next(5, names("Work"))
            await asyncio.sleep(0.5)
        reported = set().union(*(m for _, m in reports.seen if m is not None))
        assert reported == {"Work"}
