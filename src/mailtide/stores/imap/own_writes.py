"""Proof that a sync's own writes were the only change to a selected server mailbox, so that
its status after them may be recorded as the side's: the next sync then finds the mailbox
unchanged instead of reading the sync's own writes back (a SELECT, a read of the folder by
the server, and a CHANGEDSINCE, in every mailbox it wrote to).

RFC 7162 gives each change to a mailbox a mod-sequence of its own, and the mailbox's highest
one moves with every change, a flag stored, a message expunged or appended.  Each write of
the sync on its selected mailbox tells its own:

- a STORE, in the MODSEQ of its FETCH answers.  It is sent ``UNCHANGEDSINCE`` the highest
  mod-sequence the mailbox is proven to have had with no other change (the plan's, then the
  sync's own last), so a mod-sequence above that in its answer is the STORE's own: a message
  another client changed since fails the test (``MODIFIED``), is stored again plainly, and
  gives up the proof;
- a ``UID EXPUNGE`` that removed messages, in the ``HIGHESTMODSEQ`` code of its OK (QRESYNC);
- an APPEND to the selected mailbox, in the untagged ``HIGHESTMODSEQ`` that answers it.

When the mod-sequences told fill the whole range from the plan's highest to the highest told,
none missing, nothing else changed the mailbox meanwhile: its status is the plan's, with the
highest mod-sequence told, the UIDs appended and the messages expunged.  A value told that is
not the write's own (a server that answers with the mailbox's highest after another change)
leaves the write's own one missing, so it proves nothing either.

Anything not so told gives the proof up, and the next sync reads the changes as before: a
server without QRESYNC and UIDPLUS, a write counted otherwise (MOVE, COPY, a label, an APPEND
not answered with a mod-sequence), a FETCH or VANISHED for a message not written, a gap in
the range (another client's change, or a server whose mod-sequences count every mailbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailtide.stores.base import MailboxStatus


@dataclass(slots=True)
class OwnWrites:
    """The mod-sequences one open mailbox's writes told, since the plan's ``since``."""

    since: MailboxStatus  # what the plan was made from; every number known
    told: set[int] = field(default_factory=set)
    appended: list[int] = field(default_factory=list)
    expunged: int = 0
    spoiled: bool = False

    @classmethod
    def start(
        cls, status: MailboxStatus, capabilities: frozenset[str], enabled: frozenset[str]
    ) -> OwnWrites | None:
        """Counting from ``status``, where the server can tell (QRESYNC enabled, UIDPLUS)."""
        if "QRESYNC" not in enabled or "UIDPLUS" not in capabilities:
            return None
        if status.highestmodseq is None or status.uidnext is None or status.count is None:
            return None
        return cls(status)

    def _tell(self, modseq: int) -> None:
        assert self.since.highestmodseq is not None
        if modseq > self.since.highestmodseq:
            self.told.add(modseq)
        else:  # not a change made since the plan's: not one of its writes
            self.spoiled = True

    def _top(self) -> int:
        assert self.since.highestmodseq is not None
        return max(self.told, default=self.since.highestmodseq)

    def _whole(self) -> bool:
        """Whether every mod-sequence from the plan's to the highest told is one told."""
        assert self.since.highestmodseq is not None
        return len(self.told) == self._top() - self.since.highestmodseq

    def unchanged_since(self) -> int | None:
        """The ``UNCHANGEDSINCE`` for the next STORE: the highest mod-sequence up to which
        every change is known; None once the proof is given up (a plain STORE then)."""
        if self.spoiled or not self._whole():
            return None
        return self._top()

    def stored(self, uid: int, modseq: int | None, asked: frozenset[int], since: int) -> None:
        """A FETCH answering a STORE ``UNCHANGEDSINCE since`` of the UIDs ``asked``."""
        if uid not in asked:
            self.spoiled = True  # news of a message not written: another client's change
        elif modseq is not None and modseq > since:
            self.told.add(modseq)

    def removed(self, count: int, foreign: bool, highest: int | None) -> None:
        """A ``UID EXPUNGE`` removed ``count`` messages (``foreign``: VANISHED named others
        too); ``highest``: its OK's HIGHESTMODSEQ."""
        if foreign:
            self.spoiled = True
        if count:
            self.expunged += count
            if highest is None:
                self.spoiled = True
            else:
                self._tell(highest)

    def added(self, uid: int | None, highest: int | None) -> None:
        """An APPEND: its UID (APPENDUID) and the HIGHESTMODSEQ that answered it."""
        if uid is None or highest is None:
            self.spoiled = True
            return
        self.appended.append(uid)
        self._tell(highest)

    def status(self) -> MailboxStatus | None:
        """The mailbox's status after the writes when they alone changed it, else None."""
        if self.spoiled or not self.told or not self._whole():
            return None
        s = self.since
        assert s.uidnext is not None and s.count is not None
        uidnext = max([s.uidnext, *(uid + 1 for uid in self.appended)])
        count = s.count - self.expunged + len(self.appended)
        if count < 0:
            return None
        return MailboxStatus(s.validity, uidnext, self._top(), count)
