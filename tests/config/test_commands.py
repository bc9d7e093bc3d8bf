"""Command keys (password_command and the hooks): an argv list run without a shell.

Only the program is touched: it is expanded like every path in the file (~, $VAR, relative
to the config file's directory), except that a name without a "/" is left for $PATH; the
arguments are passed as written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ConfigError, ImapRepository, load_config
from mailtide.config.model import Account

from .test_config_load import GOOD

NO_USER = "mailtide-no-such-user"
KEYS = ["password_command", "presync_hook", "postsync_hook", "newmail_hook"]


def with_command(key: str, argv: str) -> str:
    if key == "password_command":
        return GOOD.replace('["pass", "show", "mail/work"]', argv)
    return GOOD.replace('remote = "work-remote"\n', f'remote = "work-remote"\n{key} = {argv}\n')


def command_of(account: Account, key: str) -> tuple[str, ...] | None:
    if key == "password_command":
        assert isinstance(account.remote, ImapRepository)
        return account.remote.password_command
    return getattr(account.hooks, key.removesuffix("_hook"))


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAILTIDE_VAR", "expanded")
    return tmp_path / "home"


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ('["~/bin/run", "~/x", "$MAILTIDE_VAR"]', ("{home}/bin/run", "~/x", "$MAILTIDE_VAR")),
        ('["bin/run", "a b"]', ("{dir}/bin/run", "a b")),
        ('["./run"]', ("{dir}/run",)),
        ('["notmuch", "new"]', ("notmuch", "new")),
        ('["/usr/bin/env", "x"]', ("/usr/bin/env", "x")),
        (f'["./~{NO_USER}/run"]', (f"{{dir}}/~{NO_USER}/run",)),
        ('["$MAILTIDE_VAR/run"]', ("{dir}/expanded/run",)),
        ('["$MAILTIDE_VAR", "$MAILTIDE_VAR"]', ("expanded", "$MAILTIDE_VAR")),
        ('["$HOME/run"]', ("{home}/run",)),
    ],
)
def test_program_is_expanded_arguments_are_not(
    tmp_path: Path, home: Path, key: str, argv: str, expected: tuple[str, ...]
) -> None:
    file = tmp_path / "config.toml"
    file.write_text(with_command(key, argv))
    account = load_config(str(file)).account("work")
    wanted = tuple(part.format(home=home, dir=tmp_path) for part in expected)
    assert command_of(account, key) == wanted


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("program", "message"),
    [
        (
            f"~{NO_USER}/run",
            f'user "{NO_USER}" does not exist, so ~{NO_USER} has no home directory (for a'
            f' directory named ~{NO_USER} next to the config file, write "./~{NO_USER}/run")',
        ),
        ("$MAILTIDE_UNSET/run", "environment variable $MAILTIDE_UNSET is not set"),
    ],
)
def test_program_that_cannot_be_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, program: str, message: str
) -> None:
    monkeypatch.delenv("MAILTIDE_UNSET", raising=False)
    file = tmp_path / "config.toml"
    file.write_text(with_command(key, f'["{program}"]'))
    with pytest.raises(ConfigError) as info:
        load_config(str(file))
    (line,) = info.value.problems
    assert line.endswith(f".{key}: {message}")


@pytest.mark.parametrize(
    ("hook", "kept"),
    [(None, False), ("presync_hook", False), ("postsync_hook", True), ("newmail_hook", True)],
)
def test_a_sync_keeps_the_files_it_wrote_only_for_a_hook_told_of_them(
    tmp_path: Path, hook: str | None, kept: bool
) -> None:
    """Without a postsync or newmail hook nobody reads them: a 50k sync kept 50k paths."""
    from mailtide.stores.maildir.journal import FileChange
    from mailtide.wiring import journal_for

    file = tmp_path / "config.toml"
    file.write_text(with_command(hook, '["true"]') if hook else GOOD)
    journal = journal_for(load_config(str(file)).account("work"))
    journal.done(FileChange("added", "INBOX", "INBOX/new/1"))
    assert len(journal.take()) == (1 if kept else 0)
