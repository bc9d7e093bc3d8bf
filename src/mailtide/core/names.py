"""Folder-name rules shared by every store.

A canonical folder name is Unicode, "/"-separated, "INBOX" for the inbox.
A name that could escape the account's root or confuse a file system or a
mail client is refused here, once, for every store: empty components,
"." and "..", NUL and other control characters, a leading or trailing "/".
"""

from __future__ import annotations

import unicodedata


class BadFolderName(ValueError):
    """The reason a folder name is refused (the message is for the user)."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe canonical folder name, else raise BadFolderName."""
    if not name:
        raise BadFolderName("empty folder name")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029":
            raise BadFolderName(f"control character U+{ord(ch):04X} in folder name {name!r}")
    if name.startswith("/") or name.endswith("/"):
        raise BadFolderName(f"folder name {name!r} starts or ends with '/'")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise BadFolderName(f"folder name {name!r} has an empty, '.' or '..' component")
    if "\\" in name:
        raise BadFolderName(f"backslash in folder name {name!r}")
    return name


def is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


def canonical(name: str) -> str:
    """INBOX in any case becomes "INBOX"; other names are kept as they are."""
    return "INBOX" if is_inbox(name) else name


def parents(name: str) -> list[str]:
    """The ancestors of a canonical name, outermost first: "a/b/c" -> ["a", "a/b"]."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
