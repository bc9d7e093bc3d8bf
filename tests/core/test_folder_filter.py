import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtide.core.folder_filter import BadPattern, FolderFilter

NAMES = ["INBOX", "INBOX/Sub", "Trash", "Spam", "Spam/2024", "Archive/2024/Q1", "Entwürfe", "a*b"]

CASES = [
    # (include, exclude, the names selected among NAMES)
    (("*",), (), NAMES),
    ((), (), []),
    (
        ("*",),
        ("Trash", "Spam/*"),
        ["INBOX", "INBOX/Sub", "Spam", "Archive/2024/Q1", "Entwürfe", "a*b"],
    ),
    (("Spam*",), (), ["Spam", "Spam/2024"]),  # "*" crosses "/"
    (("Archive/*",), (), ["Archive/2024/Q1"]),
    (("INBOX",), (), ["INBOX"]),
    (("inbox",), (), ["INBOX"]),  # the inbox in any case
    (("Inbox/*",), (), ["INBOX/Sub"]),
    (("?rash",), (), ["Trash"]),
    (("[ST]*",), ("*/*",), ["Trash", "Spam"]),
    (("[!IST]*",), (), ["Archive/2024/Q1", "Entwürfe", "a*b"]),
    (("a[*]b",), (), ["a*b"]),
    (("Entw?rfe",), (), ["Entwürfe"]),
    # re: patterns match the whole name, like globs
    (("re:Spam",), (), ["Spam"]),
    (("re:.*a.*",), (), ["Trash", "Spam", "Spam/2024", "a*b"]),
    (
        ("*",),
        ("re:(Trash|Spam)(/.*)?",),
        ["INBOX", "INBOX/Sub", "Archive/2024/Q1", "Entwürfe", "a*b"],
    ),
    (("re:INBOX(/.*)?",), (), ["INBOX", "INBOX/Sub"]),
    (("re:[A-Z].*",), ("re:.*/.*",), ["INBOX", "Trash", "Spam", "Entwürfe"]),
]


@pytest.mark.parametrize(("include", "exclude", "selected"), CASES)
def test_selects(include: tuple[str, ...], exclude: tuple[str, ...], selected: list[str]) -> None:
    f = FolderFilter(include, exclude)
    assert [n for n in NAMES if f.selects(n)] == selected


def test_inbox_selected_whatever_case_the_server_uses() -> None:
    f = FolderFilter(("INBOX",), ())
    assert f.selects("inbox")
    assert f.selects("Inbox")


def test_default_selects_everything() -> None:
    assert all(FolderFilter().selects(n) for n in NAMES)


@pytest.mark.parametrize("pattern", ["", "Spam/[abc", "[", "[!]", "[z-a]", "re:", "re:(a", "re:*"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(BadPattern):
        FolderFilter((pattern,), ())


def test_filters_compare_by_patterns() -> None:
    assert FolderFilter(("a",), ("b",)) == FolderFilter(("a",), ("b",))


@given(st.text(alphabet=st.characters(blacklist_characters="*?[]", blacklist_categories=["Cs"])))
def test_a_pattern_without_wildcards_matches_exactly_itself(name: str) -> None:
    if not name or name.startswith("re:"):
        return
    assert FolderFilter((name,), ()).selects(name)
    assert not FolderFilter((name,), ()).selects(name + "x")


def test_left_out_by_names_the_pattern_and_where_it_was_written() -> None:
    f = FolderFilter(("re:[A-Z].*",), ("Spam*", "Trash"), owner="[account.work]")
    assert f.left_out_by("INBOX") is None
    assert f.left_out_by("Spam/2024") == 'folders.exclude "Spam*" of [account.work]'
    assert f.left_out_by("a*b") == "no folders.include pattern of [account.work] matches it"
    assert FolderFilter(exclude=("Trash",)).left_out_by("Trash") == 'folders.exclude "Trash"'


def test_a_folder_whose_name_starts_with_re_colon_is_selected_by_a_set() -> None:
    assert FolderFilter(("[r]e:old",), ()).selects("re:old")
