"""Moves across the mailbox pairs of an account, carried before each pair syncs on its own.

Every pair is planned first (``PairSync.prepare``); ``core.moves.find_moves`` matches a message
gone from one mailbox with the same message new in another on the same side.  The other side
then moves its copy (``Mailbox.move``: ``UID MOVE``, ``rename(2)``) instead of deleting it
while the moved one is copied back, so no body crosses.  A message that left a mailbox and came
back into it under a new id is re-paired (its record takes the new id).  Then each pair syncs
as before: it finds the message recorded where it is now and merges its flags.

The durable order for each group of moves (one carrying side, one origin, one target):

1. ``move intent``: a half record in the target for each arrival (as for any copy);
2. ``move remote`` / ``move local``: the store moves the messages;
3. ``move records``: origin's records dropped and the target's completed, in one transaction.

Killed after 1, the next run finds the same departure and arrival (the arrival now with its
intent) and moves again.  Killed after 2, origin's record names two gone messages (forgotten)
and the target's half record finds the moved message by content identity (paired, nothing
copied).  A message that did not move (gone meanwhile, a name taken in the target) keeps its
origin record and the intent: the pairs' own runs delete and copy it, as without this pass.

Best effort by design: a pair that cannot be planned here is left out (a move from or into it
is a delete plus a copy, as before), and a lost connection ends the pass; the pairs' own runs,
with their retries, go on from what is durable.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

import structlog

from mailtide.core.model import SIDES, Record, Side, pair_ids
from mailtide.core.moves import Move, MoveIdentities, find_moves
from mailtide.core.reconcile import Plan
from mailtide.engine.pair import SIDE_NAMES, Options, PairSync, Prepared
from mailtide.engine.steps import Steps, StopRequested
from mailtide.engine.trash import resolve_trash
from mailtide.state.db import Cursor, StateError
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import (
    ConnectionLost,
    Mailbox,
    MailboxError,
    MailboxStatus,
    Store,
    StoreError,
    UnsafeFolderName,
)

log = structlog.get_logger(__name__)

_SKIPPED = (MailboxError, UnsafeFolderName)


class MovePass:
    """One pass over the mailbox pairs ``names`` of an account (``stores`` by Side)."""

    def __init__(
        self,
        names: Sequence[str],
        stores: tuple[Store, Store],
        state: OffLoopState,
        steps: Steps,
        options: Options,
        known: set[str],
        name_on: Callable[[Side, str], str] | None = None,
    ) -> None:
        """``known``: the folders synced before (only their pairs hold records to leave).
        ``name_on(side, pair)``: the name on ``side`` of pair ``pair`` (the folder tree's;
        default: the same name on both sides)."""
        self.names = list(names)
        self.name_on = name_on or _same_name
        self.stores = stores
        self.state = state
        self.steps = steps
        self.options = options
        self.known = known
        # each planned pair's plan and state, while the pass runs (not its listings: memory
        # stays per change)
        self.prepared: dict[str, Prepared] = {}
        # the plans still true once the pass is done, for the pairs' own runs (``planned``)
        self._handed: dict[str, Prepared] = {}
        # pairs left to their own runs unless a move is possible after all (``_find``)
        self._deferred: list[str] = []
        # messages moved, by Side: the side each move was carried on (a dry run: would be)
        self.moved = [0, 0]

    def planned(self, name: str) -> Prepared | None:
        """The plan this pass made for pair ``name`` if it still holds (no move touched the
        pair, the pass was not cut short), given once: the pair's own run carries it out
        instead of listing both sides again."""
        return self._handed.pop(name, None)

    async def run(self) -> Options:
        """Carry the moves found; the options for the pairs' own runs (a dry run carries
        nothing, and hands the moves on so that the pairs report them as the real run would)."""
        if self.options.restore_deleted:
            return self.options  # restoring wants every deletion turned back, not moved
        self.options = await resolve_trash(self.stores, self.options)
        try:
            moves = await self._find()
            # A pair a move or re-pair touches is planned again by its own run; so is a trash
            # folder, which the other pairs' deletions fill.
            touched = {name for m in moves for name in (m.origin, m.target)}
            touched.update(t for t in self.options.trash if t is not None)
            handed = {n: p for n, p in self.prepared.items() if n not in touched}
            if self.options.dry_run:
                for m in moves:
                    self.moved[m.carrier] += not m.repair
                    log.info(
                        "mailbox.would_move",
                        side=SIDE_NAMES[m.carrier],
                        origin=m.origin,
                        target=m.target,
                        id=m.id,
                    )
                self._handed = handed
                return dataclasses.replace(self.options, dry_moves=tuple(moves))
            repairs = [m for m in moves if m.repair]
            if repairs:
                await self._repair(repairs)
            groups: dict[tuple[Side, str, str], list[Move]] = defaultdict(list)
            for m in moves:
                if not m.repair:
                    groups[(m.carrier, m.origin, m.target)].append(m)
            for (carrier, origin, target), group in sorted(groups.items()):
                try:
                    await self._carry(carrier, origin, target, group)
                except _SKIPPED as exc:
                    log.warning("moves.failed", origin=origin, target=target, error=str(exc))
            self._handed = handed
        except ConnectionLost as exc:
            log.warning("moves.abandoned", error=str(exc))
        except (StoreError, StateError, StopRequested):
            raise  # for the whole account, as in the pairs' own runs
        except Exception as exc:  # a bug must cost the moves (delete + copy), not the account
            log.error("moves.abandoned", error=f"internal error: {exc!r}", exc_info=True)
        finally:
            self.prepared = {}  # the plans handed on live as long as their pairs wait
        return self.options

    # --- finding ------------------------------------------------------------------------

    async def _find(self) -> list[Move]:
        """Plan the pairs that hold records (only they can lose a message to another); only if
        one did, plan the rest too (a move may reach a folder never synced before).

        A pair whose statuses show that it lost nothing but that a side has changes only a
        selected mailbox tells (``left_to_its_run``) is first left out: if no pair lost a
        message, no move exists, and its own run plans it on its one SELECT instead of this
        pass selecting it too (the pass's session is taken by other pairs by then: a second
        SELECT, a read of the folder's whole index by the server, per changed folder)."""
        self._deferred = []
        await self._prepare([n for n in self.names if n in self.known], defer=True)
        if not any(p.plan.deletes for p in self.prepared.values()):
            return []
        await self._prepare(self._deferred)
        await self._prepare([n for n in self.names if n not in self.known])
        order = {name: i for i, name in enumerate(self.names)}
        self.prepared = dict(sorted(self.prepared.items(), key=lambda kv: order[kv[0]]))
        plans = {name: p.plan for name, p in self.prepared.items()}
        found = find_moves(plans)
        if isinstance(found, MoveIdentities):
            plans = await self._identify(plans, found)
            found = find_moves(plans)
        return [] if isinstance(found, MoveIdentities) else found

    async def _prepare(self, names: list[str], defer: bool = False) -> None:
        """Plan ``names``, ``options.parallel`` of them at once (each open on a connection of
        its own, as the pairs' own runs), kept in the order of ``names``; with ``defer``, a
        pair ``left_to_its_run`` is not planned but put in ``_deferred``.  An error that ends
        the pass stops the others from taking a further pair; the ones in flight finish."""
        todo = collections.deque(names)
        found: dict[str, Prepared] = {}
        ended: list[BaseException] = []

        async def worker() -> None:
            while todo and not ended:
                name = todo.popleft()
                try:
                    prepared = await self._prepare_one(name, defer)
                except Exception as exc:  # raised below, once the others are done
                    ended.append(exc)
                    return
                if prepared is not None:
                    found[name] = prepared

        workers = max(1, min(self.options.parallel, len(names)))
        await asyncio.gather(*(worker() for _ in range(workers)))
        self.prepared.update((name, found[name]) for name in names if name in found)
        if ended:
            raise ended[0]

    async def _prepare_one(self, name: str, defer: bool = False) -> Prepared | None:
        """Pair ``name`` planned; None where it cannot be (left out of the pass), or where
        ``defer`` and the pair is ``left_to_its_run`` (then put in ``_deferred``)."""
        self.steps.check()
        boxes: list[Mailbox | None] = [None, None]
        try:
            for side in SIDES:
                boxes[side] = await self._open(side, name)
            if defer and await self._left_to_its_run(name, boxes):
                self._deferred.append(name)
                return None
            pair = PairSync(name, (boxes[0], boxes[1]), self.state, self.steps, self.options)
            return await pair.prepare()
        except _SKIPPED as exc:
            log.debug("moves.not_planned", mailbox=name, error=str(exc))
            return None
        finally:
            await _close(boxes)

    async def _left_to_its_run(self, name: str, boxes: Sequence[Mailbox | None]) -> bool:
        """Whether pair ``name`` (open in ``boxes``) is ``left_to_its_run`` by its statuses;
        the other sides' statuses are read only where an unselected side asks for a SELECT
        (a pair whose server side is unchanged costs one read of its state more)."""
        opened = [box for box in boxes if box is not None]
        if len(opened) < len(boxes) or not any(box.unselected for box in opened):
            return False
        cursors = (await self.state.mailbox(name, create=False)).cursors
        told = [await box.status() if box.unselected else None for box in opened]
        sides = zip(told, cursors, strict=True)
        if not any(s is not None and asks_selection(s, c) for s, c in sides):
            return False
        statuses = [s or await box.status() for s, box in zip(told, opened, strict=True)]
        return left_to_its_run(statuses, cursors, [box.unselected for box in opened])

    async def _open(self, side: Side, name: str) -> Mailbox | None:
        """Mailbox ``name`` on ``side``; in a dry run None where it does not exist yet (the
        real run creates it before this pass, so a move into it must be seen here too)."""
        try:
            return await self.stores[side].open(self.name_on(side, name))
        except MailboxError:
            if self.options.dry_run:
                return None
            raise

    async def _identify(self, plans: dict[str, Plan], need: MoveIdentities) -> dict[str, Plan]:
        """The plans with the arrivals' identities filled in; an arrival that vanished
        meanwhile is left out of the pass."""
        out = dict(plans)
        for name, ids in need.ids.items():
            found = {}
            for side in SIDES:
                if not ids[side]:
                    continue
                box: Mailbox | None = None
                try:
                    box = await self.stores[side].open(self.name_on(side, name))
                    got = await box.identify(sorted(ids[side]))
                    found.update({(side, k): v for k, v in got.items()})
                except _SKIPPED as exc:  # those arrivals are left out of the pass
                    log.debug("moves.not_identified", mailbox=name, error=str(exc))
                finally:
                    await _close([box])
            copies = []
            for c in plans[name].copies:
                if c.identity is None and (c.source, c.id) in found:
                    c = dataclasses.replace(c, identity=found[(c.source, c.id)])
                if c.identity is not None or c.id not in ids[c.source]:
                    copies.append(c)
            out[name] = dataclasses.replace(plans[name], copies=tuple(copies))
        return out

    # --- carrying out -------------------------------------------------------------------

    async def _repair(self, repairs: list[Move]) -> None:
        """Messages that left a mailbox and came back under a new id: their records take it."""
        changes = defaultdict[str, tuple[list[Record], list[Record]]](lambda: ([], []))
        for m in repairs:
            old, new = changes[m.origin]
            old.extend([m.record, *([m.intent] if m.intent else [])])
            new.append(Record(pair_ids(m.carrier, m.id, m.arrived), m.record.flags, m.identity))
        await self.state.rewrite(
            (self.prepared[name].mailbox, old, new) for name, (old, new) in changes.items()
        )
        log.info("moves.repaired", count=len(repairs))
        self.steps.done("re-pair")

    async def _carry(self, carrier: Side, origin: str, target: str, moves: list[Move]) -> None:
        here, there = self.prepared[origin].mailbox, self.prepared[target].mailbox
        intents = {
            m.id: m.intent
            or Record(pair_ids(carrier.other, m.arrived, ""), m.record.flags, m.identity)
            for m in moves
        }
        fresh = [intents[m.id] for m in moves if m.intent is None]
        if fresh:
            await self.state.put(there, fresh)
            self.steps.done("move intent")
        box = await self.stores[carrier].open(self.name_on(carrier, origin))
        try:
            moved = await box.move([m.id for m in moves], self.name_on(carrier, target))
        finally:
            await _close([box])
        self.steps.done(f"move {SIDE_NAMES[carrier]}")
        self.moved[carrier] += len(moved.ids)
        left = [m.record for m in moves if m.id in moved.ids and m.id not in moved.kept]
        old, new = [], []
        for m in moves:
            new_id = moved.ids.get(m.id)
            if new_id:  # else the next reconcile pairs it by identity, or copies the arrival
                old.append(intents[m.id])
                new.append(Record(pair_ids(carrier, new_id, m.arrived), m.record.flags, m.identity))
        await self.state.rewrite([(here, left, []), (there, old, new)])
        log.info(
            "moves.carried",
            side=SIDE_NAMES[carrier],
            origin=origin,
            target=target,
            moved=len(moved.ids),
            asked=len(moves),
        )
        self.steps.done("move records")


def left_to_its_run(
    statuses: Sequence[MailboxStatus], cursors: Sequence[Cursor], unselected: Sequence[bool]
) -> bool:
    """Whether a pair with these statuses and recorded ``cursors`` (by Side) is better
    planned by its own run: no side can have lost a recorded message (``kept_all``), so the
    pair cannot be where a move starts, and a side not yet selected (``Mailbox.unselected``)
    reports a highest modseq other than the recorded one, so its changes take a SELECT, which
    its own run then does once.  A side selected already (a session an earlier run left,
    resumed) is planned here: that costs no SELECT, and its own run goes on in the session."""
    asks = any(
        unsel and asks_selection(s, c)
        for s, c, unsel in zip(statuses, cursors, unselected, strict=True)
    )
    return asks and all(kept_all(s, c) for s, c in zip(statuses, cursors, strict=True))


def asks_selection(status: MailboxStatus, cursor: Cursor) -> bool:
    """Whether ``status`` reports a highest modseq other than the recorded one: the changes
    since are read from the selected mailbox."""
    return status.highestmodseq is not None and status.highestmodseq != cursor.modseq


def kept_all(status: MailboxStatus, cursor: Cursor) -> bool:
    """Whether ``status`` proves that the side still holds every message the last complete
    sync (``cursor``) recorded: the same validity, and the same stamp or highest modseq (no
    change at all), or a count that grew by exactly the UIDs given since (an expunge would
    leave it short: every UID since is still there and none before went)."""
    if cursor.validity is None or status.validity != cursor.validity:
        return False
    if status.stamp is not None and status.stamp == cursor.stamp:
        return True
    if status.highestmodseq is not None and status.highestmodseq == cursor.modseq:
        return True
    if status.count is None or status.uidnext is None:
        return False
    if cursor.count is None or cursor.uidnext is None:
        return False
    return status.count == cursor.count + (status.uidnext - cursor.uidnext)


def _same_name(side: Side, name: str) -> str:
    return name


async def _close(boxes: Sequence[Mailbox | None]) -> None:
    for box in boxes:
        if box is not None:
            try:
                await box.close()
            except StoreError as exc:
                log.debug("mailbox.close_failed", mailbox=box.name, error=str(exc))
