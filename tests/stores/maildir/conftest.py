"""Fixtures for the Maildir store tests: a fresh root per test, in each layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.stores.maildir import MaildirSettings, MaildirStore


@pytest.fixture(params=["fs", "maildir++"])
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(tmp_path: Path, layout: str) -> MaildirStore:
    root = tmp_path / "Mail"
    root.mkdir()
    s = MaildirStore(MaildirSettings(str(root), layout))  # type: ignore[arg-type]
    await s.connect()
    return s


@pytest.fixture
async def fs_store(tmp_path: Path) -> MaildirStore:
    root = tmp_path / "Mail"
    root.mkdir()
    s = MaildirStore(MaildirSettings(str(root), "fs"))
    await s.connect()
    return s
