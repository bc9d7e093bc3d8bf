"""A flag update a killed run was carrying: which base the next merge starts from."""

from __future__ import annotations

from mailtide.core.model import Flags, PendingFlags, Record, Side
from mailtide.core.reconcile import merge_flags, settle_pending

SEEN, ANSWERED, FLAGGED = "\\Seen", "\\Answered", "\\Flagged"


def f(*names: str) -> Flags:
    return frozenset(names)


def outcome(record: Record, far: Flags, near: Flags) -> Flags:
    """Where both sides end: the merge from the settled base."""
    base = settle_pending(record, [far, near])
    return merge_flags(base.flags, far, near)


# The server (FAR) set \Answered; the run carried it to the Maildir (NEAR) and died unrecorded.
CARRYING = Record(
    ("1", "a"), f(SEEN), pending=PendingFlags(f(SEEN, ANSWERED), frozenset({Side.NEAR}))
)


def test_carried_then_undone_where_it_came_from_stays_undone() -> None:
    assert outcome(CARRYING, far=f(SEEN), near=f(SEEN, ANSWERED)) == f(SEEN)


def test_carried_and_untouched_settles_as_carried() -> None:
    assert outcome(CARRYING, far=f(SEEN, ANSWERED), near=f(SEEN, ANSWERED)) == f(SEEN, ANSWERED)
    assert settle_pending(CARRYING, [f(SEEN, ANSWERED)] * 2) == Record(
        ("1", "a"), f(SEEN, ANSWERED)
    )


def test_not_carried_is_carried_again() -> None:
    assert outcome(CARRYING, far=f(SEEN, ANSWERED), near=f(SEEN)) == f(SEEN, ANSWERED)


def test_not_carried_then_undone_stays_undone() -> None:
    assert outcome(CARRYING, far=f(SEEN), near=f(SEEN)) == f(SEEN)


def test_carried_then_changed_again_on_the_changed_side_wins() -> None:
    assert outcome(CARRYING, far=f(SEEN, ANSWERED), near=f(ANSWERED)) == f(ANSWERED)


def test_half_carried_update_of_both_sides_is_finished() -> None:
    """Both sides changed (far added \\Answered, near \\Flagged); only far was written."""
    both = Record(
        ("1", "a"), f(SEEN), pending=PendingFlags(f(SEEN, ANSWERED, FLAGGED), frozenset(Side))
    )
    assert outcome(both, far=f(SEEN, ANSWERED, FLAGGED), near=f(SEEN, FLAGGED)) == f(
        SEEN, ANSWERED, FLAGGED
    )


def test_case_of_a_keyword_does_not_matter() -> None:
    record = Record(("1", "a"), f(), pending=PendingFlags(f("Work"), frozenset({Side.FAR})))
    assert settle_pending(record, [f("work"), f("Work")]).flags == f("Work")


def test_a_side_without_the_message_is_not_carried() -> None:
    assert settle_pending(CARRYING, [f(SEEN), None]).flags == f(SEEN)
