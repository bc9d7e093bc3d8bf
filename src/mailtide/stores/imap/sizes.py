"""The RFC822.SIZE of messages a listing of the selected mailbox gave, kept for ``fetch``.

A UID names one message for good within a UIDVALIDITY, and a message's size never
changes, so a size learned from the snapshot (``UID FLAGS RFC822.SIZE``) still holds when
the bodies are fetched: the batches of a first sync need no second round of size-only
FETCHes.  The sizes only shape the batches; a size wrong or missing never loses a message
(a missing one is asked for).  Kept in two arrays sorted by UID (12 bytes a message, not a
dict's ~90): a 100k-message mailbox costs 1.2 MB.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from mailtide.core.model import MessageInfo

MAX_SIZE = (1 << 63) - 1  # a hostile server's 20-digit size still fits (it only shapes batches)


class KnownSizes:
    """UID -> RFC822.SIZE for the messages listed so far in a mailbox of one UIDVALIDITY
    (``validity``); the store keeps it for the mailbox's later opens in the same run."""

    __slots__ = ("_more", "_sizes", "_uids", "validity")

    def __init__(self) -> None:
        self.validity = 0  # the UIDVALIDITY the sizes are for (0: none yet)
        self._uids = array("I")  # UIDs are 32-bit (``uid_of`` checks)
        self._sizes = array("Q")
        self._more: dict[int, int] = {}  # learned after the snapshot (a few new messages)

    def listed(self, messages: Iterable[MessageInfo]) -> None:
        """A full listing: it replaces what was known."""
        pairs = sorted((int(m.id), min(m.size, MAX_SIZE)) for m in messages)
        self._uids = array("I", (uid for uid, _ in pairs))
        self._sizes = array("Q", (size for _, size in pairs))
        self._more = {}

    def add(self, messages: Iterable[MessageInfo]) -> None:
        """Messages a partial listing (changes since a MODSEQ) gave."""
        for m in messages:
            self._more[int(m.id)] = min(m.size, MAX_SIZE)

    def get(self, uid: int) -> int | None:
        size = self._more.get(uid)
        if size is not None:
            return size
        at = bisect_left(self._uids, uid)
        if at < len(self._uids) and self._uids[at] == uid:
            return self._sizes[at]
        return None

    def clear(self) -> None:
        """Forget everything (another UIDVALIDITY: the UIDs name other messages)."""
        self.listed(())

    def hold_for(self, validity: int) -> None:
        """The sizes are for ``validity`` from now on: those of another are forgotten."""
        if validity != self.validity:
            self.clear()
            self.validity = validity
