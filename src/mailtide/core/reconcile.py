"""The three-way merge of one mailbox pair: ``plan = reconcile(base, far, near)``.

Everything that decides what a sync does to a mailbox pair lives here.
This module does not know which side is IMAP and which is Maildir; it does no
I/O, keeps no clock and never guesses: where it needs a content identity it
does not have, it says so (``NeedIdentities``) and the engine asks the stores.

Inputs:
- ``base``: the records of the last sync (``Record``).  A record whose id is
  empty on one side is a *half record*: an intent to copy that was made
  durable before the copy, or a pair whose ids on that side became void
  (UIDVALIDITY changed).  Its identity (else its message's) says what to look
  for on that side.
- ``far``, ``near``: every message each side holds now (``MessageInfo``).

Promises:
- A message is deleted on one side only when its record says the other side
  had it and the other side no longer has it.  Absence without a record never
  deletes anything; a message that cannot be placed is copied, not dropped.
- A message new on both sides with the same identity is paired, not copied.
- Flags merge per flag: a change on one side since the record wins; both
  sides changing a flag end in the same value, so no per-flag conflict exists.
- Applying the plan to both sides and the records makes both sides hold the
  same messages with the same flags; reconciling again gives an empty plan.

The decisions, per message (``F`` far, ``N`` near, ``R`` record):

    R (both ids) | F present | N present | -> merge flags (Update if anything differs)
    R (both ids) | F present | N gone    | -> Delete on F
    R (both ids) | F gone    | N present | -> Delete on N
    R (both ids) | F gone    | N gone    | -> Forget
    R (id on S only)  | match on other side by identity | -> treated as a full record, above
    R (id on S only)  | no match, S present             | -> Copy S -> other (completes R)
    R (id on S only)  | no match, S gone                | -> Forget
    R (no id on either side)                            | -> Forget (messages are unrecorded)
    no R | on S only, no identical unrecorded twin opposite | -> Copy S -> other
    no R | identical unrecorded message on both sides       | -> Update (pair), flags united

A message moved between mailboxes reads here as a Delete in one pair and a Copy in another:
``core.moves`` looks at every pair's plan of an account and turns such pairs into moves.

Work in proportion to change: a message unchanged on both sides since its record (same id, the
recorded flags) decides nothing above.  So a sync that knows what changed on each side
(``SideChanges``) reconciles only the records those changes name, with the half records and
those with a pending update (``touched``); ``changed_view`` builds that input, and ``reconcile``
over it plans what ``reconcile`` over every record and message would.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from mailtide.core.model import (
    SIDES,
    Flags,
    Identity,
    Listing,
    MessageInfo,
    Record,
    Side,
    fold_flag,
    pair_ids,
    spelled,
)

_Form = TypeVar("_Form")  # how listing_changes compares flags

# --- the plan -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagEdit:
    """Flags to add and remove on one side's message."""

    side: Side
    id: str
    add: Flags
    remove: Flags


@dataclass(frozen=True, slots=True)
class Update:
    """Replace record ``old`` (None: a new pair) by ``new`` after applying ``edits``."""

    old: Record | None
    new: Record
    edits: tuple[FlagEdit, ...] = ()


@dataclass(frozen=True, slots=True)
class Copy:
    """Copy message ``id`` from ``source`` to the other side with ``flags``.

    ``record`` is the half record this copy completes, if there is one.
    """

    source: Side
    id: str
    flags: Flags
    identity: Identity | None = None
    record: Record | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete message ``id`` on ``side`` (gone from the other side), then forget ``record``."""

    side: Side
    id: str
    record: Record


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop a record whose message is gone from both sides (or never arrived)."""

    record: Record


@dataclass(frozen=True, slots=True)
class Plan:
    updates: tuple[Update, ...] = ()
    copies: tuple[Copy, ...] = ()
    deletes: tuple[Delete, ...] = ()
    forgets: tuple[Forget, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            any(u.edits or u.old != u.new for u in self.updates)
            or self.copies
            or self.deletes
            or self.forgets
        )

    def deletes_on(self, side: Side) -> int:
        return sum(1 for d in self.deletes if d.side is side)

    def touches(self, side: Side) -> bool:
        """Whether carrying the plan out reads or changes ``side``'s mailbox: a flag edit or
        a deletion there, or any copy (read on one side, written on the other)."""
        return (
            bool(self.copies)
            or any(d.side is side for d in self.deletes)
            or any(e.side is side for u in self.updates for e in u.edits)
        )


@dataclass(frozen=True, slots=True)
class NeedIdentities:
    """Reconcile cannot decide without the identities of these messages."""

    ids: tuple[frozenset[str], frozenset[str]]  # indexed by Side


# --- flags ------------------------------------------------------------------------------


def merge_flags(base: Flags, far: Flags, near: Flags) -> Flags:
    """Per flag: a side that changed it since ``base`` wins; otherwise it stays."""
    merged = set()
    for flag in base | far | near:
        was = flag in base
        if (flag in far) != was:
            now = flag in far
        elif (flag in near) != was:
            now = flag in near
        else:
            now = was
        if now:
            merged.add(flag)
    return frozenset(merged)


def settle_pending(record: Record, held: Sequence[Flags | None]) -> Record:
    """The record to merge from, for one whose flag update (``record.pending``) a run was
    carrying when it died; ``held[side]``: the flags each side holds now (None: not there).

    When every side being changed holds the update, it was carried, and the update is the base:
    a change a user made since, on either side, reads as a change (without this, a carried
    update the user then undid on the side it came from read as the other side's change and
    came back).  Otherwise the old flags stay the base, so the update is planned again, unless a
    user changed those flags since, which then wins as any change does."""
    pending = record.pending
    if pending is None:
        return record
    target = {fold_flag(f) for f in pending.flags}
    carried = all(
        (now := held[side]) is not None and {fold_flag(f) for f in now} == target
        for side in pending.sides
    )
    return Record(record.ids, pending.flags if carried else record.flags, record.identity)


def _edits(ids: tuple[str, str], have: tuple[Flags, Flags], want: Flags) -> tuple[FlagEdit, ...]:
    return tuple(
        FlagEdit(side, ids[side], want - have[side], have[side] - want)
        for side in SIDES
        if have[side] != want
    )


# --- the merge --------------------------------------------------------------------------


@dataclass(slots=True)
class _Unrecorded:
    """Messages of one side that no record names, grouped by identity for pairing."""

    messages: dict[str, MessageInfo]
    by_identity: dict[Identity, list[str]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for msg in self.messages.values():
            if msg.identity is not None:
                for key in msg.identity.forms():  # a record may know it by its legacy identity
                    self.by_identity[key].append(msg.id)

    def take(self, identity: Identity | None) -> MessageInfo | None:
        """Remove and return an unrecorded message with this identity, if any."""
        if identity is None:
            return None
        ids = self.by_identity.get(identity)
        while ids:
            msg = self.messages.pop(ids.pop(0), None)
            if msg is not None:
                return msg
        return None

    def lacking_identity(self) -> frozenset[str]:
        return frozenset(i for i, m in self.messages.items() if m.identity is None)


def reconcile(
    base: Iterable[Record],
    far: Iterable[MessageInfo],
    near: Iterable[MessageInfo],
) -> Plan | NeedIdentities:
    """The plan that brings both sides and the records into agreement (see the module doc)."""
    # Flags ignore case, as in IMAP ($forwarded is $Forwarded): every flag of the pair is
    # written one way, the far side's spelling first, then the records', then the near side's,
    # so two spellings of one keyword never read as one removed and another added.
    spelling: dict[str, str] = {}
    far = [_spelled(m, spelling) for m in far]
    records = [_spelled(r, spelling) for r in base]
    near = [_spelled(m, spelling) for m in near]
    now: tuple[dict[str, MessageInfo], dict[str, MessageInfo]] = (
        {m.id: m for m in far},
        {m.id: m for m in near},
    )
    recorded = [{r.ids[s] for r in records if r.ids[s]} for s in SIDES]
    unrecorded = tuple(
        _Unrecorded({i: m for i, m in now[s].items() if i not in recorded[s]}) for s in SIDES
    )

    # Half records look for their missing side among that side's unrecorded messages.
    half = [r for r in records if any(r.ids) and not all(r.ids)]
    wanted = [frozenset[str](), frozenset[str]()]
    for side in SIDES:
        if any(not r.ids[side] for r in half):
            wanted[side] = unrecorded[side].lacking_identity()
    for r in half:
        # A half record without an identity looks for its source's identity instead.
        known = Side.FAR if r.ids[Side.FAR] else Side.NEAR
        source = now[known].get(r.ids[known])
        blind = r.identity is None and source is not None and source.identity is None
        if blind and unrecorded[known.other].messages:
            wanted[known] |= {r.ids[known]}
    if any(wanted):
        return NeedIdentities((wanted[0], wanted[1]))

    updates: list[Update] = []
    copies: list[Copy] = []
    deletes: list[Delete] = []
    forgets: list[Forget] = []

    for record in records:
        ids = record.ids
        if not any(ids):
            # A pending copy whose source side's ids became void (UIDVALIDITY changed): it
            # names nothing, so it must neither pair nor delete; the messages it meant are
            # unrecorded now and are paired or copied below.
            forgets.append(Forget(record))
            continue
        if not all(ids):
            known = Side.FAR if ids[Side.FAR] else Side.NEAR
            missing = known.other
            source = now[known].get(ids[known])
            identity = record.identity or (source.identity if source is not None else None)
            twin = unrecorded[missing].take(identity)
            if twin is None:
                if source is None:
                    forgets.append(Forget(record))
                else:
                    copies.append(Copy(known, source.id, source.flags, identity, record))
                continue
            ids = pair_ids(known, ids[known], twin.id)
        present = (now[Side.FAR].get(ids[Side.FAR]), now[Side.NEAR].get(ids[Side.NEAR]))
        full = Record(ids, record.flags, record.identity)
        far_msg, near_msg = present
        if far_msg is not None and near_msg is not None:
            if (
                far_msg.flags == record.flags == near_msg.flags
                and ids == record.ids
                and (record.identity is not None or far_msg.identity is near_msg.identity is None)
            ):
                continue  # unchanged: the common case, decided without building anything
            flags = merge_flags(record.flags, far_msg.flags, near_msg.flags)
            new = Record(ids, flags, record.identity or far_msg.identity or near_msg.identity)
            edits = _edits(ids, (far_msg.flags, near_msg.flags), flags)
            if edits or new != record:
                updates.append(Update(record, new, edits))
        elif far_msg is None and near_msg is None:
            forgets.append(Forget(record))
        else:
            gone = Side.FAR if far_msg is None else Side.NEAR
            if full != record:
                # Completed a half record only to find it deleted: store the pair, then delete.
                updates.append(Update(record, full))
            deletes.append(Delete(gone.other, ids[gone.other], full))

    # Unrecorded on both sides: identical messages pair, the rest is copied.
    if unrecorded[Side.FAR].messages and unrecorded[Side.NEAR].messages:
        lacking = (
            unrecorded[Side.FAR].lacking_identity(),
            unrecorded[Side.NEAR].lacking_identity(),
        )
        if any(lacking):
            return NeedIdentities(lacking)
        for msg in sorted(unrecorded[Side.FAR].messages.values(), key=_order):
            twin = unrecorded[Side.NEAR].take(msg.identity)
            if twin is None:
                continue
            del unrecorded[Side.FAR].messages[msg.id]
            flags = msg.flags | twin.flags
            new = Record((msg.id, twin.id), flags, msg.identity)
            updates.append(Update(None, new, _edits(new.ids, (msg.flags, twin.flags), flags)))
    for side in SIDES:
        for msg in sorted(unrecorded[side].messages.values(), key=_order):
            copies.append(Copy(side, msg.id, msg.flags, msg.identity))

    return Plan(tuple(updates), tuple(copies), tuple(deletes), tuple(forgets))


_Flagged = TypeVar("_Flagged", MessageInfo, Record)


def _spelled(item: _Flagged, spelling: dict[str, str]) -> _Flagged:
    flags = spelled(item.flags, spelling)
    return item if flags == item.flags else dataclasses.replace(item, flags=flags)


def _order(msg: MessageInfo) -> tuple[int, str]:
    """Numeric ids (UIDs) in numeric order, then the rest by name: copies keep arrival order."""
    return (int(msg.id), "") if msg.id.isdigit() else (1 << 62, msg.id)


# --- only what changed --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SideChanges:
    """What one side holds that may differ from the records: ``changed``, every message that is
    new or whose flags may differ from its record (by id; more is harmless, one left out is
    not); ``gone``, recorded ids the side no longer holds."""

    changed: Mapping[str, MessageInfo]
    gone: frozenset[str] = frozenset()

    def names(self, id: str) -> bool:
        return id in self.changed or id in self.gone

    def gone_now(self, id: str) -> bool:
        """Gone, and not back (a message may be said changed and gone at once: it is there)."""
        return id in self.gone and id not in self.changed


def listing_changes(
    listing: Listing,
    recorded: Mapping[str, _Form | None],
    form: Callable[[Flags], _Form],
) -> SideChanges:
    """What a side listed in full holds that may differ from the records: ``recorded`` maps
    each id the records name on it to the recorded flags, in the ``form`` the flags of a
    listed message are compared in (None: more than one record names it, so it is always
    looked at).  Each distinct set of flags is put in that form once, and only a message
    that differs is made an object."""
    forms = {key: form(flags) for key, flags in listing.flags.items()}
    get = recorded.get  # a lookup per message: 50k of them in a big folder
    changed = {id: listing.info(id) for id, key in listing.keys.items() if get(id) != forms[key]}
    return SideChanges(changed, frozenset(recorded.keys() - listing.keys.keys()))


def touched(record: Record, changes: Sequence[SideChanges]) -> bool:
    """Whether ``record`` can decide anything given ``changes`` (indexed by Side): it names a
    changed or gone id, or it is a half record, or it carries a pending flag update."""
    if record.pending is not None or not all(record.ids):
        return True
    return any(changes[side].names(record.ids[side]) for side in SIDES)


def changed_view(
    records: Iterable[Record], changes: Sequence[SideChanges]
) -> tuple[list[Record], list[MessageInfo], list[MessageInfo]]:
    """The input of ``reconcile`` that plans only what ``changes`` (indexed by Side) call for:
    the ``touched`` records (``records`` must hold at least those), and each side's messages:
    those a touched record names, as recorded unless changed or gone, then every changed one.
    The order is the one a full listing built from the records would have, so the plan is the
    same as ``reconcile`` over everything (flags spelt two ways in one mailbox aside: which
    spelling a new record keeps may differ)."""
    base = [r for r in records if touched(r, changes)]
    sides: list[list[MessageInfo]] = []
    for side in SIDES:
        change = changes[side]
        held: dict[str, MessageInfo] = {}
        for r in base:
            id = r.ids[side]
            if id and id not in held and id not in change.gone:
                held[id] = MessageInfo(id, r.flags, r.identity.size if r.identity else 0)
        held.update(change.changed)
        sides.append(list(held.values()))
    return base, sides[Side.FAR], sides[Side.NEAR]


def restore_deleted(plan: Plan) -> Plan:
    """``plan`` with every deletion turned back: a message gone from one side since the record
    is copied back from the side that still has it, instead of being deleted there (the way
    back after a mass deletion made by mistake).  Its record is forgotten first, so the copy is
    an ordinary new message on that side (a new intent, found again by identity after a crash)."""
    if not plan.deletes:
        return plan
    return dataclasses.replace(
        plan,
        deletes=(),
        forgets=plan.forgets + tuple(Forget(d.record) for d in plan.deletes),
        copies=plan.copies
        + tuple(Copy(d.side, d.id, d.record.flags, d.record.identity) for d in plan.deletes),
    )


# --- the mass-delete guard -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MassDelete:
    side: Side
    deletes: int
    held: int

    def __str__(self) -> str:
        return (
            f"would delete {self.deletes} of {self.held} messages on the "
            f"{'remote' if self.side is Side.FAR else 'local'} side"
        )


def mass_deletes(
    plan: Plan, held: Mapping[Side, int] | Sequence[int], share: float, floor: int
) -> list[MassDelete]:
    """Sides where ``plan`` deletes more than ``share`` of what they hold, above ``floor``."""
    found = []
    for side in SIDES:
        n = plan.deletes_on(side)
        if n > floor and n > share * held[side]:
            found.append(MassDelete(side, n, held[side]))
    return found
