"""Maildir trees and state files that accounts would share are refused at load time,
whatever the spelling of the paths."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from mailtide.config import ConfigError, load_config

TWO_ACCOUNTS = """\
[general]
state_dir = "state"

[account.work]
local = "work-local"
remote = "work-remote"

[account.home]
local = "home-local"
remote = "home-remote"

[repository.work-local]
type = "maildir"
path = "{work}"

[repository.home-local]
type = "maildir"
path = "{home}"

[repository.work-remote]
type = "imap"
host = "imap.example.org"
user = "me"
password_command = ["pass", "work"]

[repository.home-remote]
type = "imap"
host = "imap.example.net"
user = "me"
password_command = ["pass", "home"]
"""


def load(tmp_path: Path, text: str) -> list[str]:
    """The problems of the config ``text`` written to tmp_path/config.toml ([] if it loads)."""
    file = tmp_path / "config.toml"
    file.write_text(text)
    try:
        load_config(str(file))
    except ConfigError as e:
        return e.problems
    return []


def nothing(tmp_path: Path) -> None:
    pass


def existing(*dirs: str) -> Callable[[Path], None]:
    def make(tmp_path: Path) -> None:
        for d in dirs:
            (tmp_path / d).mkdir(parents=True)

    return make


def symlink(link: str, target: str) -> Callable[[Path], None]:
    def make(tmp_path: Path) -> None:
        (tmp_path / target).mkdir(parents=True, exist_ok=True)
        (tmp_path / link).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / link).symlink_to(tmp_path / target)

    return make


SAME = "is also the Maildir"

# (id, work's path, home's path, what exists, how home's tree stands to work's, as a message
# says it; the real path of work's tree).  HOME is tmp_path/u, $MAILROOT is tmp_path/mail.
SHARED = [
    ("same relative path", "mail/x", "mail/x", nothing, SAME, "mail/x"),
    ("~ and absolute", "~/Mail", "{tmp}/u/Mail", nothing, SAME, "u/Mail"),
    ("$VAR and relative", "$MAILROOT/x", "mail/x", nothing, SAME, "mail/x"),
    ("${VAR} and ~", "${MAILROOT}/x", "~/../mail/x", existing("u"), SAME, "mail/x"),
    ("trailing slash", "mail/x", "./mail//x/", existing("mail/x"), SAME, "mail/x"),
    ("dotdot over missing parts", "a/b/../x", "a/x", nothing, SAME, "a/x"),
    ("symlink", "mail/x", "alias", symlink("alias", "mail/x"), SAME, "mail/x"),
    (
        "dotdot after a symlink",
        "deep/x",
        "link/../x",
        symlink("link", "deep/er"),
        "is also the Maildir",
        "deep/x",
    ),
    ("inside", "Mail", "Mail/home", nothing, "is inside the Maildir {work}", "Mail"),
    ("holds", "Mail/work", "Mail", existing("Mail/work"), "holds the Maildir {work}", "Mail/work"),
    (
        "inside through a symlink",
        "Mail",
        "alias/home/deep",
        symlink("alias", "Mail"),
        "is inside the Maildir {work}",
        "Mail",
    ),
    ("inside, missing parts", "n/d", "n/d/x/y", nothing, "is inside the Maildir {work}", "n/d"),
]


@pytest.mark.parametrize(
    ("work", "home", "setup", "relation", "real"),
    [s[1:] for s in SHARED],
    ids=[s[0] for s in SHARED],
)
def test_two_accounts_on_one_maildir_are_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    work: str,
    home: str,
    setup: Callable[[Path], None],
    relation: str,
    real: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "u"))
    monkeypatch.setenv("MAILROOT", str(tmp_path / "mail"))
    setup(tmp_path)
    text = TWO_ACCOUNTS.format(work=work, home=home.format(tmp=tmp_path))
    (line,) = load(tmp_path, text)
    shown = relation.format(work=tmp_path / real)
    assert line.startswith(f"{tmp_path}/config.toml:9: account.home.local: Maildir ")
    assert f'(repository "home-local") {shown} of account "work" (repository' in line
    assert "two accounts on one Maildir tree mix their mail" in line
    if relation == SAME:
        assert f"Maildir {tmp_path / real} (repository" in line  # one tree, one path


@pytest.mark.parametrize(
    ("work", "home", "setup"),
    [
        ("Mail/work", "Mail/home", nothing),
        ("Mail/work", "Mail/work2", nothing),  # a prefix of the name is not a parent
        ("Mail/work", "Mail/work2", existing("Mail/work", "Mail/work2")),
        ("Mail/work", "Mail/link", symlink("Mail/link", "elsewhere")),
    ],
    ids=["siblings", "name prefix", "name prefix, existing", "symlink elsewhere"],
)
def test_separate_maildirs_are_fine(
    tmp_path: Path, work: str, home: str, setup: Callable[[Path], None]
) -> None:
    setup(tmp_path)
    assert load(tmp_path, TWO_ACCOUNTS.format(work=work, home=home)) == []


def test_one_repository_table_for_two_accounts(tmp_path: Path) -> None:
    text = TWO_ACCOUNTS.format(work="Mail", home="Other")
    text = text.replace('local = "home-local"', 'local = "work-local"')
    (line,) = load(tmp_path, text)
    assert line == (
        f"{tmp_path}/config.toml:9: account.home.local: Maildir {tmp_path}/Mail (repository"
        f' "work-local") is also the Maildir of account "work" (repository "work-local"): two'
        " accounts on one Maildir tree mix their mail (each would upload the other's to its"
        " server); give each account its own directory, side by side"
    )


def test_three_accounts_on_one_maildir_name_the_first(tmp_path: Path) -> None:
    text = TWO_ACCOUNTS.format(work="Mail", home="Mail")
    text += '\n[account.club]\nlocal = "club-local"\nremote = "home-remote"\n'
    text += '\n[repository.club-local]\ntype = "maildir"\npath = "Mail/club"\n'
    found = load(tmp_path, text)
    assert [line.split(": ")[1] for line in found] == ["account.home.local", "account.club.local"]
    assert all('of account "work"' in line for line in found)


def test_two_sides_of_one_account_on_overlapping_maildirs(tmp_path: Path) -> None:
    text = TWO_ACCOUNTS.format(work="Mail", home="Mail/INBOX")
    text = text.replace('remote = "work-remote"', 'remote = "home-local"')
    text = text.replace('local = "home-local"', 'local = "home-remote"')
    text = text.replace('remote = "home-remote"', 'remote = "work-remote"')
    (line,) = load(tmp_path, text)
    assert line == (
        f"{tmp_path}/config.toml:6: account.work.remote: Maildir {tmp_path}/Mail/INBOX"
        f' (repository "home-local") is inside the Maildir {tmp_path}/Mail of the local side'
        ' (repository "work-local"): the two sides of an account would sync the tree into'
        " itself; give each side its own directory, side by side"
    )


@pytest.mark.parametrize(
    ("state_dir", "relation"),
    [("Mail/.state", "is inside the Maildir"), ("Mail/", SAME)],
)
def test_state_dir_inside_a_maildir(tmp_path: Path, state_dir: str, relation: str) -> None:
    text = TWO_ACCOUNTS.format(work="Mail", home="Other")
    (line,) = load(tmp_path, text.replace('"state"', f'"{state_dir}"'))
    shown = f"{tmp_path}/Mail" if relation == SAME else f"{tmp_path}/Mail/.state"
    assert line.startswith(
        f"{tmp_path}/config.toml:2: general.state_dir: the state directory {shown} {relation}"
    )
    assert 'of account "work" (repository "work-local"): mailtide would sync its own state' in line


def test_default_state_dir_inside_a_maildir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "u"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    text = TWO_ACCOUNTS.format(work="~", home="Other").replace('state_dir = "state"\n', "")
    (line,) = load(tmp_path, text)
    assert line.startswith(
        f"{tmp_path}/config.toml:13: repository.work-local.path: the state directory"
        f" {tmp_path}/u/.local/state/mailtide (the default; set general.state_dir) is inside the"
        f' Maildir {tmp_path}/u of account "work"'
    )


def test_every_overlap_at_once_with_other_problems(tmp_path: Path) -> None:
    text = TWO_ACCOUNTS.format(work="Mail", home="Mail").replace('"state"', '"Mail/s"')
    text = text.replace('user = "me"\npassword_command = ["pass", "home"]', 'usr = "me"')
    keys = [line.split(": ")[1] for line in load(tmp_path, text)]
    assert keys == [
        "general.state_dir",
        "account.home.local",
        "repository.home-remote",  # needs a password
        "repository.home-remote.usr",
    ]


NFC = unicodedata.normalize("NFC", "privé")
NFD = unicodedata.normalize("NFD", "privé")


@pytest.mark.parametrize(
    ("first", "second", "key"),
    [("Work", "work", "work"), ("STRASSE", "straße", '"straße"'), (NFC, NFD, f'"{NFD}"')],
    ids=["case", "case folding", "normalisation"],
)
def test_account_names_that_share_a_state_file(
    tmp_path: Path, first: str, second: str, key: str
) -> None:
    text = TWO_ACCOUNTS.format(work="Mail/a", home="Mail/b")
    text = text.replace("[account.work]", f'[account."{first}"]')
    text = text.replace("[account.home]", f'[account."{second}"]')
    (line,) = load(tmp_path, text)
    assert line.startswith(f'{tmp_path}/config.toml:8: account.{key}: account "{second}"')
    assert f'and account "{first}" differ only in case' in line
    assert f"{second}.sqlite and {first}.sqlite are one file" in line


def test_account_name_too_long_for_its_state_file(tmp_path: Path) -> None:
    long = "ä" * 120  # 240 bytes: "<name>.sqlite" fits, the files moved aside would not
    text = TWO_ACCOUNTS.format(work="Mail/a", home="Mail/b")
    text = text.replace("[account.home]", f'[account."{long}"]')
    (line,) = load(tmp_path, text)
    assert line == (
        f'{tmp_path}/config.toml:8: account."{long}": account name is 240 bytes long; at most 216'
        " (UTF-8), since it names the account's state file"
    )
