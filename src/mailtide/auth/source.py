"""What a password source is: something asked for the password at every connect.

Each source (``auth.command``, ``auth.secret_file``, ``auth.netrc_file``,
``auth.system_keyring``, the literal in ``auth.password``) reads its secret anew when asked,
so a rotated password is used by the next connection.  Its errors name the source (the
program, the file, the credential, the keyring item) and never hold the secret or anything
that may (a command's stdout or arguments, a file's contents).
"""

from __future__ import annotations

from typing import Protocol

from mailtide.stores.base import StoreError

COMMAND_TIMEOUT = 30.0  # seconds a password or token command may take


class PasswordError(StoreError):
    """The password could not be obtained.  The message is one line for the user."""


class Source(Protocol):
    """Where one repository's password comes from."""

    @property
    def origin(self) -> str:
        """Where the password came from, for a refused login ("read from password_file ...")."""
        ...

    async def password(self) -> str:
        """The password now; PasswordError with a one-line reason when there is none."""
        ...
