"""The retry keys of an account: defaults, good values, and a clear line for each bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ConfigError, load_config

from .test_config_load import GOOD


def load(tmp_path: Path, extra: str) -> object:
    file = tmp_path / "config.toml"
    file.write_text(GOOD.replace('remote = "work-remote"\n', f'remote = "work-remote"\n{extra}'))
    return load_config(str(file)).account("work")


def test_defaults(tmp_path: Path) -> None:
    account = load(tmp_path, "")
    assert (account.retries, account.retry_delay) == (3, 2.0)  # type: ignore[attr-defined]


def test_values_are_read(tmp_path: Path) -> None:
    account = load(tmp_path, "retries = 0\nretry_delay = 0.25\n")
    assert (account.retries, account.retry_delay) == (0, 0.25)  # type: ignore[attr-defined]
    account = load(tmp_path, "retries = 7\nretry_delay = 5\n")
    assert (account.retries, account.retry_delay) == (7, 5.0)  # type: ignore[attr-defined]
    account = load(tmp_path, 'retry_delay = "1m"\n')
    assert account.retry_delay == 60.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("retries = -1", "account.work.retries: must be from 0 to 100, not -1"),
        ("retries = 1000", "account.work.retries: must be from 0 to 100, not 1000"),
        ("retries = 2.5", "account.work.retries: must be an integer"),
        ("retries = true", "account.work.retries: must be an integer"),
        ("retry_delay = -1", "account.work.retry_delay: must not be negative: -1 (write a"),
        ("retry_delay = 61", "account.work.retry_delay: must be from 0s to 1m, not 61 seconds"),
        ('retry_delay = "61s"', 'account.work.retry_delay: must be from 0s to 1m, not "61s"'),
        ('retry_delay = "2 sec"', 'account.work.retry_delay: not a duration: "2 sec" (write'),
        ("retrys = 3", 'account.work.retrys: unknown key (did you mean "retries"?)'),
    ],
)
def test_bad_values(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra + "\n")
    (line,) = info.value.problems
    assert line.startswith(str(tmp_path / "config.toml") + ":8: ")
    assert expected in line, line
