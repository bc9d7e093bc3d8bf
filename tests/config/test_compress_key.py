"""``compress`` of an IMAP repository: "auto" (the default), true or false."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ImapRepository

from .remote_helpers import refused, remote_of
from .test_tls_keys import BASE


def load(tmp_path: Path, extra: str) -> ImapRepository:
    (tmp_path / "config.toml").write_text(BASE + extra)
    return remote_of(tmp_path / "config.toml", "work")


@pytest.mark.parametrize(
    ("written", "expected"), [("", "auto"), ('"auto"', "auto"), ("true", True), ("false", False)]
)
def test_compress_values(tmp_path: Path, written: str, expected: object) -> None:
    extra = f"compress = {written}\n" if written else ""
    assert load(tmp_path, extra).compress == expected


@pytest.mark.parametrize("written", ['"yes"', "1", '"on"', '"Auto "', "[true]"])
def test_a_bad_compress_value_is_one_line_naming_file_key_and_what_is_allowed(
    tmp_path: Path, written: str
) -> None:
    (found,) = refused(lambda: load(tmp_path, f"compress = {written}\n"))
    assert found.startswith(f"{tmp_path / 'config.toml'}:")
    assert "repository.work-remote.compress: " in found
    assert 'must be "auto", true or false, not ' in found
    assert "\n" not in found
