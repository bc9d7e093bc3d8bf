"""Maildir file names: what we write and what we read from other clients' names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mailtide.stores.maildir import filenames
from mailtide.stores.maildir.filenames import size_of, split_name


def test_hostname_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filenames.os, "uname", lambda: SimpleNamespace(nodename="a/b:c,d"))
    assert filenames._escaped_host() == "a\\057b\\072c\\054d"


@pytest.mark.parametrize(
    ("name", "unique", "letters", "size"),
    [
        ("1.M2P3Q4.host,U=17,S=120:2,FS", "1.M2P3Q4.host,U=17,S=120", "FS", 120),
        ("1.M2P3Q4.host", "1.M2P3Q4.host", None, None),
        (
            "1700000000.123_4.host,U=99,FMD5=abc:2,",
            "1700000000.123_4.host,U=99,FMD5=abc",
            "",
            None,
        ),
        ("1.2.host,S=3,W=5:2,Sa", "1.2.host,S=3,W=5", "Sa", 3),
        ("1.2.host,U=12x:2,S", "1.2.host,U=12x", "S", None),
    ],
)
def test_names_of_other_clients(
    name: str, unique: str, letters: str | None, size: int | None
) -> None:
    assert split_name(name) == (unique, letters)
    assert size_of(unique) == size


def test_new_names_are_unique_and_carry_the_hint() -> None:
    names = {filenames.new_unique("5") for _ in range(1000)}
    assert len(names) == 1000
    assert all(n.endswith(",U=5") for n in names)
    assert ",U=" not in filenames.new_unique(None)
    assert ",U=" not in filenames.new_unique("../x")
