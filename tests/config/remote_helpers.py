"""Loading one account's remote repository from a test config, and the problems a config
that does not load reports (shared by the key tests of IMAP repositories)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailtide.config import ConfigError, ImapRepository, load_config


def remote_of(file: Path | str, account: str) -> ImapRepository:
    """The remote repository of ``account`` in config ``file`` (it must be an IMAP one)."""
    remote = load_config(str(file)).account(account).remote
    assert isinstance(remote, ImapRepository)
    return remote


def refused(load: Callable[[], object]) -> list[str]:
    """The problem lines of the ConfigError that ``load()`` must raise."""
    with pytest.raises(ConfigError) as info:
        load()
    return info.value.problems
