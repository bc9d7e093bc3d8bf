"""Moves: a message that left one mailbox and arrived in another, found across an account.

``reconcile`` sees one mailbox pair at a time, so a message moved on one side reads there as
two unrelated things: in the mailbox it left, its record names a message that side no longer
has (``Delete`` on the other side); in the mailbox it reached, an unrecorded message (``Copy``
to the other side).  This pass looks at the plans of every pair of an account at once and
matches each such departure with an arrival of the same content identity on the same side.
The side that still holds the message then *carries the move* (``UID MOVE``, ``rename(2)``)
instead of deleting one copy and receiving the other: no body crosses, flags merge against
the departure's record.

A departure and an arrival in the *same* mailbox are a message that left and came back under
a new id (another client re-uploaded it, a server renumbered without a new UIDVALIDITY): it is
re-paired, nothing moves.

Like ``reconcile`` this is pure: no I/O, no clock, no knowledge of which side is IMAP.

Promises:
- A move changes how the plans are carried out, never what both sides hold at the end: each
  folder ends with the same messages (by identity) as the plans without the pass would give.
  Each departure and each arrival is used at most once, so nothing is lost or doubled.
- A match needs equal content identities; where an arrival's identity is unknown and some
  departure could match it, the pass says so (``MoveIdentities``) instead of guessing.
- Matching is deterministic: re-pairs in the same mailbox first, then by mailbox name and id.
- A message moved on *both* sides, to different mailboxes, leaves no departure (its record is
  forgotten, as it is gone from both sides), so it is no move: each side's new location is
  copied to the other, and both locations keep it.  Nothing is lost; the user sees both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from mailtide.core.model import Identity, Record, Side
from mailtide.core.reconcile import Copy, Delete, Plan


@dataclass(frozen=True, slots=True)
class Move:
    """A move made on ``carrier.other``, to carry on ``carrier``.

    ``carrier``'s message ``id`` in mailbox ``origin`` goes to mailbox ``target``, where the
    other side's message ``arrived`` is the moved one.  ``record`` is origin's record of the
    pair (its base flags are the base of the merge in ``target``); ``intent`` is the half record
    an earlier run wrote in ``target`` for this arrival, if any.  ``origin == target``: a
    re-pair, nothing to carry on the store.
    """

    carrier: Side
    origin: str
    target: str
    id: str
    arrived: str
    record: Record
    identity: Identity
    intent: Record | None = None

    @property
    def repair(self) -> bool:
        return self.origin == self.target


@dataclass(frozen=True, slots=True)
class MoveIdentities:
    """The pass cannot decide without the identities of these arrivals: mailbox -> ids, by
    Side (the side the message arrived on)."""

    ids: Mapping[str, tuple[frozenset[str], frozenset[str]]]


@dataclass(frozen=True, slots=True)
class _Departure:
    mailbox: str
    delete: Delete


@dataclass(frozen=True, slots=True)
class _Arrival:
    mailbox: str
    copy: Copy


def find_moves(plans: Mapping[str, Plan]) -> list[Move] | MoveIdentities:
    """The moves (and re-pairs) hidden in ``plans``, one plan per mailbox pair of an account."""
    departures: dict[tuple[Side, Identity], list[_Departure]] = defaultdict(list)
    for name, plan in plans.items():
        # A half record completed in this plan and then found deleted is not stored as the
        # Delete names it: left to the plain delete (a move would drop the wrong record).
        completed = {u.new for u in plan.updates if u.old is not None and u.old != u.new}
        for d in plan.deletes:
            if d.record.identity is not None and d.record not in completed:
                # gone from d.side.other: that is the side the message moved on
                departures[(d.side.other, d.record.identity)].append(_Departure(name, d))
    if not departures:
        return []
    moved_on = {side for side, _ in departures}
    arrivals: dict[tuple[Side, Identity], list[_Arrival]] = defaultdict(list)
    unknown: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for name, plan in plans.items():
        for c in plan.copies:
            if c.source not in moved_on:
                continue
            if c.identity is None:
                unknown[name][c.source].add(c.id)
            else:
                for form in c.identity.forms():  # a record may know it by its legacy identity
                    arrivals[(c.source, form)].append(_Arrival(name, c))
    if unknown:
        return MoveIdentities(
            {name: (frozenset(ids[0]), frozenset(ids[1])) for name, ids in unknown.items()}
        )
    moves: list[Move] = []
    used: set[_Arrival] = set()  # an arrival is listed under each of its identity's keys
    for key in sorted(departures.keys() & arrivals.keys(), key=_key_order):
        moves.extend(_match(key[0], key[1], departures[key], arrivals[key], used))
    return moves


def _match(
    side: Side,
    identity: Identity,
    gone: list[_Departure],
    came: list[_Arrival],
    used: set[_Arrival],
) -> Iterable[Move]:
    """Pair departures with arrivals one to one: same mailbox first, then in order."""
    gone = sorted(gone, key=lambda d: (d.mailbox, d.delete.id))
    came = sorted(came, key=lambda a: (a.mailbox, a.copy.id))
    for same_mailbox in (True, False):
        for d in list(gone):
            a = next(
                (a for a in came if a not in used and (a.mailbox == d.mailbox or not same_mailbox)),
                None,
            )
            if a is None:
                continue
            gone.remove(d)
            used.add(a)
            yield Move(
                carrier=side.other,
                origin=d.mailbox,
                target=a.mailbox,
                id=d.delete.id,
                arrived=a.copy.id,
                record=d.delete.record,
                identity=identity,
                intent=a.copy.record,
            )


def without_moves(plan: Plan, mailbox: str, moves: Iterable[Move]) -> Plan:
    """``plan`` of ``mailbox`` without the deletions and copies that ``moves`` carry instead
    (what a dry run reports, and what the mass-delete guard weighs, as the real run would)."""
    gone = {(m.carrier, m.id) for m in moves if m.origin == mailbox}
    came = {(m.carrier.other, m.arrived) for m in moves if m.target == mailbox}
    if not gone and not came:
        return plan
    return replace(
        plan,
        deletes=tuple(d for d in plan.deletes if (d.side, d.id) not in gone),
        copies=tuple(c for c in plan.copies if (c.source, c.id) not in came),
    )


def _key_order(key: tuple[Side, Identity]) -> tuple[int, str, int, str, str]:
    side, i = key
    return (side.value, i.message_id, i.size, i.header_digest, i.body_digest)
