"""Properties of ``find_moves``: across the mailbox pairs of a simulated account, a move changes
how the plans are carried out, never what the folders hold.

Each folder is a ``Pair`` of ``test_reconcile_props`` (synced, then changed by the user on both
sides); on top of that the user moves messages between folders (and out of a folder and back
into it under a new id) on either side, sometimes changing their flags too.  The account is
synced twice from the same start: once with every plan carried out as it is (a move is a
delete plus a copy), once with the moves found by the pass carried first (the message moved
on the carrying side, its record carried into the target folder) and the rest planned again.
Then:

- every folder holds the same messages (multiset of identities) on each side either way;
- both sides of every folder agree, and a further reconcile has nothing to do;
- no body is copied for a move: the run with moves copies exactly as many fewer messages as
  it made moves between folders, and deletes as many fewer;
- each departure and each arrival is used at most once.
"""

from __future__ import annotations

import copy
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject

from core.test_reconcile_props import (
    FAR,
    NEAR,
    Pair,
    Stored,
    apply,
    flag_sets,
    identities,
    plan_for,
)
from mailtide.core.model import SIDES, Identity, Record, pair_ids
from mailtide.core.moves import Move, MoveIdentities, find_moves
from mailtide.core.reconcile import Plan, reconcile

FOLDERS = ("INBOX", "Archive", "Trash")
Account = dict[str, Pair]


def build(data: DataObject) -> Account:
    account: Account = {}
    for name in FOLDERS:
        pair = Pair()
        for _ in range(data.draw(st.integers(0, 4), label="synced")):
            identity, flags = data.draw(identities), data.draw(flag_sets)
            ids = (pair.add(FAR, identity, flags), pair.add(NEAR, identity, flags))
            pair.records.append(Record(ids, flags, identity))
        account[name] = pair
    # Moves on either side (to the same folder too: re-uploaded under a new id).
    for _ in range(data.draw(st.integers(0, 6), label="moves")):
        side = data.draw(st.sampled_from(SIDES))
        origin = data.draw(st.sampled_from(FOLDERS))
        held = sorted(account[origin].msgs[side])
        if not held:
            continue
        id = data.draw(st.sampled_from(held))
        target = data.draw(st.sampled_from(FOLDERS))
        m = account[origin].msgs[side].pop(id)
        flags = m.flags ^ data.draw(flag_sets) if data.draw(st.booleans()) else m.flags
        account[target].add(side, m.identity, flags)
    # Other work of the user: flags, deletions, new mail.
    for pair in account.values():
        for side in SIDES:
            for id in sorted(pair.msgs[side]):
                action = data.draw(st.sampled_from(["keep", "keep", "keep", "flags", "delete"]))
                if action == "flags":
                    m = pair.msgs[side][id]
                    pair.msgs[side][id] = Stored(m.identity, m.flags ^ data.draw(flag_sets))
                elif action == "delete":
                    del pair.msgs[side][id]
            for _ in range(data.draw(st.integers(0, 2), label="new")):
                pair.add(side, data.draw(identities), data.draw(flag_sets))
            for id in pair.msgs[side]:
                if data.draw(st.booleans(), label="identity shown"):
                    pair.shown[side].add(id)
    return account


def moves_of(account: Account) -> list[Move]:
    """Plan every pair, run the pass, answering its questions about identities as the engine."""
    for _ in range(3):
        plans = {name: plan_for(pair) for name, pair in account.items()}
        found = find_moves(plans)
        if not isinstance(found, MoveIdentities):
            return found
        assert any(any(ids) for ids in found.ids.values()), "asked for nothing"
        for name, ids in found.ids.items():
            for side in SIDES:
                assert ids[side] <= account[name].msgs[side].keys()
                assert not ids[side] & account[name].shown[side], "asked again"
                account[name].shown[side].update(ids[side])
    raise AssertionError("the pass keeps asking for identities")


def carry(account: Account, move: Move) -> None:
    """What the engine does for a move: the carrier's message goes to the target (a new id
    there), origin's record is dropped, the target gets a record of the moved pair whose
    flags are origin's record's (the base the next reconcile merges against)."""
    origin, target = account[move.origin], account[move.target]
    c = move.carrier
    origin.records.remove(move.record)
    if move.intent is not None:
        target.records.remove(move.intent)
    if move.repair:
        new_id = move.id
    else:
        m = origin.msgs[c].pop(move.id)
        assert m.identity == move.identity
        new_id = target.add(c, m.identity, m.flags)
    assert target.msgs[c.other][move.arrived].identity == move.identity
    target.records.append(
        Record(pair_ids(c, new_id, move.arrived), move.record.flags, move.identity)
    )


def sync(account: Account) -> int:
    """Plan and carry out every pair; the number of bodies copied."""
    copies = 0
    for pair in account.values():
        plan = plan_for(pair)
        copies += len(plan.copies)
        apply(pair, plan)
    return copies


def holdings(account: Account) -> dict[str, tuple[Counter[Identity], Counter[Identity]]]:
    return {name: (p.count(FAR), p.count(NEAR)) for name, p in account.items()}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_moves_change_how_never_what(data: DataObject) -> None:
    account = build(data)
    plain = copy.deepcopy(account)
    plain_copies = sync(plain)

    moves = moves_of(account)
    for key in ("departures", "arrivals"):
        used = Counter(
            (m.origin, m.carrier, m.id) if key == "departures" else (m.target, m.arrived)
            for m in moves
        )
        assert all(n == 1 for n in used.values()), f"{key} used twice: {used}"
    for move in moves:
        carry(account, move)
    copies = sync(account)

    assert holdings(account) == holdings(plain), "a move changed what the folders hold"
    for name, pair in account.items():
        assert pair.count(FAR) == pair.count(NEAR), name
        again = reconcile(pair.records, pair.snapshot(FAR), pair.snapshot(NEAR))
        assert isinstance(again, Plan) and again.empty, (name, again)
    # each move (and re-pair) saves one copy: its body never crosses
    assert copies == plain_copies - len(moves)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_plain_move_is_found(data: DataObject) -> None:
    """One message moved on one side, nothing else changed: exactly that move, no copy."""
    account: Account = {name: Pair() for name in FOLDERS}
    identity = data.draw(identities)
    flags = data.draw(flag_sets)
    origin, target = data.draw(st.sampled_from(FOLDERS)), data.draw(st.sampled_from(FOLDERS))
    ids = (account[origin].add(FAR, identity, flags), account[origin].add(NEAR, identity, flags))
    account[origin].records.append(Record(ids, flags, identity))
    side = data.draw(st.sampled_from(SIDES))
    m = account[origin].msgs[side].pop(ids[side])
    arrived = account[target].add(side, m.identity, m.flags ^ data.draw(flag_sets))
    (move,) = moves_of(account)
    assert (move.carrier, move.origin, move.target, move.id, move.arrived) == (
        side.other,
        origin,
        target,
        ids[side.other],
        arrived,
    )
    carry(account, move)
    assert sync(account) == 0
