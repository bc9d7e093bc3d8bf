"""What a Maildir repository needs to know: where it lives and how folders are laid out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layout = Literal["fs", "maildir++"]
LAYOUTS: tuple[Layout, ...] = ("fs", "maildir++")


@dataclass(frozen=True, slots=True)
class MaildirSettings:
    """``path`` is the account's Maildir root (``~`` is expanded by the store too).

    ``layout`` is ``"fs"`` (INBOX at ``<path>/INBOX``, folders as nested directories)
    or ``"maildir++"`` (INBOX at ``<path>``, folders as ``<path>/.A.B``).
    """

    path: str
    layout: Layout = "fs"
    table: str = "[repository]"  # where the user configured it, for messages

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown Maildir layout {self.layout!r} (use 'fs' or 'maildir++')")
