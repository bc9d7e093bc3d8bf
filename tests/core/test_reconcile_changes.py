"""``reconcile`` over only what changed (``changed_view``) plans what ``reconcile`` over every
record and message plans, for random histories (``test_reconcile_props.build``: synced pairs,
crash leftovers, lost state, renumbered sides, then the user's changes on both sides).

The full input is what the engine gives ``reconcile`` when it lists everything: a message as
its side lists it (no identity unless asked for).  The changed input is what the engine gives
when each side said what changed: the messages that are new or whose flags differ from their
record, plus (as a side may say more than changed) some unchanged ones, and the recorded ids
that are gone; or a listing compared with the records as the engine does (``listing_changes``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject

from core.test_reconcile_props import FAR, NEAR, Pair, build
from mailtide.core.model import SIDES, Listing, MessageInfo, Record, Side, listing_digest
from mailtide.core.reconcile import (
    NeedIdentities,
    Plan,
    SideChanges,
    changed_view,
    listing_changes,
    reconcile,
)


def listed(pair: Pair, side: Side) -> list[MessageInfo]:
    """A side as a listing shows it: ids and flags, no identity."""
    return [MessageInfo(id, m.flags, m.identity.size) for id, m in pair.msgs[side].items()]


def changes_of(pair: Pair, side: Side, data: DataObject) -> SideChanges:
    """What the side says changed: everything new or different from its record, plus a
    random share of the rest; and the recorded ids it no longer holds."""
    recorded: dict[str, set[frozenset[str]]] = {}
    for r in pair.records:
        if r.ids[side]:
            recorded.setdefault(r.ids[side], set()).add(r.flags)
    if data.draw(st.booleans(), label="as the engine compares a listing"):
        named = {id: next(iter(f)) if len(f) == 1 else None for id, f in recorded.items()}
        return listing_changes(Listing.of(listed(pair, side)), named, lambda flags: flags)
    changed = {}
    for m in listed(pair, side):
        if recorded.get(m.id) != {m.flags} or data.draw(st.booleans(), label="said anyway"):
            changed[m.id] = m
    gone = frozenset(id for id in recorded if id not in pair.msgs[side])
    return SideChanges(changed, gone)


def plan(
    pair: Pair, records: list[Record], far: list[MessageInfo], near: list[MessageInfo]
) -> Plan:
    """Reconcile, answering NeedIdentities as the engine does (the identities filled in)."""
    lists = [far, near]
    for _ in range(4):
        result = reconcile(records, lists[FAR], lists[NEAR])
        if isinstance(result, Plan):
            return result
        assert isinstance(result, NeedIdentities)
        for side in SIDES:
            lists[side] = [
                MessageInfo(m.id, m.flags, m.size, pair.msgs[side][m.id].identity)
                if m.id in result.ids[side]
                else m
                for m in lists[side]
            ]
    raise AssertionError("reconcile keeps asking for identities")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_reconciling_only_the_changes_plans_what_reconciling_everything_plans(
    data: DataObject,
) -> None:
    pair = build(data)
    full = plan(pair, list(pair.records), listed(pair, FAR), listed(pair, NEAR))
    changes = [changes_of(pair, side, data) for side in SIDES]
    records, far, near = changed_view(pair.records, changes)
    assert plan(pair, records, far, near) == full


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_with_nothing_changed_no_record_is_reconciled(data: DataObject) -> None:
    """The view of a side that changed nothing holds only the records that can decide
    anything on their own: half records and pending updates."""
    pair = build(data)
    changes = [changes_of(pair, side, data) for side in SIDES]
    records, _, _ = changed_view(pair.records, changes)
    for r in records:
        assert (
            r.pending is not None
            or not all(r.ids)
            or any(changes[s].names(r.ids[s]) for s in SIDES)
        )
    quiet = [SideChanges({}), SideChanges({})]
    assert all(not all(r.ids) for r in changed_view(pair.records, quiet)[0])
    assert changed_view([r for r in pair.records if all(r.ids)], quiet) == ([], [], [])


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=4),
        st.tuples(
            st.frozensets(st.sampled_from(["\\Seen", "\\Flagged", "$x", "y"])), st.integers(0, 9)
        ),
    )
)
def test_a_compact_listing_is_the_listing_it_was_made_of(
    held: dict[str, tuple[frozenset[str], int]],
) -> None:
    """The same messages, in order, and the digest the next quick sync compares with."""
    messages = [MessageInfo(id, flags, size) for id, (flags, size) in held.items()]
    listing = Listing.of(messages)
    assert listing.messages() == messages and len(listing) == len(messages)
    assert listing.digest() == listing_digest(messages)
