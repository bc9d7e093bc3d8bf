"""What NOTIFY last told of each mailbox's counters: the changes made while no watch ran.

NOTIFY's watch is set up again now and then (``push.NotifyPush``: after news, and after a
minute of quiet).  Between the old watch's end (NOTIFY NONE) and the new one's start (NOTIFY
SET) nothing watches, and a new watch reports only what changes after it began: a message
delivered in between would wait for the next change in its mailbox, or the next timed sync.
The gap is a round trip or two; through a slow link, or when the server's answer is held
back (Dovecot's COMPRESS stream and Nagle: 40 ms), a delivery falls into it often.

``NOTIFY SET STATUS`` (RFC 5465, 3.1) answers with the STATUS of every mailbox watched, taken
once the new watch runs (Dovecot 2.3 begins the watch, then sends the STATUS replies).  A
mailbox whose counters differ from those last told changed in between; a change after the
STATUS is the new watch's to report.  At worst a change is reported twice, never not at all.
"""

from __future__ import annotations

from collections.abc import Mapping

# What a STATUS may tell; UNSEEN catches a message marked read where no HIGHESTMODSEQ is told
# (a server that refuses FlagChange for mailboxes not selected).
COUNTED = ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "UNSEEN", "HIGHESTMODSEQ")

Counters = tuple[int | None, ...]  # in the order of COUNTED; None: not told

_UNTOLD: Counters = (None,) * len(COUNTED)


class MailboxCounters:
    """The counters last told of each mailbox, by the name the server gives it."""

    def __init__(self) -> None:
        self._told: dict[str, Counters] = {}

    def told(self, name: str, items: Mapping[str, int]) -> None:
        """A STATUS of news: the items it gives replace those told before (Dovecot's news
        leaves out what did not change, e.g. UIDVALIDITY)."""
        before = self._told.get(name, _UNTOLD)
        self._told[name] = tuple(items.get(k, old) for k, old in zip(COUNTED, before, strict=True))

    def items(self, name: str) -> dict[str, int]:
        """What was last told of mailbox ``name``'s counters (those never told left out)."""
        told = self._told.get(name, _UNTOLD)
        return {k: v for k, v in zip(COUNTED, told, strict=True) if v is not None}

    def names(self) -> list[str]:
        return list(self._told)

    def renewed(self, snapshot: Mapping[str, Mapping[str, int]]) -> frozenset[str] | None:
        """Start over from ``snapshot``, the STATUS of every mailbox watched (by name) that a
        NOTIFY SET STATUS gave.  The mailboxes whose counters differ from those last told;
        None when a mailbox appeared or went away (any mailbox may have changed)."""
        now = {name: tuple(items.get(k) for k in COUNTED) for name, items in snapshot.items()}
        before, self._told = self._told, now
        if before.keys() != now.keys():
            return None
        return frozenset(name for name, counters in now.items() if before[name] != counters)
