"""Gmail's All Mail as the labels' source of truth (labels as folders): which label pairs a
quick sync needs to look at.

Every message is in All Mail, and Gmail counts a label added or taken away as a change of the
message (its MODSEQ).  So one ``UID FETCH 1:* (X-GM-MSGID X-GM-LABELS FLAGS) (CHANGEDSINCE m)``
on All Mail tells every server change since the last sync: a message new, a flag, a label.
The label pairs to sync are then those of the changed messages' labels now, those they were
recorded in (a label taken away), and those whose local folder changed (its stamp, no server
round trip); the others are left alone, their server mailboxes not even selected.  A sync
with no change costs one SELECT and one FETCH, not one per label.

Where All Mail cannot tell, every pair is synced, as before: the first run (no mark), a
full sync, All Mail's UIDVALIDITY changed, and a message gone from All Mail (Trash, Spam, a
deletion: without QRESYNC only the count says something went, not which).  The mark is taken
before the pairs sync and recorded only when every pair synced, so a change made by another
client during the run is seen by the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import structlog

from mailtide.core.model import Side
from mailtide.engine.folders import FolderTree
from mailtide.state.db import Cursor
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import Mailbox, MailboxError, MailboxStatus, Store, StoreError
from mailtide.stores.imap.gmail import GmailMessage, label_of_mailbox

log = structlog.get_logger(__name__)

ALL = "\\All"


@runtime_checkable
class GmailStore(Protocol):
    """A store that knows its folders' special uses (stores/imap/store.py)."""

    def special_uses(self) -> dict[str, str]: ...


@runtime_checkable
class ChangesMailbox(Protocol):
    async def gmail_changes(self, since: int) -> dict[str, GmailMessage]: ...


class AllMailChanges:
    """One run's look at All Mail (``stores`` by Side, the server FAR)."""

    def __init__(self, stores: tuple[Store, Store], state: OffLoopState, tree: FolderTree) -> None:
        self.stores = stores
        self.state = state
        self.tree = tree
        self.mark: Cursor | None = None  # All Mail now, recorded by ``done``

    async def pairs(self, names: Sequence[str], quick: bool) -> list[str]:
        """Of the label pairs ``names``, those this sync must sync (in order): all of them
        unless ``quick``; the All Mail mark is taken either way."""
        server = self.stores[Side.FAR]
        if not isinstance(server, GmailStore):
            return list(names)
        uses = server.special_uses()
        all_mail = min((n for n, use in uses.items() if use == ALL), default=None)
        if all_mail is None:
            return list(names)
        try:
            changed = await self._changed(server, all_mail)
        except (MailboxError, StoreError) as exc:
            log.warning("gmail.all_mail_unread", error=str(exc))
            return list(names)
        if changed is None or not quick:
            return list(names)
        wanted = self._labels_of(names, changed, uses) | await self.state.gmail_mailboxes(
            m.msgid for m in changed.values()
        )
        out = [n for n in names if n in wanted or await self._local_changed(n)]
        log.debug("gmail.all_mail_changes", changed=len(changed), pairs=len(out), of=len(names))
        return out

    async def _changed(self, server: Store, all_mail: str) -> dict[str, GmailMessage] | None:
        """All Mail's changed messages since the recorded mark (None: it cannot tell)."""
        box: Mailbox = await server.open(all_mail)
        try:
            status = await box.status()
            self.mark = _mark(status)
            before = await self.state.gmail_all_mail()
            if (
                self.mark is None
                or before is None
                or before.validity != status.validity
                or before.modseq is None
                or before.uidnext is None
                or not isinstance(box, ChangesMailbox)
            ):
                return None
            if before.modseq == status.highestmodseq and before.count == status.count:
                return {}
            changed = await box.gmail_changes(before.modseq)
        finally:
            await box.close()
        new = sum(1 for uid in changed if int(uid) >= before.uidnext)
        if status.count != (before.count or 0) + new:
            return None  # a message left All Mail: which one, only a full look tells
        return changed

    @staticmethod
    def _labels_of(
        names: Sequence[str], changed: Mapping[str, GmailMessage], uses: Mapping[str, str]
    ) -> set[str]:
        """Of the pairs ``names``, those showing the changed messages' labels now."""
        by_label = {
            label: name
            for name in names
            if (label := label_of_mailbox(name, uses.get(name))) is not None
        }
        out: set[str] = set()
        for message in changed.values():
            out.update(by_label[label] for label in message.labels if label in by_label)
        return out

    async def _local_changed(self, name: str) -> bool:
        """Whether the local folder of pair ``name`` may have changed since it was last synced
        in full: no recorded stamp, or another one now."""
        mailbox = await self.state.mailbox(name, create=False)
        recorded = mailbox.cursors[Side.NEAR].stamp
        if recorded is None or mailbox.cursors[Side.FAR].validity is None:
            return True
        try:
            box = await self.stores[Side.NEAR].open(self.tree.name_on(Side.NEAR, name))
            try:
                return (await box.status()).stamp != recorded
            finally:
                await box.close()
        except (MailboxError, StoreError):
            return True  # the pair's own run says what is wrong

    async def done(self) -> None:
        """Record the mark taken at the start: every pair synced."""
        if self.mark is not None:
            await self.state.set_gmail_all_mail(self.mark)


def _mark(status: MailboxStatus) -> Cursor | None:
    if status.highestmodseq is None or status.uidnext is None or status.count is None:
        return None
    return Cursor(status.validity, status.uidnext, status.highestmodseq, status.count)
