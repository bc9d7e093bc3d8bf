"""A message another session expunges while we read it: in that window Dovecot answers our
FETCH with its flags and a NIL body (seen in the soak: `* 25 FETCH (UID 44 FLAGS (\\Deleted)
... RFC822.SIZE 0 BODY[] NIL)`).  It went while we read, as if before we listed: it is left
out quietly (the next listing says it is gone), never a failed mailbox; a message the server
still holds after a NOOP is never taken for gone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog

import imap_helpers as srv
import mailtide.stores.imap.mailbox as imap_mailbox
from dovecot import ImapAccount
from mailtide.stores.base import MailboxError
from mailtide.stores.imap import ImapStore
from stores.imap.imap_store_helpers import settings


def nil_body_for(uid: int, meanwhile: Callable[[], None]) -> Callable[[object], dict[str, object]]:
    """``fetch_attributes`` as in that window: the body of ``uid`` NIL, after ``meanwhile``."""
    real = imap_mailbox.fetch_attributes

    def parsed(u: object) -> dict[str, object]:
        attrs: dict[str, object] = real(u)  # type: ignore[arg-type]
        body = {"BODY[]", "BODY[HEADER]"} & set(attrs)
        if body and attrs.get("UID") in (str(uid), uid, str(uid).encode()):
            meanwhile()
            for key in body:
                attrs[key] = None
        return attrs

    return parsed


async def read(
    account: ImapAccount, monkeypatch: pytest.MonkeyPatch, expunge: bool, identify_first: bool
) -> tuple[object, object]:
    for i in range(3):
        srv.append(account, "INBOX", srv.make_message(i, "INBOX"))
    store = ImapStore(settings(account))
    await store.connect()
    try:
        await store.list_folders()
        box = await store.open("INBOX")
        await box.select()
        ids = sorted(m.id for m in await box.snapshot())
        gone = srv.message_id(1, "INBOX")  # UID 2

        def other_session() -> None:
            if expunge and gone in {m.message_id for m in srv.fetch_all(account, "INBOX")}:
                srv.expunge(account, "INBOX", gone)

        monkeypatch.setattr(imap_mailbox, "fetch_attributes", nil_body_for(2, other_session))

        async def fetch() -> object:
            try:
                return [f.id async for f in box.fetch(ids)]
            except MailboxError as exc:
                return exc

        async def identify() -> object:
            try:
                return sorted(await box.identify(ids))
            except MailboxError as exc:
                return exc

        if identify_first:
            identified, fetched = await identify(), await fetch()
        else:
            fetched, identified = await fetch(), await identify()
        await box.close()
    finally:
        await store.close()
    return fetched, identified


@pytest.mark.parametrize("identify_first", [False, True], ids=["fetch", "identify"])
async def test_a_message_expunged_while_we_read_it_is_left_out(
    imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch, identify_first: bool
) -> None:
    with structlog.testing.capture_logs() as logs:
        fetched, identified = await read(imap_account, monkeypatch, True, identify_first)
    assert fetched == ["1", "3"]
    assert identified == ["1", "3"]
    assert [e["count"] for e in logs if e["event"] == "imap.gone_while_read"] == [1]


async def test_a_nil_body_of_a_message_the_server_still_holds_fails_the_mailbox(
    imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched, identified = await read(imap_account, monkeypatch, False, False)
    assert isinstance(fetched, MailboxError) and "NIL" in str(fetched), fetched
    assert isinstance(identified, MailboxError) and "NIL" in str(identified), identified
