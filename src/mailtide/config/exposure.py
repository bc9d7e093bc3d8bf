"""A secret written in a config file that other users can read: a ``password`` or an
``oauth2_client_secret``.

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

# The secret each key holds, and the key that reads it from elsewhere instead.
SECRET_KEYS = {
    "password": ("a password", "password_command"),
    "oauth2_client_secret": ("an OAuth2 client secret", "oauth2_client_secret_command"),
}


def exposed_secret(file_mode: int, repositories: Iterable[Repository]) -> KeyPath | None:
    """The first secret key (``SECRET_KEYS``) in the file when its mode lets group or others
    read it."""
    if not file_mode & READABLE_BY_OTHERS:
        return None
    for repository in repositories:
        if not isinstance(repository, ImapRepository):
            continue
        if repository.password is not None:
            return ("repository", repository.name, "password")
        if repository.oauth2 is not None and repository.oauth2.client_secret is not None:
            return ("repository", repository.name, "oauth2_client_secret")
    return None


def exposure_warning(file: str, file_mode: int, key: str = "password") -> str:
    """What to tell the user about ``file`` holding ``key`` (the text after its location)."""
    mode = stat.S_IMODE(file_mode)
    secret, instead = SECRET_KEYS[key]
    return (
        f"the file holds {secret} and can be read by other users (mode {mode:04o}):"
        f" run chmod 600 {shlex.quote(file)}, or use {instead} instead"
    )
