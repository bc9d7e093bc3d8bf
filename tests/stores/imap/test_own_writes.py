"""The proof that a sync's own writes were the only change to a server mailbox (own_writes.py):
the mod-sequences its writes were told must fill the range from the plan's highest to the
highest told; anything else gives the proof up."""

from __future__ import annotations

from mailtide.stores.base import MailboxStatus
from mailtide.stores.imap.own_writes import OwnWrites

QRESYNC = frozenset({"QRESYNC"})
CAPS = frozenset({"IMAP4REV1", "UIDPLUS", "QRESYNC", "CONDSTORE"})
SINCE = MailboxStatus("7", uidnext=50, highestmodseq=100, count=40)


def started() -> OwnWrites:
    own = OwnWrites.start(SINCE, CAPS, QRESYNC)
    assert own is not None
    return own


def test_writes_that_fill_the_range_give_the_status_after_them() -> None:
    own = started()
    assert own.unchanged_since() == 100
    own.stored(3, 101, frozenset({3, 4}), 100)  # one STORE: one mod-sequence for both
    own.stored(4, 101, frozenset({3, 4}), 100)
    assert own.unchanged_since() == 101
    own.stored(5, 102, frozenset({5}), 101)  # \Deleted
    own.removed(1, False, 103)
    own.added(50, 104)
    own.added(51, 105)
    assert own.status() == MailboxStatus("7", uidnext=52, highestmodseq=105, count=41)


def test_a_gap_in_the_range_is_another_change_and_proves_nothing() -> None:
    own = started()
    own.stored(3, 101, frozenset({3}), 100)
    own.removed(1, False, 103)  # 102 was another client's
    assert own.status() is None
    assert own.unchanged_since() is None  # the next STORE is a plain one


def test_a_store_answer_at_or_below_its_test_is_no_change_of_its_own() -> None:
    """A message whose flags were already as asked keeps (and may report) its mod-sequence."""
    own = started()
    own.stored(3, 90, frozenset({3}), 100)
    assert own.status() is None  # nothing told: nothing to prove
    own.stored(4, 101, frozenset({4}), 100)
    assert own.status() == MailboxStatus("7", 50, 101, 40)


def test_what_the_writes_cannot_account_for_gives_the_proof_up() -> None:
    cases = {
        "a FETCH for a message not stored": lambda o: o.stored(9, 101, frozenset({3}), 100),
        "VANISHED naming another message": lambda o: o.removed(1, True, 101),
        "an expunge without its mod-sequence": lambda o: o.removed(1, False, None),
        "an APPEND without its mod-sequence": lambda o: o.added(50, None),
        "an APPEND without its UID": lambda o: o.added(None, 101),
        "a mod-sequence from before the plan": lambda o: o.removed(1, False, 99),
    }
    for what, write in cases.items():
        own = started()
        write(own)
        own.stored(3, 102, frozenset({3}), 101)  # what follows cannot mend it
        assert own.status() is None, what


def test_an_expunge_that_removed_nothing_tells_nothing() -> None:
    """Its OK's HIGHESTMODSEQ is the mailbox's, which may be another client's change."""
    own = started()
    own.removed(0, False, 101)
    own.stored(3, 102, frozenset({3}), 100)
    assert own.status() is None


def test_a_server_without_qresync_or_uidplus_is_not_counted() -> None:
    assert OwnWrites.start(SINCE, CAPS, frozenset({"CONDSTORE"})) is None
    assert OwnWrites.start(SINCE, CAPS - {"UIDPLUS"}, QRESYNC) is None
    assert OwnWrites.start(MailboxStatus("7", 50, None, 40), CAPS, QRESYNC) is None
