from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon_helpers import Daemon


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
