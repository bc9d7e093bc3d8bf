"""Path keys: ~ and variables expand the same way for every path key, and what cannot be
expanded is an error at its line, never a directory named after the unexpanded text."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from mailtide.config import ConfigError, ImapRepository, MaildirRepository, load_config

from .test_config_load import GOOD

# Each path key, and how to put a value for it into GOOD (the line it ends up on).
KEYS = {
    "repository.work-local.path": (('"~/Mail/work"', '"{value}"'), 11),
    "repository.work-remote.ca_file": (("user =", 'ca_file = "{value}"\nuser ='), 16),
    "general.state_dir": (('"state"', '"{value}"'), 3),
}
NO_USER = "mailtide-no-such-user"


def with_value(key: str, value: str) -> str:
    (old, new), _ = KEYS[key]
    return GOOD.replace(old, new.format(value=value), 1)


def problem(tmp_path: Path, text: str) -> str:
    file = tmp_path / "config.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(file))
    (line,) = info.value.problems
    return line


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAILTIDE_EMPTY", "")
    monkeypatch.setenv("MAILTIDE_TILDE", "~/tilde")
    for name in ("MAILTIDE_UNSET", "MAILTIDE_UNSET2", "MAILTIDE_UNSET-x"):
        monkeypatch.delenv(name, raising=False)


BAD = [
    (
        f"~{NO_USER}/Mail",
        f'user "{NO_USER}" does not exist, so ~{NO_USER} has no home directory (for a directory'
        f' named ~{NO_USER} next to the config file, write "./~{NO_USER}/Mail")',
    ),
    ("$MAILTIDE_UNSET/Mail", "environment variable $MAILTIDE_UNSET is not set"),
    ("${MAILTIDE_UNSET}/Mail", "environment variable ${MAILTIDE_UNSET} is not set"),
    (
        "$MAILTIDE_UNSET/$HOME/$MAILTIDE_UNSET2",
        "environment variables $MAILTIDE_UNSET, $MAILTIDE_UNSET2 are not set",
    ),
    ("${MAILTIDE_UNSET-x}/Mail", "environment variable ${MAILTIDE_UNSET-x} is not set"),
    ("$MAILTIDE_EMPTY/Mail", "environment variable $MAILTIDE_EMPTY is set but empty"),
]


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("value", "expected"), BAD, ids=[b[0] for b in BAD])
def test_unexpandable_path_is_an_error(tmp_path: Path, key: str, value: str, expected: str) -> None:
    line = problem(tmp_path, with_value(key, value))
    assert line == f"{tmp_path}/config.toml:{KEYS[key][1]}: {key}: {expected}"


def maildir_path(tmp_path: Path, value: str) -> Path:
    file = tmp_path / "config.toml"
    file.write_text(with_value("repository.work-local.path", value))
    local = load_config(str(file)).account("work").local
    assert isinstance(local, MaildirRepository)
    return local.path


@pytest.mark.usefixtures("env")
def test_expandable_paths(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid())
    assert maildir_path(tmp_path, f"~{me.pw_name}/Mail") == Path(me.pw_dir) / "Mail"
    assert maildir_path(tmp_path, "~/Mail") == tmp_path / "home/Mail"
    # A variable may hold ~ (as it does when set outside a shell, e.g. by systemd).
    assert maildir_path(tmp_path, "$MAILTIDE_TILDE/Mail") == tmp_path / "home/tilde/Mail"
    assert maildir_path(tmp_path, f"./~{NO_USER}/Mail") == tmp_path / f"~{NO_USER}/Mail"


@pytest.mark.usefixtures("env")
def test_ca_file_and_state_dir_expand_like_path(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home/ca.pem").write_text("")
    text = with_value("repository.work-remote.ca_file", "~/ca.pem")
    text = text.replace('"state"', '"$MAILTIDE_TILDE/state"')
    file = tmp_path / "config.toml"
    file.write_text(text)
    config = load_config(str(file))
    remote = config.account("work").remote
    assert isinstance(remote, ImapRepository)
    assert remote.ca_file == tmp_path / "home/ca.pem"
    assert config.general.state_dir == tmp_path / "home/tilde/state"
