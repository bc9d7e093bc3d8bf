"""A side a sync wrote to keeps a stamp: after the run's pairs, each proof a side gave that
only the sync changed it (``Mailbox.written``: a Maildir folder's witness) becomes the stamp
in that side's cursor, so the next sync need not list the folder it has just written to.

A proof is only asked for where a pair's plan was carried out whole (its cursors saved as
complete) with no message refused (a refused one must be tried again next run, which a
skipped pair would not do).  The stamp's times must have settled (stamp.py's tick rule):
proofs that settle within ``wait`` seconds are waited for, once for the whole run, the
others are dropped (the next sync lists that folder, as before).  A daemon waits for none:
its ``carry`` keeps a proof that has not settled, still watching, for the start of its next
run, before that run looks at any folder.  Not a durable step: like the restamp of an
unchanged pair (pair.py), a crash before it costs only a listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass

import structlog

from mailtide.core.model import Side
from mailtide.deadline import within
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import WrittenStamp

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Written:
    mailbox: str  # canonical name of the pair
    side: Side
    proof: WrittenStamp


class Restamps:
    """The proofs of one run, recorded (or dropped) at its end; with ``carry``, of a daemon's
    runs, each run's that had not settled recorded at the next one's start."""

    def __init__(self, carry: bool = False) -> None:
        self.carry = carry
        self._pending: list[Written] = []

    def add(self, mailbox: str, side: Side, proof: WrittenStamp) -> None:
        self._pending.append(Written(mailbox, side, proof))

    async def record(
        self, state: OffLoopState, wait: float, stop: asyncio.Event | None = None
    ) -> list[tuple[Written, str]]:
        """Record the stamps proven, waiting at most ``wait`` seconds for times to settle
        (not at all with ``carry``, nor once ``stop`` is set); those recorded, each with its
        stamp."""
        pending, self._pending = self._pending, []
        recorded: list[tuple[Written, str]] = []
        try:
            if not pending:
                return recorded
            settle = await asyncio.to_thread(_settling, pending)
            longest = 0.0 if self.carry else max((s for s in settle if s <= wait), default=0.0)
            if longest > 0 and (stop is None or not stop.is_set()):
                with contextlib.suppress(TimeoutError):
                    await within((stop or asyncio.Event()).wait(), longest)
            if self.carry:  # kept, still watching, for the next run
                self._pending = [w for w, s in zip(pending, settle, strict=True) if s > 0]
                pending = [w for w, s in zip(pending, settle, strict=True) if s <= 0]
            stamps = await asyncio.to_thread(_stamps, pending) if pending else []
            # Each mailbox's sides in turn (a cursor pair is read, then written), the mailboxes
            # at once: their writes queue up for the state's thread, one commit for them all.
            by_mailbox: dict[str, list[tuple[Written, str | None]]] = {}
            for w, stamp in zip(pending, stamps, strict=True):
                by_mailbox.setdefault(w.mailbox, []).append((w, stamp))
            done = await asyncio.gather(
                *(_record_all(state, ws) for ws in by_mailbox.values()), return_exceptions=True
            )
            for each in done:  # each ran to its end; the first failure is told
                if isinstance(each, BaseException):
                    raise each
            recorded = [r for each in done if isinstance(each, list) for r in each]
        finally:
            for w in pending:
                w.proof.close()
        return recorded

    def end_run(self) -> None:
        """A run ended: what it did not record is dropped, unless carried to the next."""
        if not self.carry:
            self.close()

    def close(self) -> None:
        """Drop every proof."""
        pending, self._pending = self._pending, []
        for w in pending:
            w.proof.close()


def _settling(pending: list[Written]) -> list[float]:
    """Each proof's ``settles_in``, read in one trip off the loop."""
    return [w.proof.settles_in() for w in pending]


def _stamps(pending: list[Written]) -> list[str | None]:
    """Each proof's ``stamp``, read in one trip off the loop."""
    return [w.proof.stamp() for w in pending]


async def _record_all(
    state: OffLoopState, written: list[tuple[Written, str | None]]
) -> list[tuple[Written, str]]:
    """The proven stamps of one mailbox's sides, one side after the other; those recorded."""
    recorded: list[tuple[Written, str]] = []
    for w, stamp in written:
        if stamp is not None and await _record(state, w, stamp):
            recorded.append((w, stamp))
        else:
            log.debug("mailbox.stamp_unproven", mailbox=w.mailbox, side=w.side.name)
    return recorded


async def _record(state: OffLoopState, written: Written, stamp: str) -> bool:
    """Put ``stamp`` in the side's cursor, as long as the pair's run left it complete (a
    validity) and unstamped; whether it was."""
    mailbox = await state.mailbox(written.mailbox)
    cursors = list(mailbox.cursors)
    cursor = cursors[written.side]
    if cursor.validity is None or cursor.stamp is not None:
        return False
    cursors[written.side] = dataclasses.replace(cursor, stamp=stamp)
    await state.set_cursors(mailbox, (cursors[0], cursors[1]))
    log.debug("mailbox.restamped", mailbox=written.mailbox, side=written.side.name)
    return True
