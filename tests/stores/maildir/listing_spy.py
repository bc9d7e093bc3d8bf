"""Which new/ and cur/ directories were read, and which files in them were stat-ed by path: a
spy on ``os.scandir``, ``os.stat`` and ``os.lstat`` (in every thread), so a test can show
that a sync listed a Maildir folder, or did not."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

MESSAGE_DIRS = ("new", "cur")


def _names(path: object, depth: int) -> bool:
    """Whether ``path`` is a message directory (depth 0) or a file in one (depth 1)."""
    if isinstance(path, int):
        return False
    text = os.fspath(path)  # type: ignore[call-overload]
    if depth:
        if os.path.basename(text) in ("cur", "new", "tmp"):
            return False  # the folder tree's check that cur/ is no Maildir itself: no message
        text = os.path.dirname(text)
    return os.path.basename(text) in MESSAGE_DIRS


def record_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now until the test ends, every new/ or cur/ directory read, in order."""
    return _record(monkeypatch, "scandir", 0)


def record_file_stats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now until the test ends, every file in a new/ or cur/ stat-ed by its path."""
    return _record(monkeypatch, "lstat", 1, _record(monkeypatch, "stat", 1))


def _record(
    monkeypatch: pytest.MonkeyPatch, name: str, depth: int, seen: list[str] | None = None
) -> list[str]:
    out: list[str] = [] if seen is None else seen
    real: Callable[..., Any] = getattr(os, name)

    def spy(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
        if _names(path, depth):
            out.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, spy)
    return out
