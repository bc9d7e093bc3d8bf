"""Folder-name rules: a name either stays inside the account's root or is refused."""

import pytest

from mailtide.core.names import BadFolderName, canonical, check_name, is_inbox, parents


@pytest.mark.parametrize(
    "name",
    [
        "INBOX",
        "Archive/2024",
        "Entwürfe",
        "Work/Clients/Acme & Co",
        "Sent Items",
        "a.b",  # a dot inside a component is an ordinary character
        "...x",
        "日本語/メール",
    ],
)
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("/x", id="absolute"),
        pytest.param("x/", id="trailing slash"),
        pytest.param("/", id="root"),
        pytest.param("a//b", id="empty component"),
        pytest.param("../x", id="parent first"),
        pytest.param("a/../../b", id="parent inside"),
        pytest.param("a/..", id="parent last"),
        pytest.param("..", id="parent alone"),
        pytest.param(".", id="dot"),
        pytest.param("a/./b", id="dot inside"),
        pytest.param("a\x00b", id="NUL"),
        pytest.param("a\rb", id="CR"),
        pytest.param("a\nb", id="LF"),
        pytest.param("a\tb", id="TAB"),
        pytest.param("a\x7fb", id="DEL"),
        pytest.param("a\x1bb", id="ESC"),
        pytest.param("a\x85b", id="C1 NEL"),
        pytest.param("a\u2028b", id="U+2028 line separator"),
        pytest.param("a\u2029b", id="U+2029 paragraph separator"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("..\\x", id="backslash parent"),
    ],
)
def test_check_name_refuses(name: str) -> None:
    with pytest.raises(BadFolderName):
        check_name(name)


def test_refusal_names_the_folder_for_the_user() -> None:
    with pytest.raises(BadFolderName, match=r"a/\.\./\.\./b"):
        check_name("a/../../b")
    with pytest.raises(BadFolderName, match="U\\+0000"):
        check_name("x\x00")


@pytest.mark.parametrize("name", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_in_any_case(name: str) -> None:
    assert is_inbox(name)
    assert canonical(name) == "INBOX"


@pytest.mark.parametrize("name", ["INBOX/Sub", "Inboxes", "Archive"])
def test_other_names_stay_as_they_are(name: str) -> None:
    assert not is_inbox(name)
    assert canonical(name) == name


def test_parents() -> None:
    assert parents("a/b/c") == ["a", "a/b"]
    assert parents("a") == []
