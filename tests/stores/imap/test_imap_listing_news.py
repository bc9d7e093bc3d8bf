"""A listing must answer for every message the server counts (else a message left out reads
as expunged); the count follows the server's news since SELECT: EXISTS, EXPUNGE (plain
IMAP) and VANISHED (QRESYNC).  Against Dovecot with and without its extensions."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import imap_helpers as srv
from dovecot import CAPABILITIES_WITHOUT_EXTENSIONS, Dovecot, ImapAccount, private_dovecot
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings


@pytest.fixture(scope="module")
def plain_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot(capability_override=CAPABILITIES_WITHOUT_EXTENSIONS)


@pytest.fixture(params=["qresync", "plain"])
def account(
    request: pytest.FixtureRequest, imap_account: ImapAccount, tmp_path: object
) -> ImapAccount:
    if request.param == "qresync":
        return imap_account
    server: Dovecot = request.getfixturevalue("plain_dovecot")
    return server.account(f"news-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**8}")


@pytest.mark.parametrize("new_mail", [False, True], ids=["expunges", "expunges and new mail"])
async def test_listing_after_news_in_the_same_session(account: ImapAccount, new_mail: bool) -> None:
    for i in range(6):
        srv.append(account, "INBOX", srv.make_message(i, "INBOX"))
    store = ImapStore(settings(account))
    await store.connect()
    try:
        await store.list_folders()
        box = await store.open("INBOX")
        await box.select()  # from here on, other clients' changes come to us as news
        for i in (1, 4):
            srv.expunge(account, "INBOX", srv.message_id(i, "INBOX"))
        if new_mail:
            srv.append(account, "INBOX", srv.make_message(9, "INBOX"))
        listed = await box.snapshot()
        await box.close()
    finally:
        await store.close()
    on_server = srv.fetch_all(account, "INBOX")
    assert sorted(int(m.id) for m in listed) == sorted(m.uid for m in on_server)
    assert len(listed) == 4 + new_mail
