from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from daemon_helpers import Daemon
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup
from fault_proxy import FaultProxy


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """Start ``mailtide daemon -c CONFIG`` (with extra environment and arguments); every daemon
    started is killed at the end of the test if it is still running."""
    started: list[Daemon] = []

    def start(config: Path, env: dict[str, str] | None = None, *args: str) -> Daemon:
        d = Daemon(config, env, *args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


@pytest.fixture
def proxied(
    imap_account: ImapAccount, dovecot: Dovecot, tmp_path: Path
) -> Iterator[tuple[Setup, FaultProxy]]:
    """An account whose server is reached through a ``FaultProxy``."""
    with FaultProxy(dovecot.port) as proxy:
        yield make_setup(replace(imap_account, port=proxy.port), tmp_path, "fs"), proxy
