"""Properties of ``reconcile``, checked by applying its plans to a simulated mailbox pair.

The simulation starts from a synced pair (every message on both sides, one record
each), adds what a crash can leave behind (half records for copies that did or did not
happen), optionally loses the state or renumbers one side (UIDVALIDITY changed: every
id on that side new, every record half), lets the user change both sides (flags,
deletions, new messages, the same new message on both sides, duplicates), then syncs:
it answers ``NeedIdentities`` the way the engine does (fill in the identities asked for,
call again) and applies the plan the way the engine does.  Then:

- both sides hold the same messages (multiset of identities) with the same flags, and
  every message is named by exactly one record with both ids;
- a second reconcile is an empty plan and needs no identities;
- no message is lost that the user did not delete, and none is duplicated: the count of
  each identity after the sync is exactly what the records and the unrecorded messages
  call for (``expected_count``);
- the flags of each pair are the per-flag merge against its record (a side that changed a
  flag wins), the union for a new pair, the source's flags for a copy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject

from mailtide.core.model import SIDES, Flags, Identity, MessageInfo, Record, Side, pair_ids
from mailtide.core.reconcile import NeedIdentities, Plan, reconcile

FAR, NEAR = Side.FAR, Side.NEAR
ALPHABET = ("\\Seen", "\\Answered", "\\Flagged", "$Forwarded", "Work")
# A small pool, so that independent new messages often share an identity (duplicates).
POOL = tuple(Identity(f"<m{k}@example.org>", 1000 + k, f"{k:064x}") for k in range(6))

flag_sets = st.frozensets(st.sampled_from(ALPHABET))
identities = st.sampled_from(POOL)


@dataclass(frozen=True, slots=True)
class Stored:
    identity: Identity
    flags: Flags


@dataclass
class Pair:
    """Both sides of a mailbox pair and the records, as the engine would hold them."""

    msgs: tuple[dict[str, Stored], dict[str, Stored]] = field(default_factory=lambda: ({}, {}))
    records: list[Record] = field(default_factory=list)
    next_id: list[int] = field(default_factory=lambda: [1, 1])
    # Which messages a side's snapshot shows the identity of (the rest: None until asked).
    shown: tuple[set[str], set[str]] = field(default_factory=lambda: (set(), set()))

    def add(self, side: Side, identity: Identity, flags: Flags) -> str:
        """Store a message under a fresh id: UIDs on far, file names on near."""
        n = self.next_id[side]
        self.next_id[side] += 1
        id = str(n) if side is FAR else f"n{n}"
        self.msgs[side][id] = Stored(identity, flags)
        return id

    def snapshot(self, side: Side) -> list[MessageInfo]:
        return [
            MessageInfo(
                id,
                m.flags,
                m.identity.size,
                identity=m.identity if id in self.shown[side] else None,
            )
            for id, m in self.msgs[side].items()
        ]

    def count(self, side: Side) -> Counter[Identity]:
        return Counter(m.identity for m in self.msgs[side].values())


# --- the engine, as far as the core is concerned -----------------------------------------------


def plan_for(pair: Pair) -> Plan:
    """Reconcile, answering NeedIdentities as the engine does; each id is asked for once."""
    for _ in range(3):
        result = reconcile(pair.records, pair.snapshot(FAR), pair.snapshot(NEAR))
        if isinstance(result, Plan):
            return result
        assert isinstance(result, NeedIdentities)
        assert any(result.ids), "NeedIdentities asking for nothing"
        for side in SIDES:
            assert result.ids[side] <= pair.msgs[side].keys(), "asked for a message not held"
            assert not result.ids[side] & pair.shown[side], "asked again for a known identity"
            pair.shown[side].update(result.ids[side])
    raise AssertionError("reconcile keeps asking for identities")


def apply(pair: Pair, plan: Plan) -> None:
    """Carry out ``plan`` on both sides and the records; every step checks its premise."""
    records = pair.records

    for u in plan.updates:
        if u.old is not None:
            records.remove(u.old)
        records.append(u.new)
        for e in u.edits:
            m = pair.msgs[e.side][e.id]
            assert e.add.isdisjoint(m.flags) and e.remove <= m.flags, "edit of stale flags"
            pair.msgs[e.side][e.id] = Stored(m.identity, (m.flags | e.add) - e.remove)
    for d in plan.deletes:
        assert d.record.ids[d.side] == d.id
        records.remove(d.record)
        del pair.msgs[d.side][d.id]
    for f in plan.forgets:
        records.remove(f.record)
    for c in plan.copies:
        source = pair.msgs[c.source][c.id]
        assert c.flags == source.flags
        assert c.identity in (None, source.identity)
        new_id = pair.add(c.source.other, source.identity, c.flags)
        if c.record is not None:
            assert c.record.ids[c.source] == c.id and not c.record.ids[c.source.other]
            records.remove(c.record)
        # The engine knows the identity once it has copied the bytes.
        records.append(Record(pair_ids(c.source, c.id, new_id), c.flags, source.identity))


# --- the world before the sync ---------------------------------------------------------------


def build(data: DataObject) -> Pair:
    pair = Pair()

    # The last sync left every message on both sides, with one record each.
    for _ in range(data.draw(st.integers(0, 6), label="synced")):
        identity, flags = data.draw(identities), data.draw(flag_sets)
        ids = (pair.add(FAR, identity, flags), pair.add(NEAR, identity, flags))
        pair.records.append(Record(ids, flags, identity))

    # A crash left copies pending: the intent is recorded, the copy may or may not exist.
    for _ in range(data.draw(st.integers(0, 3), label="pending")):
        source = data.draw(st.sampled_from(SIDES))
        identity, flags = data.draw(identities), data.draw(flag_sets)
        id = pair.add(source, identity, flags)
        # The journal may hold the intent without an identity (a copy planned without one).
        journaled = identity if data.draw(st.booleans(), label="intent has identity") else None
        pair.records.append(Record(pair_ids(source, id, ""), flags, journaled))
        if data.draw(st.booleans(), label="copy happened"):
            pair.add(source.other, identity, flags)

    mode = data.draw(st.sampled_from(["plain", "plain", "lost state", "uidvalidity"]))
    if mode == "lost state":
        pair.records.clear()
    elif mode == "uidvalidity":
        # Every id on that side (rarely: on both) is new; the engine voids them in the records.
        renumbered = data.draw(st.sampled_from([(FAR,), (NEAR,), (FAR,), (NEAR,), SIDES]))
        for side in renumbered:
            old = pair.msgs[side].copy()
            pair.msgs[side].clear()
            pair.next_id[side] += 100
            for m in old.values():
                pair.add(side, m.identity, m.flags)
            pair.records[:] = [
                Record(pair_ids(side, "", r.ids[side.other]), r.flags, r.identity)
                for r in pair.records
            ]

    # The user works on both sides.
    for side in SIDES:
        for id in list(pair.msgs[side]):
            action = data.draw(st.sampled_from(["keep", "keep", "flags", "delete"]))
            if action == "flags":
                m = pair.msgs[side][id]
                toggled = data.draw(flag_sets.filter(bool), label="toggle")
                pair.msgs[side][id] = Stored(m.identity, m.flags ^ toggled)
            elif action == "delete":
                del pair.msgs[side][id]
        for _ in range(data.draw(st.integers(0, 3), label="new")):
            pair.add(side, data.draw(identities), data.draw(flag_sets))
    for _ in range(data.draw(st.integers(0, 2), label="new on both")):
        identity = data.draw(identities)
        for side in SIDES:
            pair.add(side, identity, data.draw(flag_sets))

    # Some snapshots carry identities already (Maildir names, a cache), most do not.
    for side in SIDES:
        for id in pair.msgs[side]:
            if data.draw(st.booleans(), label="identity shown"):
                pair.shown[side].add(id)
    return pair


# --- the expected outcome ----------------------------------------------------------------------


def merge(base: Flags, far: Flags, near: Flags) -> Flags:
    """Per flag: a side that changed it since ``base`` wins (written independently of core)."""
    out = set()
    for flag in base | far | near:
        changed = [flag in now for now in (far, near) if (flag in now) != (flag in base)]
        if changed[0] if changed else flag in base:
            out.add(flag)
    return frozenset(out)


def expected_count(before: Pair, identity: Identity) -> int:
    """How many messages with ``identity`` each side holds after the sync.

    Pairs whose record has both ids survive if both messages do (else the survivor is
    deleted).  A half record whose message survives ends as one pair (its twin found, or
    copied); a half record's twin is taken from the other side's unrecorded messages with
    that identity, also when its own message is gone (the twin is then deleted).  What is
    left unrecorded pairs off, and the surplus of either side is copied: max, not sum.
    """

    def known(r: Record) -> Side:
        return FAR if r.ids[FAR] else NEAR

    def present(side: Side, id: str) -> bool:
        return id in before.msgs[side]

    def identity_of(r: Record) -> Identity | None:
        """A half record without an identity goes by its message's, if it still exists."""
        if r.identity is not None or all(r.ids) or not any(r.ids):
            return r.identity
        m = before.msgs[known(r)].get(r.ids[known(r)])
        return m.identity if m is not None else None

    records = [r for r in before.records if identity_of(r) == identity]
    full = [r for r in records if all(r.ids)]
    half = [r for r in records if any(r.ids) and not all(r.ids)]

    alive_pairs = sum(1 for r in full if present(FAR, r.ids[FAR]) and present(NEAR, r.ids[NEAR]))
    alive_half = sum(1 for r in half if present(known(r), r.ids[known(r)]))
    recorded = [{r.ids[s] for r in before.records} for s in SIDES]
    unrecorded = [
        sum(
            1
            for id, m in before.msgs[s].items()
            if m.identity == identity and id not in recorded[s]
        )
        for s in SIDES
    ]
    # Half records known on one side take their twins from the other side's unrecorded.
    claimants = [sum(1 for r in half if known(r) is s.other) for s in SIDES]
    rest = [unrecorded[s] - min(unrecorded[s], claimants[s]) for s in SIDES]
    return alive_pairs + alive_half + max(rest)


def expected_flags(before: Pair, ids: tuple[str, str]) -> Flags:
    """The flags a final pair must have, from what both sides and the records held before."""
    far, near = (before.msgs[s].get(ids[s]) for s in SIDES)
    if far is None or near is None:
        # One side is a copy made by this sync: it has the source's flags.
        source = far or near
        assert source is not None, f"pair {ids} of two messages that did not exist"
        return source.flags
    named = [r for r in before.records if any(r.ids[s] == ids[s] for s in SIDES)]
    if not named:
        return far.flags | near.flags  # a new pair: nothing is lost
    (record,) = named
    return merge(record.flags, far.flags, near.flags)


def deleted_by_user(before: Pair) -> set[Identity]:
    """Identities with a record (full or half) whose message is gone from a side it named."""
    return {
        r.identity
        for r in before.records
        if r.identity is not None
        and any(r.ids[s] and r.ids[s] not in before.msgs[s] for s in SIDES)
    }


def snapshot_copy(pair: Pair) -> Pair:
    return Pair(
        (dict(pair.msgs[FAR]), dict(pair.msgs[NEAR])),
        list(pair.records),
        list(pair.next_id),
        (set(pair.shown[FAR]), set(pair.shown[NEAR])),
    )


# --- the properties ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_sync_converges_and_loses_nothing(data: DataObject) -> None:
    pair = build(data)
    before = snapshot_copy(pair)

    plan = plan_for(pair)
    # A delete only follows a record whose message the other side had and has no more.
    for d in plan.deletes:
        vanished = d.record.ids[d.side.other]
        assert vanished and vanished not in before.msgs[d.side.other], d
        assert any(r.ids[d.side.other] == vanished for r in before.records), d
    apply(pair, plan)

    # Both sides hold the same messages, each named by exactly one complete record.
    assert pair.count(FAR) == pair.count(NEAR)
    for side in SIDES:
        named = Counter(r.ids[side] for r in pair.records)
        assert all(r.ids[FAR] and r.ids[NEAR] for r in pair.records)
        assert named == Counter(pair.msgs[side].keys())
    for r in pair.records:
        far, near = pair.msgs[FAR][r.ids[FAR]], pair.msgs[NEAR][r.ids[NEAR]]
        assert far.identity == near.identity == r.identity
        assert far.flags == near.flags == r.flags
        assert r.flags == expected_flags(before, r.ids), f"flags of {r.ids}"

    # Exactly the messages the records and the unrecorded messages call for.
    everything = before.count(FAR) | before.count(NEAR) | pair.count(FAR)
    for identity in everything:
        assert pair.count(FAR)[identity] == expected_count(before, identity), identity

    # Nothing lost that the user did not delete.
    gone = deleted_by_user(before)
    for side in SIDES:
        for m in before.msgs[side].values():
            if m.identity not in gone:
                assert pair.count(FAR)[m.identity] >= 1 and pair.count(NEAR)[m.identity] >= 1

    # A second sync has nothing to do, whatever identities the snapshots carry.
    for shown in ((set(), set()), (set(pair.msgs[FAR]), set(pair.msgs[NEAR]))):
        pair.shown = shown
        again = reconcile(pair.records, pair.snapshot(FAR), pair.snapshot(NEAR))
        assert isinstance(again, Plan), again
        assert again.empty, again


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_duplicates_among_unrecorded_messages(data: DataObject) -> None:
    """With no records, each identity ends with max(far, near) copies on both sides."""
    pair = Pair()
    for side in SIDES:
        for _ in range(data.draw(st.integers(0, 6), label="messages")):
            pair.add(side, data.draw(identities), data.draw(flag_sets))
    before = snapshot_copy(pair)
    plan = plan_for(pair)
    apply(pair, plan)
    for identity in before.count(FAR) | before.count(NEAR):
        most = max(before.count(FAR)[identity], before.count(NEAR)[identity])
        assert pair.count(FAR)[identity] == pair.count(NEAR)[identity] == most
    assert len(plan.copies) == sum(
        abs(before.count(FAR)[i] - before.count(NEAR)[i])
        for i in before.count(FAR) | before.count(NEAR)
    )
