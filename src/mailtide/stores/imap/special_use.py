"""Special-use mailboxes (RFC 6154): the attribute a LIST response gives a mailbox such as
``\\Trash`` or ``\\All``, and the folders a repository leaves out by it.

A server names its Trash, Sent or All Mail in the account's language (Gmail's
``[Gmail]/Papierkorb``), so a rule about them goes by the attribute, never the name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailtide.core.folder_filter import FolderFilter
from mailtide.stores.base import FolderInfo

# RFC 6154 and RFC 8457 (\Important), spelt as the RFCs do; attributes are case-insensitive.
SPECIAL_USES = (
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Important",
    "\\Junk",
    "\\Sent",
    "\\Trash",
)
_BY_UPPER = {use.upper(): use for use in SPECIAL_USES}


def special_use_of(attributes: Iterable[str]) -> str | None:
    """The special use among a LIST response's attributes (the first, should a server give
    two), spelt as in ``SPECIAL_USES``; None for an ordinary mailbox."""
    for attribute in attributes:
        use = _BY_UPPER.get(attribute.upper())
        if use is not None:
            return use
    return None


ALL_MAIL = "\\All"
NO_FOLDER = FolderFilter(include=())  # selects nothing


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Folders a store does not list: those with a special use in ``uses``, unless ``named``
    (the patterns the user wrote to name single folders) selects the folder.

    Gmail's All Mail holds every message a second time and its Trash and Spam what the user
    threw away, so a Gmail repository leaves them out (config.gmail)."""

    uses: frozenset[str] = frozenset()
    named: FolderFilter = NO_FOLDER
    # Only the folder of this special use is listed (Gmail's labels as keywords: All Mail).
    only: str | None = None

    def hides(self, folder: FolderInfo) -> bool:
        if self.only is not None:
            return folder.special_use != self.only
        return folder.special_use in self.uses and not self.named.selects(folder.name)
