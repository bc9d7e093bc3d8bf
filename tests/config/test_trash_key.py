"""An account's ``trash``: where a local deletion goes on the server instead of an expunge."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ConfigError, load_config

from .test_config_load import GOOD

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def load(tmp_path: Path, extra: str) -> object:
    file = tmp_path / "config.toml"
    file.write_text(GOOD.replace('remote = "work-remote"\n', f'remote = "work-remote"\n{extra}'))
    return load_config(str(file)).account("work")


def test_not_set_by_default(tmp_path: Path) -> None:
    assert load(tmp_path, "").trash is None  # type: ignore[attr-defined]


def test_a_folder_name_canonical(tmp_path: Path) -> None:
    assert load(tmp_path, 'trash = "Trash"\n').trash == "Trash"  # type: ignore[attr-defined]
    assert load(tmp_path, 'trash = "Old/Trash"\n').trash == "Old/Trash"  # type: ignore[attr-defined]
    assert load(tmp_path, 'trash = "inbox"\n').trash == "INBOX"  # type: ignore[attr-defined]


def test_true_means_the_servers_special_use_trash(tmp_path: Path) -> None:
    assert load(tmp_path, "trash = true\n").trash == "\\Trash"  # type: ignore[attr-defined]
    assert load(tmp_path, "trash = false\n").trash is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('trash = ""', "account.work.trash: must not be empty (a folder name, or true for"),
        ("trash = 3", "account.work.trash: must be a folder name, or true for the server's"),
        ('trahs = "Trash"', 'account.work.trahs: unknown key (did you mean "trash"?)'),
    ],
)
def test_bad_values(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra + "\n")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_documented_in_the_example() -> None:
    assert '# trash = "Trash"' in EXAMPLE.read_text(encoding="utf-8")


def test_trash_new_only_is_off_by_default_and_read_as_a_boolean(tmp_path: Path) -> None:
    assert load(tmp_path, 'trash = "Trash"\n').trash_new_only is False  # type: ignore[attr-defined]
    account = load(tmp_path, 'trash = "Trash"\ntrash_new_only = true\n')
    assert account.trash_new_only is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'trash = "Trash"\ntrash_new_only = "yes"',
            "account.work.trash_new_only: must be true or false",
        ),
        ("trash_new_only = true", "account.work.trash_new_only: has no effect without trash"),
        (
            "trash = false\ntrash_new_only = true",
            "account.work.trash_new_only: has no effect without trash",
        ),
    ],
)
def test_trash_new_only_bad_values(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra + "\n")
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert len(info.value.problems) == 1, info.value.problems


def test_trash_new_only_documented_in_the_example() -> None:
    assert "# trash_new_only = false" in EXAMPLE.read_text(encoding="utf-8")
