"""The folders keys: [account.X] folders.include/exclude/rename/map_special, combined with the
repositories' folders.include/exclude; mistakes named with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import load_config

from .test_config_load import GOOD, problems, write


def with_folders(account: str = "", remote: str = "", local: str = "") -> str:
    """GOOD with lines added to [account.work], [repository.work-remote] and -local."""
    source = 'password_command = ["pass", "show", "mail/work"]\n'
    text = GOOD.replace('remote = "work-remote"\n', f'remote = "work-remote"\n{account}')
    text = text.replace('path = "~/Mail/work"\n', f'path = "~/Mail/work"\n{local}')
    return text.replace(source, source + remote)


def test_account_rules_map_server_names_to_local_names(tmp_path: Path) -> None:
    text = with_folders(
        account='folders.rename = [{ from = "^Sent$", to = "root/Sent" },'
        ' { from = "\\\\[Gmail\\\\]/(.*)", to = "{1:lower}" }]\n'
        "folders.map_special = true\n"
        'folders.exclude = ["re:.*All Mail"]\n'
    )
    rules = load_config(write(tmp_path, text)).account("work").folders
    assert rules.to_local("Sent") == "root/Sent"
    assert rules.to_local("[Gmail]/Starred") == "starred"
    assert rules.to_local("[Gmail]/Sent Mail", "\\Sent") == "Sent"
    assert rules.to_local("[Gmail]/All Mail") is None
    assert rules.to_server("root/Sent") == "Sent"


def test_an_array_of_tables_works_too(tmp_path: Path) -> None:
    text = with_folders() + ('\n[[account.work.folders.rename]]\nfrom = "INBOX/(.*)"\nto = "{1}"\n')
    assert load_config(write(tmp_path, text)).account("work").folders.to_local("INBOX/a") == "a"


def test_every_filter_must_select_a_folder(tmp_path: Path) -> None:
    """The account's and the remote repository's filters on the server name, the local
    repository's on the local name."""
    text = with_folders(
        account='folders.exclude = ["Spam"]\n'
        'folders.rename = [{ from = "Lists/(.*)", to = "lists/{1}" }]\n',
        remote='folders.exclude = ["Trash"]\n',
        local='folders.exclude = ["lists/old"]\n',
    )
    rules = load_config(write(tmp_path, text)).account("work").folders
    assert rules.to_local("Archive") == "Archive"
    assert rules.place("Spam").why == 'left out by folders.exclude "Spam" of [account.work]'
    assert rules.place("Trash").why == (
        'left out by folders.exclude "Trash" of [repository.work-remote]'
    )
    assert rules.place("Lists/old").why == (
        'local name "lists/old" left out by folders.exclude "lists/old" of [repository.work-local]'
    )
    assert rules.to_local("Lists/new") == "lists/new"


def test_without_folder_keys_every_folder_keeps_its_name(tmp_path: Path) -> None:
    rules = load_config(write(tmp_path, GOOD)).account("work").folders
    assert rules.to_local("Archive/2024", "\\Archive") == "Archive/2024"
    assert rules.check({"INBOX": None, "a": None}, ["INBOX", "b"]) == []


BAD = [
    (
        dict(account='folders.rename = [{ from = "(.*)/(.*)", to = "{2}" }]\n'),
        [
            "config.toml:8: account.work.folders.rename: rule 1: group 1 of from '(.*)/(.*)'"
            " is not in to '{2}', so a local name cannot be turned back into the server name"
        ],
    ),
    (
        dict(
            account='folders.rename = [{ from = "a", to = "b" }, { from = "x.(y)", to = "{1}" }]\n'
        ),
        ["config.toml:8: account.work.folders.rename: rule 2: from 'x.(y)': '.' outside a group"],
    ),
    (
        dict(account='folders.rename = { from = "a", to = "b" }\n'),
        ['account.work.folders.rename: must be a list of { from = "...", to = "..." } tables'],
    ),
    (
        dict(account='folders.rename = ["a"]\n'),
        [
            'account.work.folders.rename: rule 1 must be a table { from = "...", to = "..." }, not'
            " a string"
        ],
    ),
    (
        dict(account='folders.rename = [{ from = "a" , too = "b" }]\n'),
        [
            'rename: rule 1: unknown key "too" (a rule has from and to)',
            "rename: rule 1: to is missing",
        ],
    ),
    (
        dict(account='folders.rename = [{ from = 1, to = "b" }]\n'),
        ["rename: rule 1: from is an integer, not a string"],
    ),
    (
        dict(account='folders.rename = [{ from = "(a", to = "b" }]\n'),
        ["rename: rule 1: from '(a': missing ), unterminated subpattern"],
    ),
    (
        dict(account='folders.map_special = "yes"\n'),
        ["config.toml:8: account.work.folders.map_special: must be true or false, not a string"],
    ),
    (
        dict(account='folders.exclude = ["re:(a"]\n'),
        ["config.toml:8: account.work.folders.exclude: pattern 're:(a': missing )"],
    ),
    (
        dict(account="folders.renames = []\n"),
        ['config.toml:8: account.work.folders.renames: unknown key (did you mean "rename"?)'],
    ),
    (
        dict(remote="folders.map_special = true\n"),
        [
            "repository.work-remote.folders.map_special: not a key for"
            " [repository.work-remote.folders] (it is one for [account.NAME] folders)"
        ],
    ),
    (
        dict(account='folders = "all"\n'),
        ["config.toml:8: account.work.folders: must be a table, not a string"],
    ),
]


@pytest.mark.parametrize(("keys", "expected"), BAD)
def test_bad_folder_keys(tmp_path: Path, keys: dict[str, str], expected: list[str]) -> None:
    found = problems(tmp_path, with_folders(**keys))
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line, found
