"""An account's folder rules: server name <-> local name, and the check on real folder lists."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderRules
from mailtide.core.names import BadFolderName, canonical, check_name
from mailtide.core.rename_rule import RenameRule

GMAIL = {
    "INBOX": None,
    "[Gmail]/Sent Mail": "\\Sent",
    "[Gmail]/Drafts": "\\Drafts",
    "[Gmail]/Bin": "\\Trash",
    "[Gmail]/Spam": "\\Junk",
    "[Gmail]/All Mail": "\\All",
    "Work": None,
}


def test_the_default_keeps_every_name() -> None:
    rules = FolderRules()
    assert rules.to_local("Archive/2024") == "Archive/2024"
    assert rules.to_server("Archive/2024") == "Archive/2024"
    assert rules.check({"INBOX": None, "a": None}, ["INBOX", "a", "b"]) == []


def test_map_special_names_special_use_folders_whatever_the_server_calls_them() -> None:
    rules = FolderRules(map_special=True)
    m = rules.bind(GMAIL)
    assert [m.to_local(s) for s in GMAIL] == [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "[Gmail]/All Mail",  # \All is not one of the five
        "Work",
    ]
    assert m.to_server("Sent") == "[Gmail]/Sent Mail"
    assert m.to_server("Trash") == "[Gmail]/Bin"
    assert rules.check(GMAIL, ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Work"]) == []


def test_map_special_with_other_servers_names() -> None:
    rules = FolderRules(map_special=True)
    for server in ("Gesendete Objekte", "INBOX/Sent", "Sent Items"):
        assert rules.to_local(server, "\\Sent") == "Sent"
        assert rules.to_server("Sent", {"INBOX": None, server: "\\Sent"}) == server
    assert rules.to_local("Gesendete Objekte") == "Gesendete Objekte"  # without the attribute


def test_without_map_special_the_attribute_changes_nothing() -> None:
    assert FolderRules().to_local("[Gmail]/Sent Mail", "\\Sent") == "[Gmail]/Sent Mail"


def test_a_local_special_name_new_to_a_server_without_one_is_created_under_that_name() -> None:
    rules = FolderRules(map_special=True)
    assert rules.to_server("Sent", {"INBOX": None}) == "Sent"


def test_rename_rules_apply_in_order_the_first_match_wins() -> None:
    rules = FolderRules(
        renames=(
            RenameRule(r"^Sent$", "root/Sent"),
            RenameRule(r"(.*)", "other/{1}"),
        )
    )
    assert rules.to_local("Sent") == "root/Sent"
    assert rules.to_local("Drafts") == "other/Drafts"
    assert rules.to_server("root/Sent") == "Sent"
    assert rules.to_server("other/Drafts") == "Drafts"
    assert rules.to_local("INBOX") == "INBOX"  # the inbox stays the inbox


def test_map_special_comes_before_the_rename_rules() -> None:
    rules = FolderRules(renames=(RenameRule(r"\[Gmail\]/(.*)", "{1}"),), map_special=True)
    assert rules.to_local("[Gmail]/Sent Mail", "\\Sent") == "Sent"
    assert rules.to_local("[Gmail]/Starred") == "Starred"


def test_gmail_lower_cased_names_go_back_to_the_servers_spelling() -> None:
    """The ArchWiki's Gmail nametrans lower-cases: the reverse finds the server's folder."""
    rules = FolderRules(renames=(RenameRule(r"\[Gmail\]/(.*)", "{1:lower}"),))
    server = {"INBOX": None, "[Gmail]/Sent Mail": None, "[Gmail]/Starred": None}
    m = rules.bind(server)
    assert m.to_local("[Gmail]/Sent Mail") == "sent mail"
    assert m.to_server("sent mail") == "[Gmail]/Sent Mail"
    assert m.to_server("starred") == "[Gmail]/Starred"
    # a folder made locally goes to the server as it is spelt locally
    assert m.to_server("receipts") == "[Gmail]/receipts"
    assert rules.check(server, ["INBOX", "sent mail", "starred", "receipts"]) == []


def test_two_server_folders_with_one_local_name_are_named() -> None:
    rules = FolderRules(renames=(RenameRule(r"\[Gmail\]/(.*)", "{1:lower}"),))
    server = {"INBOX": None, "[Gmail]/Sent": None, "[Gmail]/SENT": None}
    problems = rules.check(server, [])
    assert problems == [
        'server folders "[Gmail]/SENT" (folders.rename[1]) and "[Gmail]/Sent"'
        ' (folders.rename[1]) would all be local folder "sent": change folders.rename or'
        " exclude all but one of them"
    ]
    assert rules.to_server("sent", server) is None


def test_a_special_use_folder_and_a_folder_of_that_name_collide() -> None:
    rules = FolderRules(map_special=True)
    problems = rules.check({"INBOX": None, "Sent": None, "Gesendet": "\\Sent"}, ["Sent"])
    assert len(problems) == 1
    assert '"Gesendet" (map_special (\\Sent)) and "Sent" (same name)' in problems[0]
    assert 'local folder "Sent"' in problems[0]


def test_a_rename_onto_an_existing_name_collides() -> None:
    rules = FolderRules(renames=(RenameRule(r"(.*) Mail", "{1}"),))
    problems = rules.check({"INBOX": None, "Sent": None, "Sent Mail": None}, [])
    assert len(problems) == 1 and '"Sent" (same name) and "Sent Mail"' in problems[0]


def test_a_local_folder_whose_server_name_is_excluded_is_named() -> None:
    rules = FolderRules(server_filters=(FolderFilter(exclude=("Trash",), owner="[account.w]"),))
    problems = rules.check({"INBOX": None, "Trash": None}, ["INBOX", "Trash"])
    assert problems == [
        'local folder "Trash" would be server folder "Trash", which is left out by'
        ' folders.exclude "Trash" of [account.w]: add "Trash" to the local repository\'s'
        " folders.exclude to leave it out, or change the rules"
    ]
    assert rules.to_server("Trash") is None


def test_a_local_folder_the_local_filter_leaves_out_is_not_a_problem() -> None:
    rules = FolderRules(
        server_filters=(FolderFilter(exclude=("Trash",)),),
        local_filters=(FolderFilter(exclude=("Trash",)),),
    )
    assert rules.check({"INBOX": None, "Trash": None}, ["INBOX", "Trash"]) == []


def test_local_filters_apply_to_local_names() -> None:
    rules = FolderRules(
        renames=(RenameRule(r"\[Gmail\]/(.*)", "gmail/{1}"),),
        local_filters=(FolderFilter(exclude=("gmail/Spam",)),),
    )
    assert rules.to_local("[Gmail]/Spam") is None
    assert rules.to_local("[Gmail]/Sent") == "gmail/Sent"
    assert rules.place("[Gmail]/Spam").why == (
        'local name "gmail/Spam" left out by folders.exclude "gmail/Spam"'
    )


def test_a_local_folder_no_rule_can_make_is_named() -> None:
    rules = FolderRules(renames=(RenameRule(r"(.*)", "mail/{1}"),))
    problems = rules.check({"INBOX": None, "a": None}, ["INBOX", "mail/a", "other"])
    assert problems == [
        'local folder "other" has no server name: no folders.rename rule makes it from a'
        ' server name, and the same name on the server would be local folder "mail/other":'
        " change folders.rename"
    ]


def test_a_local_name_that_cannot_be_a_folder_is_named() -> None:
    rules = FolderRules(renames=(RenameRule(r"x/(.*)", "../{1}"),))
    problems = rules.check({"INBOX": None, "x/a": None}, [])
    assert len(problems) == 1
    assert 'server folder "x/a" would be local folder "../a" (folders.rename[1])' in problems[0]


def test_the_readmes_translations() -> None:
    """The OfflineIMAP and mbsync translations in README.md's "Folder rules" do what it says."""
    exclude = FolderRules(server_filters=(FolderFilter(exclude=("Trash", "re:.*Del.*")),))
    assert [exclude.to_local(n) for n in ("Trash", "Deleted", "ToDelete", "Trash/x")] == [
        None,
        None,
        None,
        "Trash/x",
    ]
    top = FolderRules(server_filters=(FolderFilter(include=("re:[^/]*",)),))
    assert [top.to_local(n) for n in ("INBOX", "a", "a/b")] == ["INBOX", "a", None]
    keep = FolderRules(server_filters=(FolderFilter(exclude=("re:Lists/(?!keep$).*",)),))
    assert [keep.to_local(n) for n in ("Lists/keep", "Lists/other", "Lists")] == [
        "Lists/keep",
        None,
        "Lists",
    ]
    outlook = FolderRules(
        renames=(RenameRule("^Spam$", "Junk E-mail"), RenameRule("^Trash$", "Deleted Items"))
    )
    assert outlook.to_local("Spam") == "Junk E-mail"
    assert outlook.to_server("Deleted Items") == "Trash"
    strip = FolderRules(renames=(RenameRule(r"\[Gmail\]/(.*)", "{1}"),))
    problems = strip.check({"INBOX": None, "[Gmail]/Foo": None, "Foo": None}, [])
    assert len(problems) == 1 and '"Foo" (same name) and "[Gmail]/Foo"' in problems[0]


# -- the property: every name either round-trips or the check names it ---------------------

RULES = [
    RenameRule(r"\[Gmail\]/(.*)", "{1:lower}"),
    RenameRule(r"^Sent$", "root/Sent"),
    RenameRule(r"INBOX/(.*)", "{1}"),
    RenameRule(r"(.*) Mail", "{1}"),
    RenameRule(r"a/(.*)", "b/{1}"),
    RenameRule(r"(A)", "{1:lower}"),
    RenameRule(r"(.*)", "mail/{1}"),
]
FILTERS = [
    FolderFilter(exclude=("Trash",)),
    FolderFilter(include=("re:.*a.*", "INBOX")),
    FolderFilter(exclude=("b/*",)),
    FolderFilter(exclude=("re:[Ss]ent",)),
]
PARTS = ["INBOX", "Sent", "sent", "Sent Mail", "[Gmail]", "a", "A", "b", "Trash", "root", "mail"]
# Names that meet the rules above, so that collisions and misses are common.
KNOWN = [
    "Sent",
    "sent",
    "Sent Mail",
    "[Gmail]/Sent",
    "[Gmail]/sent",
    "[Gmail]/Sent Mail",
    "root/Sent",
    "INBOX/Sent",
    "a",
    "A",
    "a/x",
    "b/x",
    "mail/a",
    "Trash",
]
NAMES = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN),
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=3).map("/".join),
)
SPECIAL = st.sampled_from([None, None, "\\Sent", "\\Trash", "\\All"])


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except BadFolderName:
        return False
    return True


@settings(max_examples=150)
@given(
    renames=st.lists(st.sampled_from(RULES), max_size=3),
    server_filters=st.lists(st.sampled_from(FILTERS), max_size=2),
    local_filters=st.lists(st.sampled_from(FILTERS), max_size=1),
    map_special=st.booleans(),
    server=st.dictionaries(NAMES, SPECIAL, min_size=2, max_size=6),
    local=st.lists(NAMES, max_size=6),
)
def test_every_name_round_trips_or_the_check_names_it(
    renames: list[RenameRule],
    server_filters: list[FolderFilter],
    local_filters: list[FolderFilter],
    map_special: bool,
    server: dict[str, str | None],
    local: list[str],
) -> None:
    rules = FolderRules(tuple(server_filters), tuple(local_filters), tuple(renames), map_special)
    server = {canonical(s): use for s, use in server.items()}
    m = rules.bind(server)
    problems = rules.check(server, local)

    def named(name: str) -> bool:
        return any(f'"{name}"' in line for line in problems)

    for s in server:
        there = m.to_local(s)
        if there is None:
            continue
        if m.to_server(there) != s or not _valid(there):
            assert named(s), (s, there, problems)
    for name in local:
        back = m.to_server(name)
        if back is not None:
            # a server name found for a local folder always turns back into it
            assert rules.to_local(back, server.get(back)) == canonical(name)
        elif all(f.selects(canonical(name)) for f in local_filters):
            assert named(canonical(name)), (name, problems)
