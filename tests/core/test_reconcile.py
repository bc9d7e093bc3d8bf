"""The decision table of ``reconcile``, one named scenario per row (and then some).

Each scenario is data: the records of the last sync, what each side holds now, and
the plan expected, written as a sorted list of one-line summaries:

    update F=N [flags]          the record of a pair that stays a pair, with new flags
    pair F=N [flags]            a new pair (no record before, or a half record completed)
    edit far|near ID +a -b      flags to add and remove on one side's message
    copy far|near:ID [flags]    copy that message to the other side (" for F=N": completes
                                that half record)
    delete far|near:ID          delete that message (gone from the other side)
    forget F=N                  drop that record
    need far:{...} near:{...}   NeedIdentities instead of a plan

Messages are written ``msg(id, flags, identity)``: flags as a space-separated string,
identity as a short label ("a"), standing for one message's content.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailtide.core.model import Identity, MessageInfo, Record, Side
from mailtide.core.reconcile import (
    Copy,
    Delete,
    FlagEdit,
    Forget,
    MassDelete,
    NeedIdentities,
    Plan,
    Update,
    mass_deletes,
    merge_flags,
    reconcile,
)

# --- the notation -------------------------------------------------------------------------


def ident(label: str) -> Identity:
    return Identity(
        message_id=f"<{label}@example.org>", size=1000 + len(label), header_digest=label
    )


def flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


def msg(id: str, flag_text: str = "", label: str | None = None) -> MessageInfo:
    return MessageInfo(id, flags(flag_text), identity=ident(label) if label else None)


def rec(far: str, near: str, flag_text: str = "", label: str | None = None) -> Record:
    return Record((far, near), flags(flag_text), ident(label) if label else None)


def _side(side: Side) -> str:
    return "far" if side is Side.FAR else "near"


def _flags(f: frozenset[str]) -> str:
    return "[" + " ".join(sorted(f)) + "]"


def _pair(r: Record) -> str:
    return f"{r.ids[0]}={r.ids[1]}"


def summary(result: Plan | NeedIdentities) -> list[str]:
    """The plan as sorted one-line summaries (see the module doc)."""
    if isinstance(result, NeedIdentities):
        far, near = (",".join(sorted(ids)) for ids in result.ids)
        return [f"need far:{{{far}}} near:{{{near}}}"]
    lines = []
    for u in result.updates:
        same = u.old is not None and u.old.ids == u.new.ids
        lines.append(f"{'update' if same else 'pair'} {_pair(u.new)} {_flags(u.new.flags)}")
        for e in u.edits:
            change = " ".join(
                [*(f"+{f}" for f in sorted(e.add)), *(f"-{f}" for f in sorted(e.remove))]
            )
            lines.append(f"edit {_side(e.side)} {e.id} {change}")
    for c in result.copies:
        completes = f" for {_pair(c.record)}" if c.record is not None else ""
        lines.append(f"copy {_side(c.source)}:{c.id} {_flags(c.flags)}{completes}")
    for d in result.deletes:
        lines.append(f"delete {_side(d.side)}:{d.id}")
    for f in result.forgets:
        lines.append(f"forget {_pair(f.record)}")
    return sorted(lines)


@dataclass(frozen=True)
class Scenario:
    name: str
    base: list[Record]
    far: list[MessageInfo]
    near: list[MessageInfo]
    expected: list[str]


S = "\\Seen"
F = "\\Flagged"

SCENARIOS = [
    # --- a pair on both sides: flags merge per flag against the record ---------------------
    Scenario("unchanged", [rec("1", "a", S)], [msg("1", S)], [msg("a", S)], []),
    Scenario(
        "flag added on far",
        [rec("1", "a")],
        [msg("1", S)],
        [msg("a")],
        ["edit near a +\\Seen", "update 1=a [\\Seen]"],
    ),
    Scenario(
        "flag added on near",
        [rec("1", "a")],
        [msg("1")],
        [msg("a", F)],
        ["edit far 1 +\\Flagged", "update 1=a [\\Flagged]"],
    ),
    Scenario(
        "flag removed on near",
        [rec("1", "a", S)],
        [msg("1", S)],
        [msg("a")],
        ["edit far 1 -\\Seen", "update 1=a []"],
    ),
    Scenario(
        "flag removed on far",
        [rec("1", "a", f"{S} {F}")],
        [msg("1", S)],
        [msg("a", f"{S} {F}")],
        ["edit near a -\\Flagged", "update 1=a [\\Seen]"],
    ),
    Scenario(
        "different flags changed on both sides",
        [rec("1", "a")],
        [msg("1", S)],
        [msg("a", F)],
        [
            "edit far 1 +\\Flagged",
            "edit near a +\\Seen",
            "update 1=a [\\Flagged \\Seen]",
        ],
    ),
    Scenario(
        "same flag added on both sides: agreement, no edit",
        [rec("1", "a")],
        [msg("1", S)],
        [msg("a", S)],
        ["update 1=a [\\Seen]"],
    ),
    Scenario(
        "same flag removed on both sides: agreement, no edit",
        [rec("1", "a", S)],
        [msg("1")],
        [msg("a")],
        ["update 1=a []"],
    ),
    Scenario(
        "one flag removed on far, another added on near",
        [rec("1", "a", S)],
        [msg("1")],
        [msg("a", f"{S} {F}")],
        ["edit far 1 +\\Flagged", "edit near a -\\Seen", "update 1=a [\\Flagged]"],
    ),
    Scenario(
        "keyword added on near",
        [rec("1", "a", S)],
        [msg("1", S)],
        [msg("a", f"{S} $Forwarded")],
        ["edit far 1 +$Forwarded", "update 1=a [$Forwarded \\Seen]"],
    ),
    Scenario(
        "keyword removed on far",
        [rec("1", "a", "Work $Junk")],
        [msg("1", "$Junk")],
        [msg("a", "Work $Junk")],
        ["edit near a -Work", "update 1=a [$Junk]"],
    ),
    Scenario(
        "keyword added on far, removed on near",
        [rec("1", "a", "Work")],
        [msg("1", "Work $Forwarded")],
        [msg("a")],
        ["edit far 1 -Work", "edit near a +$Forwarded", "update 1=a [$Forwarded]"],
    ),
    # --- deletions ---------------------------------------------------------------------------
    Scenario("deleted on near", [rec("1", "a")], [msg("1")], [], ["delete far:1"]),
    Scenario("deleted on far", [rec("1", "a")], [], [msg("a")], ["delete near:a"]),
    Scenario(
        "deleted on near while far changed its flags: the delete wins",
        [rec("1", "a")],
        [msg("1", S)],
        [],
        ["delete far:1"],
    ),
    Scenario("gone on both sides", [rec("1", "a")], [], [], ["forget 1=a"]),
    Scenario(
        "one of many deleted",
        [rec("1", "a"), rec("2", "b"), rec("3", "c")],
        [msg("1"), msg("2"), msg("3")],
        [msg("a"), msg("c")],
        ["delete far:2"],
    ),
    # --- half records: pending upload (far id "") ---------------------------------------------
    Scenario(
        "pending upload that happened: twin found on far by identity",
        [rec("", "a", S, "m")],
        [msg("9", S, "m")],
        [msg("a", S, "m")],
        ["pair 9=a [\\Seen]"],
    ),
    Scenario(
        "pending upload that happened, source flags changed since the intent",
        [rec("", "a", S, "m")],
        [msg("9", S, "m")],
        [msg("a", f"{S} {F}", "m")],
        ["edit far 9 +\\Flagged", "pair 9=a [\\Flagged \\Seen]"],
    ),
    Scenario(
        "pending upload that did not happen: copied",
        [rec("", "a", S, "m")],
        [],
        [msg("a", f"{S} Work", "m")],
        ["copy near:a [Work \\Seen] for =a"],
    ),
    Scenario(
        "pending upload that did not happen, an unrelated new message on far",
        [rec("", "a", "", "m")],
        [msg("7", "", "other")],
        [msg("a", "", "m")],
        ["copy far:7 []", "copy near:a [] for =a"],
    ),
    Scenario(
        "pending upload whose source is gone: forget",
        [rec("", "a", S, "m")],
        [],
        [],
        ["forget =a"],
    ),
    Scenario(
        "pending upload whose source is gone but whose copy arrived: pair, then delete",
        [rec("", "a", S, "m")],
        [msg("9", S, "m")],
        [],
        ["delete far:9", "pair 9=a [\\Seen]"],
    ),
    Scenario(
        "pending upload whose twin lacks an identity: ask for it",
        [rec("", "a", S, "m")],
        [msg("9", S)],
        [msg("a", S, "m")],
        ["need far:{9} near:{}"],
    ),
    # --- half records: pending download (near id "") ------------------------------------------
    Scenario(
        "pending download that happened: twin found on near",
        [rec("1", "", "", "m")],
        [msg("1", "", "m")],
        [msg("x", "", "m")],
        ["pair 1=x []"],
    ),
    Scenario(
        "pending download that did not happen: copied",
        [rec("1", "", "", "m")],
        [msg("1", "$Forwarded", "m")],
        [],
        ["copy far:1 [$Forwarded] for 1="],
    ),
    Scenario(
        "pending download whose source is gone: forget",
        [rec("1", "", "", "m")],
        [],
        [],
        ["forget 1="],
    ),
    Scenario(
        "pending download whose source is gone but whose copy arrived: pair, then delete",
        [rec("1", "", "", "m")],
        [],
        [msg("x", "", "m")],
        ["delete near:x", "pair 1=x []"],
    ),
    Scenario(
        "pending download whose twin lacks an identity: ask for it",
        [rec("1", "", "", "m")],
        [msg("1", "", "m")],
        [msg("x")],
        ["need far:{} near:{x}"],
    ),
    # --- half records without an identity (the intent was journaled without one) ----------
    Scenario(
        "pending upload without identity that happened: twin found by the source's identity",
        [rec("", "a", S)],
        [msg("9", S, "m")],
        [msg("a", S, "m")],
        ["pair 9=a [\\Seen]"],
    ),
    Scenario(
        "pending upload without identity, source identity unknown: ask for it",
        [rec("", "a", S)],
        [msg("9", S, "m")],
        [msg("a", S)],
        ["need far:{} near:{a}"],
    ),
    Scenario(
        "pending upload without identity, nothing unrecorded opposite: copied, no need to ask",
        [rec("", "a", S)],
        [],
        [msg("a", S)],
        ["copy near:a [\\Seen] for =a"],
    ),
    Scenario(
        "pending upload without identity whose source is gone: forget, the twin is not deleted",
        [rec("", "a", S)],
        [msg("9", S, "m")],
        [],
        ["copy far:9 [\\Seen]", "forget =a"],
    ),
    # --- records with no id on either side ----------------------------------------------------
    Scenario(
        "pending download whose far ids became void: forget it, nothing deleted, copied again",
        [rec("", "", "", "m")],
        [msg("101", "", "m")],
        [],
        ["copy far:101 []", "forget ="],
    ),
    Scenario(
        "pending download that happened, far ids void since: forget it, the pair is found",
        [rec("", "", S, "m")],
        [msg("101", S, "m")],
        [msg("x", S, "m")],
        ["forget =", "pair 101=x [\\Seen]"],
    ),
    # --- UIDVALIDITY changed on far: every record half, far ids new -------------------------
    Scenario(
        "UIDVALIDITY re-pair: nothing copied, nothing deleted, flags merged against the record",
        [rec("", "a", S, "m1"), rec("", "b", "", "m2"), rec("", "c", F, "m3")],
        [msg("101", S, "m1"), msg("102", S, "m2"), msg("103", F, "m3")],
        [msg("a", S, "m1"), msg("b", "", "m2"), msg("c", "", "m3")],
        [
            "edit far 103 -\\Flagged",
            "edit near b +\\Seen",
            "pair 101=a [\\Seen]",
            "pair 102=b [\\Seen]",
            "pair 103=c []",
        ],
    ),
    Scenario(
        "UIDVALIDITY re-pair with a message new on far and one deleted on near",
        [rec("", "a", "", "m1"), rec("", "b", "", "m2")],
        [msg("101", "", "m1"), msg("102", "", "m2"), msg("103", "", "m3")],
        [msg("a", "", "m1")],
        ["copy far:103 []", "delete far:102", "pair 101=a []", "pair 102=b []"],
    ),
    Scenario(
        "UIDVALIDITY changed on near: re-pair the other way round",
        [rec("1", "", S, "m1"), rec("2", "", "", "m2")],
        [msg("1", S, "m1"), msg("2", "", "m2")],
        [msg("x", S, "m1"), msg("y", F, "m2")],
        ["edit far 2 +\\Flagged", "pair 1=x [\\Seen]", "pair 2=y [\\Flagged]"],
    ),
    # --- no records ----------------------------------------------------------------------------
    Scenario(
        "lost state: identical messages on both sides pair, flags united",
        [],
        [msg("1", S, "m1"), msg("2", "", "m2")],
        [msg("a", "", "m1"), msg("b", F, "m2")],
        [
            "edit far 2 +\\Flagged",
            "edit near a +\\Seen",
            "pair 1=a [\\Seen]",
            "pair 2=b [\\Flagged]",
        ],
    ),
    Scenario(
        "lost state with messages only on one side each",
        [],
        [msg("1", "", "m1"), msg("2", "", "m2")],
        [msg("a", "", "m1"), msg("c", "", "m3")],
        ["copy far:2 []", "copy near:c []", "pair 1=a []"],
    ),
    Scenario(
        "duplicates on far: one pair, one copy",
        [],
        [msg("1", "", "m"), msg("2", "", "m")],
        [msg("a", "", "m")],
        ["copy far:2 []", "pair 1=a []"],
    ),
    Scenario(
        "duplicates on near: one pair, one copy",
        [],
        [msg("1", "", "m")],
        [msg("a", "", "m"), msg("b", "", "m")],
        ["copy near:b []", "pair 1=a []"],
    ),
    Scenario(
        "duplicates on both sides pair off",
        [],
        [msg("1", "", "m"), msg("2", "", "m")],
        [msg("a", "", "m"), msg("b", "", "m")],
        ["pair 1=a []", "pair 2=b []"],
    ),
    Scenario(
        "initial sync into an empty side needs no identities",
        [],
        [msg("1", S), msg("2"), msg("3", "$Forwarded")],
        [],
        ["copy far:1 [\\Seen]", "copy far:2 []", "copy far:3 [$Forwarded]"],
    ),
    Scenario(
        "initial upload from a full Maildir needs no identities",
        [],
        [],
        [msg("a", S), msg("b")],
        ["copy near:a [\\Seen]", "copy near:b []"],
    ),
    Scenario(
        "new on one side only, beside records: no identities needed",
        [rec("1", "a")],
        [msg("1"), msg("2")],
        [msg("a")],
        ["copy far:2 []"],
    ),
    Scenario(
        "new on both sides without identities: ask for the new ones only",
        [rec("1", "a")],
        [msg("1"), msg("2"), msg("3", "", "m3")],
        [msg("a"), msg("b")],
        ["need far:{2} near:{b}"],
    ),
    Scenario(
        "new on both sides, different messages: copied both ways",
        [rec("1", "a")],
        [msg("1"), msg("2", "", "m2")],
        [msg("a"), msg("b", S, "m3")],
        ["copy far:2 []", "copy near:b [\\Seen]"],
    ),
    Scenario(
        "the same message new on both sides: paired",
        [rec("1", "a")],
        [msg("1"), msg("2", "", "m2")],
        [msg("a"), msg("b", S, "m2")],
        ["edit far 2 +\\Seen", "pair 2=b [\\Seen]"],
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_decision_table(case: Scenario) -> None:
    assert summary(reconcile(case.base, case.far, case.near)) == sorted(case.expected)


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_sides_are_symmetric(case: Scenario) -> None:
    """The same scenario with far and near swapped gives the mirrored plan."""
    mirrored = reconcile(
        [Record((r.ids[1], r.ids[0]), r.flags, r.identity) for r in case.base],
        case.near,
        case.far,
    )
    assert summary(mirrored) == sorted(_mirror(line) for line in case.expected)


def _mirror(line: str) -> str:
    word, _, rest = line.partition(" ")
    if word in ("update", "pair", "forget"):
        pair, _, tail = rest.partition(" ")
        far, near = pair.split("=")
        return f"{word} {near}={far} {tail}".rstrip()
    if word == "need":
        far, near = rest.split(" ")
        return f"need far:{near.removeprefix('near:')} near:{far.removeprefix('far:')}"
    swapped = {"far": "near", "near": "far"}
    if word == "copy" and " for " in rest:
        head, _, pair = rest.partition(" for ")
        far, near = pair.split("=")
        rest = f"{head} for {near}={far}"
    side, sep, tail = rest.partition(":" if word in ("copy", "delete") else " ")
    return f"{word} {swapped[side]}{sep}{tail}"


# --- details the summaries do not show ------------------------------------------------------


def test_a_completed_half_record_is_replaced_and_keeps_its_identity() -> None:
    half = rec("", "a", S, "m")
    plan = reconcile([half], [msg("9", S, "m")], [msg("a", S, "m")])
    assert plan == Plan(updates=(Update(half, rec("9", "a", S, "m")),))


def test_pair_then_delete_stores_the_pair_the_delete_forgets() -> None:
    half = rec("", "a", S, "m")
    plan = reconcile([half], [msg("9", S, "m")], [])
    assert isinstance(plan, Plan)
    full = rec("9", "a", S, "m")
    assert plan.updates == (Update(half, full),)
    assert plan.deletes == (Delete(Side.FAR, "9", full),)


def test_a_copy_carries_the_half_record_it_completes_and_its_identity() -> None:
    half = rec("", "a", S, "m")
    plan = reconcile([half], [], [msg("a", S)])
    assert plan == Plan(copies=(Copy(Side.NEAR, "a", flags(S), ident("m"), half),))


def test_a_new_pair_has_the_identity_and_united_flags() -> None:
    plan = reconcile([], [msg("1", S, "m")], [msg("a", F, "m")])
    assert isinstance(plan, Plan)
    (update,) = plan.updates
    assert update.old is None
    assert update.new == rec("1", "a", f"{S} {F}", "m")
    assert set(update.edits) == {
        FlagEdit(Side.FAR, "1", flags(F), flags("")),
        FlagEdit(Side.NEAR, "a", flags(S), flags("")),
    }


def test_a_record_learns_an_identity_it_lacked() -> None:
    old = rec("1", "a")
    plan = reconcile([old], [msg("1", "", "m")], [msg("a")])
    assert isinstance(plan, Plan)
    assert plan.updates == (Update(old, rec("1", "a", "", "m")),)
    assert not plan.empty  # the record must be stored


def test_copies_keep_arrival_order() -> None:
    plan = reconcile([], [msg("10"), msg("9"), msg("100"), msg("2")], [msg("b"), msg("a")])
    assert isinstance(plan, NeedIdentities)  # both sides have new messages
    plan = reconcile([], [msg("10"), msg("9"), msg("100"), msg("2")], [])
    assert isinstance(plan, Plan)
    assert [c.id for c in plan.copies] == ["2", "9", "10", "100"]


def test_need_identities_leaves_recorded_messages_alone() -> None:
    result = reconcile(
        [rec("1", "a"), rec("", "b", "", "m")],
        [msg("1"), msg("5")],
        [msg("a"), msg("b", "", "m")],
    )
    assert result == NeedIdentities((frozenset({"5"}), frozenset()))


def test_plan_counts() -> None:
    plan = reconcile(
        [rec("1", "a"), rec("2", "b"), rec("3", "c")],
        [msg("1"), msg("4")],
        [msg("b"), msg("c")],
    )
    assert isinstance(plan, Plan)
    assert summary(plan) == ["copy far:4 []", "delete far:1", "delete near:b", "delete near:c"]
    assert (plan.deletes_on(Side.FAR), plan.deletes_on(Side.NEAR)) == (1, 2)


def test_empty_plan() -> None:
    assert Plan().empty
    same = rec("1", "a", S)
    assert Plan(updates=(Update(same, same),)).empty
    assert not Plan(updates=(Update(same, rec("1", "a")),)).empty
    assert not Plan(forgets=(Forget(same),)).empty
    assert not Plan(deletes=(Delete(Side.FAR, "1", same),)).empty
    assert not Plan(copies=(Copy(Side.FAR, "1", flags("")),)).empty


@pytest.mark.parametrize(
    ("base", "far", "near", "expected"),
    [
        ("", "", "", ""),
        ("S", "S", "S", "S"),
        ("S", "", "S", ""),
        ("S", "S", "", ""),
        ("", "S", "", "S"),
        ("", "", "S", "S"),
        ("S", "", "", ""),
        ("", "S", "S", "S"),
        ("S F", "F W", "S", "W"),
    ],
)
def test_merge_flags(base: str, far: str, near: str, expected: str) -> None:
    assert merge_flags(flags(base), flags(far), flags(near)) == flags(expected)


# --- the mass-delete guard -----------------------------------------------------------------


def _deleting(far: int, near: int) -> Plan:
    r = rec("1", "a")
    return Plan(
        deletes=tuple(Delete(Side.FAR, str(i), r) for i in range(far))
        + tuple(Delete(Side.NEAR, str(i), r) for i in range(near))
    )


@pytest.mark.parametrize(
    ("deletes", "held", "share", "floor", "tripped"),
    [
        pytest.param((0, 0), (0, 0), 0.5, 5, [], id="nothing"),
        pytest.param((5, 0), (5, 5), 0.5, 5, [], id="all of a small mailbox: at the floor"),
        pytest.param((6, 0), (6, 6), 0.5, 5, [(Side.FAR, 6, 6)], id="all, above the floor"),
        pytest.param((50, 0), (100, 100), 0.5, 5, [], id="exactly half: not more"),
        pytest.param((51, 0), (100, 100), 0.5, 5, [(Side.FAR, 51, 100)], id="more than half"),
        pytest.param((0, 51), (100, 100), 0.5, 5, [(Side.NEAR, 51, 100)], id="near side"),
        pytest.param(
            (60, 70),
            (100, 100),
            0.5,
            5,
            [(Side.FAR, 60, 100), (Side.NEAR, 70, 100)],
            id="both sides",
        ),
        pytest.param((60, 40), (100, 100), 0.5, 5, [(Side.FAR, 60, 100)], id="one of two"),
        pytest.param((11, 0), (100, 100), 0.1, 5, [(Side.FAR, 11, 100)], id="a smaller share"),
        pytest.param((30, 0), (100, 100), 0.5, 40, [], id="a higher floor"),
        pytest.param((6, 0), (200, 7), 0.5, 5, [], id="held counted per side"),
    ],
)
def test_mass_deletes(
    deletes: tuple[int, int],
    held: tuple[int, int],
    share: float,
    floor: int,
    tripped: list[tuple[Side, int, int]],
) -> None:
    plan = _deleting(*deletes)
    expected = [MassDelete(*t) for t in tripped]
    assert mass_deletes(plan, held, share, floor) == expected
    assert mass_deletes(plan, {Side.FAR: held[0], Side.NEAR: held[1]}, share, floor) == expected


def test_mass_delete_says_why() -> None:
    assert (
        str(MassDelete(Side.FAR, 60, 100)) == "would delete 60 of 100 messages on the remote side"
    )
    assert str(MassDelete(Side.NEAR, 6, 6)) == "would delete 6 of 6 messages on the local side"


def test_mass_delete_of_a_real_plan() -> None:
    base = [rec(str(i), f"n{i}") for i in range(10)]
    plan = reconcile(base, [msg(str(i)) for i in range(10)], [msg("n0"), msg("n1")])
    assert isinstance(plan, Plan)
    assert mass_deletes(plan, (10, 2), 0.5, 5) == [MassDelete(Side.FAR, 8, 10)]
    assert mass_deletes(plan, (10, 2), 0.5, 8) == []


# --- restore_deleted: the way back from a deletion made by mistake -----------------------------


def test_restore_deleted_turns_every_deletion_into_a_copy_back_on_both_sides() -> None:
    from mailtide.core.reconcile import restore_deleted

    base = [rec("1", "a", "\\Seen", "one"), rec("2", "b", "", "two"), rec("3", "c", "", "three")]
    # "1" gone from near, "b" gone from far, "3"/"c" still on both sides
    plan = reconcile(
        base,
        [msg("1", "\\Seen", "one"), msg("3", "", "three")],
        [msg("b", "", "two"), msg("c", "", "three")],
    )
    assert isinstance(plan, Plan)
    assert {(d.side, d.id) for d in plan.deletes} == {(Side.FAR, "1"), (Side.NEAR, "b")}
    back = restore_deleted(plan)
    assert back.deletes == ()
    assert {(c.source, c.id) for c in back.copies} == {(Side.FAR, "1"), (Side.NEAR, "b")}
    assert {f.record.ids for f in back.forgets} == {("1", "a"), ("2", "b")}
    # applied: the copies recreate each message on the side it was deleted from, and the
    # plan of the next run pairs nothing twice (each copy is an unrecorded message now)
    again = reconcile(
        [r for r in base if r.ids == ("3", "c")],
        [msg("1", "\\Seen", "one"), msg("3", "", "three"), msg("9", "", "two")],
        [msg("b", "", "two"), msg("c", "", "three"), msg("z", "\\Seen", "one")],
    )
    assert isinstance(again, Plan) and not again.copies and not again.deletes
    assert restore_deleted(Plan()) == Plan()


def test_a_record_from_before_client_lines_were_ignored_still_finds_its_message() -> None:
    """A half record written by an older mailtide holds the identity with a Status: line in
    its digest; the message, identified now, is found under that legacy form: paired, not
    copied a second time."""
    from mailtide.core.identity import header_section, identity_of

    raw = b"Message-ID: <s@x>\r\nStatus: RO\r\nSubject: s\r\n\r\nbody\r\n"
    now = identity_of(header_section(raw), len(raw))
    assert now.legacy is not None
    half = Record(("7", ""), frozenset({"\\Seen"}), now.legacy)
    far = [MessageInfo("7", frozenset({"\\Seen"}), identity=now)]
    near = [MessageInfo("n1", frozenset({"\\Seen"}), identity=now)]
    plan = reconcile([half], far, near)
    assert isinstance(plan, Plan)
    assert plan.copies == ()
    (update,) = plan.updates
    assert update.new.ids == ("7", "n1")
