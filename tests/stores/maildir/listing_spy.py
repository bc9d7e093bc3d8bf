"""Which new/ and cur/ directories were read: a spy on ``os.scandir`` (in every thread), so a
test can show that a sync listed a Maildir folder, or did not."""

from __future__ import annotations

import os

import pytest


def record_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now until the test ends, every new/ or cur/ directory read, in order."""
    seen: list[str] = []
    scandir = os.scandir

    def spy(path: str | int = ".") -> object:
        if not isinstance(path, int) and os.path.basename(os.fspath(path)) in ("new", "cur"):
            seen.append(os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    return seen
