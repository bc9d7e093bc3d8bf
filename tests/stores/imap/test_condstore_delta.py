"""What changed in a mailbox since an earlier status, on a server with CONDSTORE and without
QRESYNC (as Gmail): the changed messages by CHANGEDSINCE, the expunged ones only when the
count says some went.  Against Dovecot with QRESYNC taken out of its capabilities."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import imap_helpers as srv
from dovecot import CAPABILITIES_WITHOUT_EXTENSIONS, Dovecot, ImapAccount, private_dovecot
from mailtide.stores.base import MailboxStatus
from mailtide.stores.imap import ImapStore
from mailtide.stores.imap.mailbox import gaps
from stores.imap.imap_store_helpers import settings

CONDSTORE_ONLY = CAPABILITIES_WITHOUT_EXTENSIONS + " CONDSTORE UIDPLUS"


@pytest.fixture(scope="module")
def condstore_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot(capability_override=CONDSTORE_ONLY)


@pytest.fixture
def account(condstore_dovecot: Dovecot, tmp_path: object) -> ImapAccount:
    return condstore_dovecot.account(f"delta-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**8}")


async def status_and_delta(
    account: ImapAccount, since: MailboxStatus | None
) -> tuple[MailboxStatus, set[str], set[str]]:
    """INBOX's status now, and (when ``since``) the ids changed and the ids of 1..20 gone."""
    store = ImapStore(settings(account))
    await store.connect()
    try:
        await store.list_folders()
        box = await store.open("INBOX")
        status = await box.status()
        delta = await box.changes_since(since) if since is not None else None
        await box.close()
    finally:
        await store.close()
    if since is None:
        return status, set(), set()
    assert delta is not None
    gone = {str(i) for i in range(1, 21) if delta.gone(str(i))}
    return status, {m.id for m in delta.changed}, gone


@pytest.mark.parametrize("expunged", [False, True], ids=["no-expunge", "expunges"])
async def test_changes_since_without_qresync(account: ImapAccount, expunged: bool) -> None:
    for i in range(6):
        srv.append(account, "INBOX", srv.make_message(i, "INBOX"))
    since, _, _ = await status_and_delta(account, None)
    srv.set_flags(account, "INBOX", srv.message_id(2, "INBOX"), ["\\Flagged"])
    srv.append(account, "INBOX", srv.make_message(7, "INBOX"))
    if expunged:
        for i in (0, 4):
            srv.expunge(account, "INBOX", srv.message_id(i, "INBOX"))
    _, changed, gone = await status_and_delta(account, since)
    uid = {m.message_id: str(m.uid) for m in srv.fetch_all(account, "INBOX")}
    assert changed == {uid[srv.message_id(2, "INBOX")], uid[srv.message_id(7, "INBOX")]}
    assert gone == ({"1", "5"} if expunged else set())


def test_gaps_are_what_left_below_the_old_uidnext() -> None:
    assert gaps([2, 3, 6, 9], 7) == [(1, 1), (4, 5), (7, 7)]
    assert gaps([], 3) == [(1, 3)]
    assert gaps([1, 2, 3], 3) == []
