"""What a renewal of NOTIFY's watch reports from the counters (the pure part; against the
server: test_push.py::test_notify_reports_a_change_made_while_its_watch_is_renewed)."""

from __future__ import annotations

import pytest

from mailtide.stores.imap.notify_counters import MailboxCounters

FIRST = {
    "INBOX": {"UIDVALIDITY": 7, "UIDNEXT": 5, "MESSAGES": 4, "UNSEEN": 1, "HIGHESTMODSEQ": 9},
    "Work": {"UIDVALIDITY": 8, "UIDNEXT": 2, "MESSAGES": 1, "UNSEEN": 0, "HIGHESTMODSEQ": 3},
}


def renewed_to(changes: dict[str, dict[str, int]], gone: str = "") -> dict[str, dict[str, int]]:
    snapshot = {name: {**items, **changes.get(name, {})} for name, items in FIRST.items()}
    snapshot.update({name: items for name, items in changes.items() if name not in FIRST})
    snapshot.pop(gone, None)
    return snapshot


@pytest.mark.parametrize(
    ("news", "snapshot", "reported"),
    [
        # nothing changed
        ({}, renewed_to({}), frozenset()),
        # a delivery in the gap, and a message marked read with or without HIGHESTMODSEQ
        ({}, renewed_to({"Work": {"UIDNEXT": 3, "MESSAGES": 2}}), frozenset({"Work"})),
        ({}, renewed_to({"INBOX": {"UNSEEN": 0, "HIGHESTMODSEQ": 10}}), frozenset({"INBOX"})),
        ({}, renewed_to({"INBOX": {"UNSEEN": 0}}), frozenset({"INBOX"})),
        # news told of it already (Dovecot's news leaves out UIDVALIDITY): not again
        (
            {"Work": {"UIDNEXT": 3, "MESSAGES": 2}},
            renewed_to({"Work": {"UIDNEXT": 3, "MESSAGES": 2}}),
            frozenset(),
        ),
        # news, then one more change in the gap
        ({"Work": {"UIDNEXT": 3}}, renewed_to({"Work": {"UIDNEXT": 4}}), frozenset({"Work"})),
        # a mailbox made or deleted in the gap: any mailbox
        ({}, renewed_to({"New": {"UIDVALIDITY": 9, "UIDNEXT": 1}}), None),
        ({}, renewed_to({}, gone="Work"), None),
    ],
)
def test_a_renewal_reports_what_changed_since_last_told(
    news: dict[str, dict[str, int]],
    snapshot: dict[str, dict[str, int]],
    reported: frozenset[str] | None,
) -> None:
    counters = MailboxCounters()
    assert counters.renewed(FIRST) is None  # the first watch: nothing known before it
    for name, items in news.items():
        counters.told(name, items)
    assert counters.renewed(snapshot) == reported
    assert counters.renewed(snapshot) == frozenset()  # the next renewal starts from it


def test_what_was_last_told_of_a_mailbox_merges_news_into_the_watchs_status() -> None:
    """What the daemon compares with the state's cursor to tell its own writes' echo from
    news (account_task._echo): Dovecot's news leaves out what did not change."""
    counters = MailboxCounters()
    counters.renewed(FIRST)
    counters.told("INBOX", {"HIGHESTMODSEQ": 12, "UNSEEN": 0})
    assert counters.items("INBOX") == {
        "UIDVALIDITY": 7, "UIDNEXT": 5, "MESSAGES": 4, "UNSEEN": 0, "HIGHESTMODSEQ": 12,
    }  # fmt: skip
    assert counters.items("Unknown") == {}
    assert sorted(counters.names()) == ["INBOX", "Work"]
