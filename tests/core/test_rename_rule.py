"""A rename rule: from a server name to a local name, and the reverse derived from it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtide.core.rename_rule import BadRename, RenameRule

CASES = [
    # (from, to, server name, local name): both directions
    (r"^Sent$", "root/Sent", "Sent", "root/Sent"),  # OfflineIMAP's nametrans example
    (r"\[Gmail\]/(.*)", "{1}", "[Gmail]/Sent Mail", "Sent Mail"),
    (r"\[Gmail\]/(.*)", "gmail/{1}", "[Gmail]/Starred", "gmail/Starred"),
    (r"INBOX/(?P<rest>.+)", "{rest}", "INBOX/Lists/python", "Lists/python"),
    (r"(.*)/(\d{4})", "{2}/{1}", "Archive/2024", "2024/Archive"),
    (r"a\.b/(x|y)", "c{{{1}}}", "a.b/x", "c{x}"),
    (r"\$(.*)\$", "dollar/{1}", "$x$", "dollar/x"),
]


@pytest.mark.parametrize(("source", "template", "server", "local"), CASES)
def test_both_directions(source: str, template: str, server: str, local: str) -> None:
    rule = RenameRule(source, template)
    assert rule.local_name(server) == local
    assert rule.server_name(local) == server


def test_a_lower_cased_group_comes_back_as_the_local_name_has_it() -> None:
    rule = RenameRule(r"(Lists)/(.*)", "{1}/{2:lower}")
    assert rule.local_name("Lists/Python-Dev") == "Lists/python-dev"
    assert rule.server_name("Lists/python-dev") == "Lists/python-dev"


def test_from_must_match_the_whole_name() -> None:
    rule = RenameRule("Sent", "root/Sent")
    assert rule.local_name("Sent") == "root/Sent"
    assert rule.local_name("Unsent") is None
    assert rule.local_name("Sent/2024") is None


def test_a_lower_cased_group_is_found_back_in_any_case() -> None:
    rule = RenameRule(r"\[Gmail\]/([A-Za-z ]+)", "{1:lower}")
    assert rule.local_name("[Gmail]/Sent Mail") == "sent mail"
    assert rule.server_name("sent mail") == "[Gmail]/sent mail"  # a candidate, case lost
    assert rule.server_name("sent/mail") is None  # the group's own pattern still applies


def test_a_name_the_template_cannot_make_has_no_reverse() -> None:
    rule = RenameRule(r"\[Gmail\]/(.*)", "gmail/{1}")
    assert rule.server_name("other/x") is None


BAD = [
    ("", "x", "from is empty"),
    ("(a", "{1}", "unterminated"),
    (r"a.(b)", "{1}", "'.' outside a group"),
    (r"Sent|Drafts", "x", "'|' outside a group"),
    (r"[ab]/(.*)", "{1}", "'[' outside a group"),
    (r"\d(.*)", "{1}", r"'\d' outside a group"),
    ("(a)(b)", "{1}", "group 2 of from '(a)(b)' is not in to '{1}'"),
    ("(a)", "x", "group 1 of from '(a)' is not in to 'x'"),
    ("(a)", "{2}", "from has no group '2'"),
    ("(a)", "{name}", "from has no group 'name'"),
    ("(a)+", "{1}", "a group with '+' after it"),
    ("(?:a)", "x", "'(?:' at the top level"),
    ("(?i)(a)", "{1}", "'(?i' at the top level"),
    ("(a(b))", "{1}{2}", "uses group 2, which is inside another group"),
    ("(a)", "{", "an unclosed '{'"),
    ("(a)", "{1}}", "a single '}'"),
    ("(a)", "{1:upper}", "only ':lower'"),
]


@pytest.mark.parametrize(("source", "template", "message"), BAD)
def test_rules_that_cannot_be_used_or_reversed_are_refused(
    source: str, template: str, message: str
) -> None:
    with pytest.raises(BadRename) as info:
        RenameRule(source, template)
    assert message in str(info.value)


NAME = st.text(alphabet="abAB/ .[]$x", min_size=1, max_size=12)


@given(NAME)
def test_reverse_of_the_forward_is_the_name_again(name: str) -> None:
    """For rules that lose nothing (no ``:lower``), server -> local -> server is the name."""
    for source, template, *_ in CASES:
        rule = RenameRule(source, template)
        local = rule.local_name(name)
        if local is not None:
            assert rule.server_name(local) == name
