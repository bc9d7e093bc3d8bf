"""Folder names <-> directories, for the two Maildir layouts.

Every name is checked by ``core.names.check_name`` first, then by the
layout's own rule (what the layout cannot represent is refused, never
mangled), and on disk the directory must resolve inside the root: a symlink
leading out of the account's Maildir is refused.  Listing reports what it
refuses as (raw name, reason) and lists the rest.

``fs``:        INBOX = <root>/INBOX, "a/b" = <root>/a/b (UTF-8 names).
               cur, new and tmp cannot be folder names; hidden dirs are skipped.
``maildir++``: INBOX = <root>, "a/b" = <root>/.a.b; a "." inside a component
               cannot be represented.  A folder mailtide makes holds an empty
               ``maildirfolder`` file, as Courier and Dovecot write it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from mailtide.core.names import BadFolderName, check_name, is_inbox
from mailtide.stores.base import UnsafeFolderName

MAILDIR_SUBDIRS = ("cur", "new", "tmp")
SUBFOLDER_MARKER = "maildirfolder"
_NAME_MAX = 255  # bytes in one path component on every Linux file system we care about


def is_maildir(path: str) -> bool:
    """A directory is a mail folder when it has cur/ and new/ (tmp/ is made on demand)."""
    return os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new"))


def is_inside(root_real: str, path: str) -> bool:
    """True when ``path`` resolves (symlinks followed) to ``root_real`` or below it."""
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


@dataclass(slots=True)
class Listing:
    folders: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


class FolderLayout(Protocol):
    def relative(self, name: str) -> list[str]:
        """Path components of folder ``name`` below the root; raises UnsafeFolderName."""
        ...

    def marker(self, name: str) -> str | None:
        """The empty file a new folder ``name`` carries to say it is a subfolder, if any."""
        ...

    def scan(self, root_real: str) -> Listing: ...


def _split(name: str) -> list[str]:
    try:
        check_name(name)
    except BadFolderName as err:
        raise UnsafeFolderName(str(err)) from None
    parts = name.split("/")
    if is_inbox(parts[0]):
        parts[0] = "INBOX"
    return parts


def normalized(name: str) -> str:
    """The canonical spelling of a safe name: "inbox/Sub" -> "INBOX/Sub" (as listings give it)."""
    return "/".join(_split(name))


def _check_length(name: str, component: str) -> None:
    if len(component.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        raise UnsafeFolderName(f"folder name {name!r} is too long for a directory name")


class FsLayout:
    """INBOX at <root>/INBOX, folders as nested UTF-8 directories."""

    def relative(self, name: str) -> list[str]:
        parts = _split(name)
        for part in parts:
            if part in MAILDIR_SUBDIRS:
                raise UnsafeFolderName(
                    f"folder name {name!r}: {part!r} is a Maildir subdirectory and cannot be "
                    "a folder in the fs layout"
                )
            if part.startswith("."):
                # hidden directories are not listed, so the folder would vanish after a sync
                raise UnsafeFolderName(
                    f"folder name {name!r}: a component starting with '.' would be a hidden "
                    "directory in the fs layout"
                )
            _check_length(name, part)
        return parts

    def marker(self, name: str) -> str | None:
        return None

    def scan(self, root_real: str) -> Listing:
        listing = Listing()
        if is_maildir(root_real):
            listing.refused.append(
                ("", "the Maildir root itself holds cur/ and new/: is the layout maildir++?")
            )
        seen = {os.path.realpath(root_real)}
        self._walk(root_real, root_real, [], listing, seen)
        listing.folders.sort()
        return listing

    def _walk(
        self, root_real: str, dirpath: str, parts: list[str], out: Listing, seen: set[str]
    ) -> None:
        try:
            with os.scandir(dirpath) as it:
                # real directories before symlinks, so an alias never hides the folder itself
                entries = sorted(it, key=lambda e: (e.is_symlink(), e.name))
        except OSError as err:
            if parts:
                out.refused.append(("/".join(parts), f"cannot list its directory: {err}"))
            return
        for entry in entries:
            raw = "/".join([*parts, entry.name])
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_dir():
                    continue
            except OSError:
                continue
            if entry.name in MAILDIR_SUBDIRS and not is_maildir(entry.path):
                continue  # a maildir's own cur/new/tmp, or the remains of one
            if entry.is_symlink() and not is_inside(root_real, entry.path):
                out.refused.append((raw, "symlink leads outside the Maildir root"))
                continue
            if not parts and is_inbox(entry.name) and entry.name != "INBOX":
                # INBOX maps to <root>/INBOX exactly; another spelling would not round-trip
                out.refused.append((raw, "a case variant of INBOX (rename it to INBOX)"))
                continue
            try:
                self.relative(raw)
            except UnsafeFolderName as err:
                out.refused.append((raw, str(err)))
                continue
            real = os.path.realpath(entry.path)
            if real in seen:  # a symlink loop or a second path to the same folder
                continue
            seen.add(real)
            if is_maildir(entry.path):
                out.folders.append(raw)
            self._walk(root_real, entry.path, [*parts, entry.name], out, seen)


class MaildirPlusPlusLayout:
    """INBOX at <root>, folders as <root>/.A.B (Courier / Dovecot maildir++)."""

    def relative(self, name: str) -> list[str]:
        parts = _split(name)
        if parts == ["INBOX"]:
            return []
        for part in parts:
            if "." in part:
                raise UnsafeFolderName(
                    f"folder name {name!r}: {part!r} contains '.', the hierarchy separator "
                    "of the maildir++ layout"
                )
        dirname = "." + ".".join(parts)
        _check_length(name, dirname)
        return [dirname]

    def marker(self, name: str) -> str | None:
        # Courier's and Dovecot's sign of a subfolder (deliver tools use it for quota files)
        return SUBFOLDER_MARKER if self.relative(name) else None

    def scan(self, root_real: str) -> Listing:
        listing = Listing()
        if is_maildir(root_real):
            listing.folders.append("INBOX")
        try:
            with os.scandir(root_real) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            listing.refused.append(("", f"cannot list the Maildir root: {err}"))
            return listing
        for entry in entries:
            raw = entry.name
            if raw in (".", "..") or raw in MAILDIR_SUBDIRS:
                continue
            try:
                if not entry.is_dir():
                    continue
            except OSError:
                continue
            if not raw.startswith("."):
                if is_maildir(entry.path):  # mail the layout cannot see: say so, every run
                    listing.refused.append(
                        (raw, "a Maildir folder, but maildir++ folders are named .NAME")
                    )
                continue
            parts = raw[1:].split(".")
            name = "/".join(parts)
            if entry.is_symlink() and not is_inside(root_real, entry.path):
                listing.refused.append((raw, "symlink leads outside the Maildir root"))
                continue
            if is_inbox(parts[0]) and parts[0] != "INBOX":
                listing.refused.append((raw, "a case variant of INBOX (rename it to .INBOX...)"))
                continue
            if name == "INBOX":
                listing.refused.append((raw, "conflicts with INBOX, which is the root itself"))
                continue
            try:
                check_name(name)
            except BadFolderName as err:
                listing.refused.append((raw, str(err)))
                continue
            if is_maildir(entry.path):
                listing.folders.append(name)
        listing.folders.sort()
        return listing


def layout_for(kind: str) -> FolderLayout:
    if kind == "fs":
        return FsLayout()
    if kind == "maildir++":
        return MaildirPlusPlusLayout()
    raise ValueError(f"unknown Maildir layout {kind!r}")
