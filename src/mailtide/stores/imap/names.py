"""How one server spells folder names: canonical names (Unicode, "/"-separated) to server
names and back, and the folders of a LIST response.

Here and only here: modified UTF-7, the server's hierarchy separator, and the personal
namespace prefix (Courier's "INBOX.") stripped on the way in and put back on the way out.
A server name that cannot be mapped safely raises ``BadFolderName``, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from mailtide.core import mutf7
from mailtide.core.names import BadFolderName, canonical, check_name, is_inbox
from mailtide.stores.base import FolderInfo, UnsafeFolderName
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.parse import ParseError, Untagged, text_of
from mailtide.stores.imap.protocol import Done
from mailtide.stores.imap.seen import response_bytes
from mailtide.stores.imap.special_use import special_use_of

log = structlog.get_logger(__name__)

_NOT_SELECTABLE = frozenset({"\\NOSELECT", "\\NONEXISTENT"})
# RFC 6154 special uses, by their upper-case form as LIST may give them
_SPECIAL_USES = {
    use.upper(): use
    for use in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


@dataclass(frozen=True, slots=True)
class FolderNames:
    """The personal namespace of one server: its prefix and hierarchy separator."""

    prefix: str = ""
    separator: str = "/"

    def server_name(self, name: str) -> str:
        """The server's name for canonical ``name``; UnsafeFolderName if it has none."""
        try:
            check_name(name)
        except BadFolderName as e:
            raise UnsafeFolderName(str(e)) from None
        if is_inbox(name):
            return "INBOX"
        parts = name.split("/")
        if self.separator != "/" and any(self.separator in p for p in parts):
            raise UnsafeFolderName(
                f"folder name {name!r} contains the server's separator {self.separator!r}"
            )
        return self.prefix + self.separator.join(mutf7.encode(p) for p in parts)

    def canonical_name(self, raw: str, separator: str | None = None) -> str:
        """The canonical name for a server name (``separator``: the one its LIST response
        gave); BadFolderName with the reason if none."""
        sep = separator or self.separator
        name = raw
        if self.prefix and name.startswith(self.prefix) and not is_inbox(name):
            name = name[len(self.prefix) :]
        try:
            decoded = mutf7.decode(name)
        except ValueError as e:
            raise BadFolderName(f"folder {raw!r} is not valid modified UTF-7: {e}") from None
        parts = decoded.split(sep) if sep else [decoded]
        if sep != "/" and any("/" in p for p in parts):
            raise BadFolderName(f"folder {raw!r} has '/' inside a name component")
        return check_name(canonical("/".join(parts)))

    def folder_of(self, u: Untagged) -> FolderInfo | None:
        """The folder a ``* LIST (flags) sep name`` response names; None for the namespace
        root itself (unless it is INBOX, as Courier's "INBOX." is); BadFolderName or
        ParseError when it cannot be used."""
        t = u.tokens()
        flags = t.value()
        sep = t.value()
        raw = t.value()
        if not isinstance(flags, list) or raw is None or isinstance(raw, list):
            raise ParseError("LIST response without flags or name")
        raw_name = text_of(raw)
        if not raw_name.isascii():
            raise BadFolderName(f"folder {raw_name!r} is 8-bit, not modified UTF-7")
        if (
            self.prefix
            and raw_name == self.prefix.rstrip(self.separator)
            and not is_inbox(raw_name)
        ):
            return None
        attributes = [text_of(f) for f in flags]
        name = self.canonical_name(raw_name, text_of(sep) if sep is not None else None)
        return FolderInfo(
            name=name,
            selectable=not ({a.upper() for a in attributes} & _NOT_SELECTABLE),
            special_use=special_use_of(attributes),
        )


async def read_namespace(client: ImapClient, seen: list[bytes | None] | None = None) -> FolderNames:
    """The personal namespace the server announces (NAMESPACE, where it has it), else the
    default: no prefix, "/".  ``seen`` gets each NAMESPACE answer (imap/seen.py)."""
    if "NAMESPACE" not in client.capabilities:
        return FolderNames()
    return namespace_of(await client.run("NAMESPACE", check=False), seen)


def namespace_of(done: Done, seen: list[bytes | None] | None = None) -> FolderNames:
    """The personal namespace an answer to NAMESPACE announces, else the default (as
    ``read_namespace``)."""
    names = FolderNames()
    for u in done.untagged:
        if u.kind != "NAMESPACE":
            continue
        if seen is not None:
            seen.append(response_bytes(u.raw.lines, u.raw.literals))
        try:
            personal = u.tokens().value()
            if isinstance(personal, list) and personal and isinstance(personal[0], list):
                prefix, sep = personal[0][0], personal[0][1]
                names = FolderNames(
                    text_of(prefix), text_of(sep) if sep is not None else names.separator
                )
        except ParseError as e:
            log.warning("imap.bad_namespace", error=str(e))
    return names


def raw_name(u: Untagged) -> str:
    """The name a LIST response gives, as sent (for a report about it)."""
    try:
        t = u.tokens()
        t.value()
        t.value()
        return text_of(t.value())
    except ParseError:
        return u.raw.first.decode("ascii", "replace")
