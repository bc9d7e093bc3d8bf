"""Gmail labels spelt as IMAP keywords and back (stores/imap/gmail_keywords.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtide.stores.imap import gmail_keywords
from mailtide.stores.imap.mailbox import is_flag_atom


@pytest.mark.parametrize(
    ("label", "keyword"),
    [
        ("Work", "Work"),
        ("Work/2024", "Work/2024"),
        ("Project Alpha", "Project&ACA-Alpha"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("R&D", "R&-D"),
        ("$Money", "&ACQ-Money"),
        ("\\Inbox", "Inbox"),
        ("\\Important", "Important"),
        ("\\Sent", "Sent"),
        ("\\Draft", "Draft"),
    ],
)
def test_a_label_and_its_keyword(label: str, keyword: str) -> None:
    assert gmail_keywords.keyword_of(label) == keyword
    assert gmail_keywords.label_of(keyword) == label


def test_the_star_trash_and_spam_are_no_keywords_and_dollar_keywords_no_labels() -> None:
    flags = gmail_keywords.with_labels(
        frozenset({"\\Seen", "\\Flagged"}), ["\\Starred", "\\Trash", "\\Spam", "\\Inbox"]
    )
    assert flags == {"\\Seen", "\\Flagged", "Inbox"}
    plain, labels = gmail_keywords.split({"\\Seen", "$Forwarded", "$Junk", "inbox", "Work"})
    assert plain == {"\\Seen", "$Forwarded", "$Junk"}
    assert labels == {"\\Inbox", "Work"}


SYSTEM_NAMES = {"INBOX", "IMPORTANT", "SENT", "DRAFT"}  # Gmail keeps these names for itself
USER_LABELS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1).filter(
    lambda s: not s.startswith("\\") and s.upper() not in SYSTEM_NAMES
)


@given(USER_LABELS)
def test_every_user_label_is_an_atom_and_comes_back(label: str) -> None:
    keyword = gmail_keywords.keyword_of(label)
    assert keyword is not None and is_flag_atom(keyword)
    assert gmail_keywords.label_of(keyword) == label
