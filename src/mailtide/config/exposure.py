"""A password written in a config file that other users can read.

Not an error (the file works, and it may be the user's private group), but a warning the user
sees once per command, with the fix.
"""

from __future__ import annotations

import shlex
import stat
from collections.abc import Iterable

from mailtide.config.lines import KeyPath
from mailtide.config.model import ImapRepository, Repository

READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH


def exposed_password(file_mode: int, repositories: Iterable[Repository]) -> KeyPath | None:
    """The first ``password`` key in the file when its mode lets group or others read it."""
    if not file_mode & READABLE_BY_OTHERS:
        return None
    for repository in repositories:
        if isinstance(repository, ImapRepository) and repository.password is not None:
            return ("repository", repository.name, "password")
    return None


def exposure_warning(file: str, file_mode: int) -> str:
    """What to tell the user about ``file`` (the text after its location)."""
    mode = stat.S_IMODE(file_mode)
    return (
        f"the file holds a password and can be read by other users (mode {mode:04o}):"
        f" run chmod 600 {shlex.quote(file)}, or use password_command instead"
    )
