"""Gmail's labels mode (``gmail_labels = true``): one file per Gmail message, hard-linked into
the local folder of each of its labels.

Each label's mailbox is still synced as a pair of its own (engine/pair.py), and All Mail is
never synced nor changed.  A Gmail message is known by its X-GM-MSGID, the same in every
label's mailbox; the state records which message each server UID shows (``gmail_message``).
This module changes three things a pair does:

- **New on the server**: a message whose Gmail message the Maildir holds already, in another
  label's folder, is not downloaded: that file is hard-linked here (``link``).
- **New locally**: a file whose content (identity) is a Gmail message recorded in another
  label's mailbox (a hard link, a client's copy) is not uploaded as a second message: that
  message is ``UID COPY``-ed into this label's mailbox, which on Gmail adds the label
  (``label``).  A label folder made locally is made on the server by the folder tree, so it
  becomes a label, and what is put into it is labelled so.
- **Deleted locally**: a message whose file left a label's folder loses that label on the
  server (``-X-GM-LABELS``: never an expunge, which Gmail may be set to turn into a deletion
  for good when it was the message's last label).  When no other
  local folder holds it any more, and Gmail shows no label of it beyond the folders that
  held it, it was deleted from every local folder: it goes to Trash instead (the account's
  ``trash``, Gmail's ``\\Trash`` folder by default), never expunged from All Mail
  (``last_copies``).

The durable order of links is a copy's (design "Never lose"): (1) ``gmail ids``: which
message each UID shows, a fact about the server recorded first, so a later pair finds it;
(2) ``intent``: a half record per message, with the content identity the server gives;
(3) ``link local``: the hard links, their directories durable; (4) ``records``: the half
records completed.  Killed after (3), the next run finds the half record's message in the
folder by content identity (the link is an unrecorded file of that identity) and pairs them:
nothing is linked or downloaded twice.  A label added from here has the same order with
``label remote`` (the COPY) for the link: killed after it, the half record finds the copied
UID by content identity.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from mailtide.core.model import Identity, Record, Side, pair_ids
from mailtide.core.reconcile import Copy
from mailtide.engine.steps import Steps
from mailtide.state.db import GmailCopy, MailboxState
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import Link, Mailbox, Store, StoreError
from mailtide.stores.imap.gmail import GmailMessage


@runtime_checkable
class GmailMailbox(Protocol):
    """A mailbox of a server that speaks Gmail's extension (stores/imap/mailbox.py)."""

    async def gmail_ids(self, ids: Sequence[str]) -> dict[str, int]: ...

    async def gmail_messages(self, ids: Sequence[str]) -> dict[str, GmailMessage]: ...

    async def copy(self, ids: Sequence[str], target: str) -> dict[str, str | None]: ...

    async def remove_label(self, ids: Sequence[str]) -> set[str]: ...


@runtime_checkable
class LinkingMailbox(Protocol):
    """A mailbox that can give a file of another folder a name of its own (a Maildir)."""

    async def link(self, links: Sequence[Link]) -> list[str | None]: ...

    async def holding(self, files: Sequence[tuple[str, str]]) -> set[tuple[str, str]]: ...


class LabelLinks:
    """The labels mode of one mailbox pair: ``remote`` a label's mailbox on Gmail (``gmail``:
    the same, seen as speaking Gmail's extension), ``local`` its Maildir folder."""

    def __init__(
        self,
        boxes: tuple[Mailbox, Mailbox],
        gmail: GmailMailbox,
        local: LinkingMailbox,
        server: Store,
        state: OffLoopState,
        steps: Steps,
    ) -> None:
        self.remote, self.local_box = boxes
        self.gmail = gmail
        self.local = local
        self.server = server  # to open another label's mailbox
        self.state = state
        self.steps = steps

    @classmethod
    def of(
        cls,
        boxes: tuple[Mailbox | None, Mailbox | None],
        server: Store,
        state: OffLoopState,
        steps: Steps,
    ) -> LabelLinks | None:
        """The labels mode for a pair, None when its sides cannot carry it (a dry run's missing
        mailbox, a local side that is no Maildir): then the pair syncs as plain folders."""
        remote, local = boxes[Side.FAR], boxes[Side.NEAR]
        if isinstance(remote, GmailMailbox) and isinstance(local, LinkingMailbox):
            assert remote is not None and local is not None
            return cls((remote, local), remote, local, server, state, steps)
        return None

    async def remember(self, mailbox: MailboxState, ids: Sequence[str]) -> dict[str, int]:
        """Record which Gmail message each of these server UIDs shows (and return it): for
        the messages copied, and for those paired by content (a first sync over a Maildir
        that holds them, lost state), so that every message is linked from and its deletion
        known as its own."""
        msgids = await self.gmail.gmail_ids([i for i in ids if i])
        if msgids:
            validity = (await self.remote.status()).validity
            await self.state.put_gmail_ids(mailbox, validity, msgids)
            self.steps.done("gmail ids")
        return msgids

    async def catch_up(self, mailbox: MailboxState) -> None:
        """Record the Gmail message of every pair recorded before the labels mode was on (or
        before this mailbox's validity changed), once: so those files are linked from too."""
        validity = mailbox.cursors[Side.FAR].validity
        if validity is None or validity != (await self.remote.status()).validity:
            return  # the records' UIDs are void: they are re-paired first, and recorded then
        missing = await self.state.without_gmail_ids(mailbox)
        if missing:
            await self.remember(mailbox, missing)

    async def link(self, mailbox: MailboxState, copies: list[Copy]) -> tuple[list[Copy], int]:
        """Carry the copies from the server whose Gmail message the Maildir holds in another
        folder as hard links.  Returns the copies left to download (those with an intent
        recorded here carry it as their ``record``) and how many were linked."""
        msgids = await self.remember(mailbox, [c.id for c in copies])
        held = await self.state.local_copies(set(msgids.values()), mailbox)
        candidates = [c for c in copies if msgids.get(c.id) in held]
        if not candidates:
            return copies, 0
        identities = await self.remote.identify([c.id for c in candidates])
        candidates = [c for c in candidates if c.id in identities]
        intents = await self._intents(mailbox, Side.FAR, candidates, identities)
        links = [
            Link(tuple(held[msgids[c.id]]), identities[c.id], c.flags, hint=c.id)
            for c in candidates
        ]
        new_ids = await self.local.link(links)
        self.steps.done("link local")
        linked = {c.id: n for c, n in zip(candidates, new_ids, strict=True) if n is not None}
        if linked:
            await self.state.replace(
                mailbox,
                [intents[uid] for uid in linked],
                [
                    Record(pair_ids(Side.FAR, c.id, linked[c.id]), c.flags, identities[c.id])
                    for c in candidates
                    if c.id in linked
                ],
            )
            self.steps.done("records")
        rest = [
            dataclasses.replace(c, record=intents[c.id]) if c.id in intents else c
            for c in copies
            if c.id not in linked
        ]
        return rest, len(linked)

    async def would_carry(self, mailbox: MailboxState, copies: Sequence[Copy]) -> tuple[int, int]:
        """A dry run's count of the copies ``link`` and ``label`` would carry without a body,
        by Side (the side the link or label is made on), asking and changing nothing but
        what reading tells."""
        carried = [0, 0]
        down = [c.id for c in copies if c.source is Side.FAR]
        if down:
            msgids = await self.gmail.gmail_ids(down)
            held = await self.state.local_copies(set(msgids.values()), mailbox)
            carried[Side.NEAR] = sum(1 for i in down if msgids.get(i) in held)
        up = [c for c in copies if c.source is Side.NEAR]
        need = [c.id for c in up if c.identity is None]
        found = await self.local_box.identify(need) if need else {}
        like: list[int] = []
        for c in up:
            identity = c.identity or found.get(c.id)
            known = await self.state.gmail_message_like(identity, mailbox) if identity else None
            if known is not None:
                like.append(known.msgid)
        here = await self.state.gmail_held(mailbox, like)
        carried[Side.FAR] = sum(1 for msgid in like if msgid not in here)
        return carried[0], carried[1]

    async def forget_gone(self, mailbox: MailboxState) -> None:
        """Forget the Gmail message of each UID no record of the pair holds any more (deleted,
        forgotten, its validity void), so the table is as big as the records."""
        if await self.state.forget_gmail_ids(mailbox):
            self.steps.done("forget gmail ids")

    async def remove_label(self, ids: Sequence[str]) -> set[str]:
        """Take this pair's label away from the server's ``ids``; the ids gone from it."""
        return await self.gmail.remove_label(ids)

    async def last_copies(self, mailbox: MailboxState, ids: Sequence[str]) -> set[str]:
        """Of the server UIDs about to be deleted here (their file left this label's folder),
        those deleted from every local folder: no other local folder holds a file of their
        message, and Gmail shows no label of it beyond the folders that held one.  A message
        with a label not synced here (left out, refused as a folder name, synced before the
        labels mode) or whose labels cannot be read only loses this label: never Trash for
        what may still be wanted elsewhere."""
        found = await self.gmail.gmail_messages(ids)
        elsewhere = await self.state.local_copies({m.msgid for m in found.values()}, mailbox)
        present = await self.local.holding([f for files in elsewhere.values() for f in files])
        last = set()
        for uid, message in found.items():
            files = elsewhere.get(message.msgid, [])
            if any(f in present for f in files):
                continue
            if len(message.labels) > len({folder for folder, _ in files}):
                continue
            last.add(uid)
        return last

    async def label(self, mailbox: MailboxState, copies: list[Copy]) -> tuple[list[Copy], int]:
        """Carry the copies from the Maildir whose content is a Gmail message recorded in
        another label's mailbox as this label added to it (``UID COPY`` from there).  Returns
        the copies left to upload (as ``link``) and how many were labelled."""
        need = [c.id for c in copies if c.identity is None]
        found = await self.local_box.identify(need) if need else {}
        known: dict[str, GmailCopy] = {}
        for c in copies:
            identity = c.identity or found.get(c.id)
            if identity is not None:
                like = await self.state.gmail_message_like(identity, mailbox)
                if like is not None:
                    known[c.id] = like
        # A message this label's mailbox holds already, paired with another file here: that
        # file is a second copy (a client's copy into the same folder).  A COPY would name the
        # one UID again, and two records of one UID would read one file's deletion as the
        # label's; it is uploaded as a message of its own instead.
        here = await self.state.gmail_held(mailbox, {k.msgid for k in known.values()})
        known = {i: k for i, k in known.items() if k.msgid not in here}
        candidates = [c for c in copies if c.id in known]
        if not candidates:
            return copies, 0
        identities = {c.id: c.identity or found[c.id] for c in candidates}
        intents = await self._intents(mailbox, Side.NEAR, candidates, identities)
        new_uids = await self._copy_here([(c.id, known[c.id]) for c in candidates])
        self.steps.done("label remote")
        # A UID recorded here already (the label came on the server meanwhile): no second
        # record of it; the intent stays, and the next run pairs or uploads by content.
        taken = set(await self.state.gmail_ids(mailbox, [u for u in new_uids.values() if u]))
        labelled = [c for c in candidates if new_uids.get(c.id) and new_uids[c.id] not in taken]
        if labelled:
            validity = (await self.remote.status()).validity
            await self.state.put_gmail_ids(
                mailbox, validity, {new_uids[c.id] or "": known[c.id].msgid for c in labelled}
            )
            # The flags Gmail holds are the message's: a local difference is carried next run.
            await self.state.replace(
                mailbox,
                [intents[c.id] for c in labelled],
                [
                    Record(
                        pair_ids(Side.NEAR, c.id, new_uids[c.id] or ""),
                        known[c.id].flags,
                        identities[c.id],
                    )
                    for c in labelled
                ],
            )
            self.steps.done("records")
        # Copied without a new UID told (no UIDPLUS): never uploaded as well; the intent stays
        # and the next run pairs it with the copy by content identity.
        done = set(new_uids)
        rest = [
            dataclasses.replace(c, record=intents[c.id]) if c.id in intents else c
            for c in copies
            if c.id not in done
        ]
        return rest, len(done)

    async def _intents(
        self,
        mailbox: MailboxState,
        source: Side,
        candidates: Sequence[Copy],
        identities: Mapping[str, Identity],
    ) -> dict[str, Record]:
        """Each candidate's record: its own, or a half record from ``source`` made durable
        first (the intent step, as every copy takes)."""
        intents = {
            c.id: c.record or Record(pair_ids(source, c.id, ""), c.flags, identities[c.id])
            for c in candidates
        }
        fresh = [intents[c.id] for c in candidates if c.record is None]
        if fresh:
            await self.state.put(mailbox, fresh)
            self.steps.done("intent")
        return intents

    async def _copy_here(self, wanted: list[tuple[str, GmailCopy]]) -> dict[str, str | None]:
        """``UID COPY`` each message from the mailbox it is recorded in into this one: local id
        -> its new UID here (None: copied, the UID not told); one not copied (gone meanwhile)
        is left out."""
        by_mailbox: dict[str, list[tuple[str, GmailCopy]]] = defaultdict(list)
        for local_id, where in wanted:
            by_mailbox[where.mailbox].append((local_id, where))
        out: dict[str, str | None] = {}
        for name, group in sorted(by_mailbox.items()):
            box = await self.server.open(name)
            try:
                source = box if isinstance(box, GmailMailbox) else None
                if source is None:
                    continue
                copied = await source.copy([w.far_id for _, w in group], self.remote.name)
            finally:
                try:
                    await box.close()
                except StoreError:
                    pass
            out.update((local_id, copied[w.far_id]) for local_id, w in group if w.far_id in copied)
        return out
