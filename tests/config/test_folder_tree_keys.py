"""The folder keys of an account: ``folder_delete`` and ``subscribed_only``, their defaults,
good values, and a clear line for each bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ConfigError
from mailtide.wiring import folder_policy_of

from .test_retry_keys import load


def test_defaults_and_values_reach_the_engine(tmp_path: Path) -> None:
    account = load(tmp_path, "")
    policy = folder_policy_of(account)  # type: ignore[arg-type]
    assert (policy.delete, policy.subscribed_only) == ("propagate-if-empty", False)
    for mode in ("propagate", "never", "propagate-if-empty"):
        account = load(tmp_path, f'folder_delete = "{mode}"\nsubscribed_only = true\n')
        policy = folder_policy_of(account)  # type: ignore[arg-type]
        assert (policy.delete, policy.subscribed_only) == (mode, True)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'folder_delete = "always"',
            'account.work.folder_delete: must be one of "propagate-if-empty", "propagate", '
            '"never", not "always"',
        ),
        ("folder_delete = true", "account.work.folder_delete: must be a string"),
        ('subscribed_only = "yes"', "account.work.subscribed_only: must be true or false"),
        ("subscribedonly = true", 'unknown key (did you mean "subscribed_only"?)'),
    ],
)
def test_bad_values(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra + "\n")
    (line,) = info.value.problems
    assert line.startswith(str(tmp_path / "config.toml") + ":8: ")
    assert expected in line, line
