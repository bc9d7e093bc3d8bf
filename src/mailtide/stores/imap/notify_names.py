"""The names NOTIFY gives mailboxes: Dovecot 2.3 sends a non-ASCII name in UTF-8.

RFC 5465 says nothing of it, but Dovecot 2.3 names mailboxes in NOTIFY's STATUS (the replies
to NOTIFY SET STATUS and the news after it) in UTF-8, as a literal (``* STATUS {9}`` then
``Entwürfe``), although UTF8=ACCEPT was never enabled; LIST and STATUS commands on the same
connection still use modified UTF-7.  Such a name is not modified UTF-7, so it could not be
mapped, and its news meant "any mailbox": every mailbox was synced for one delivery.

A name that is not valid modified UTF-7 but is valid UTF-8, and equals the decoded name of a
mailbox the watch covers, is that mailbox.  Anything else stays unmapped (any mailbox: a
full listing finds it), never a guess.  A name that is valid modified UTF-7 is read as such,
as RFC 3501 wants (a UTF-8 name made only of printable ASCII reads the same either way,
except for "&", which modified UTF-7 writes "&-").
"""

from __future__ import annotations

from collections.abc import Iterable

from mailtide.core import mutf7
from mailtide.core.names import BadFolderName
from mailtide.stores.imap.names import FolderNames
from mailtide.stores.imap.parse import Value, text_of


def sent_name(raw: Value) -> str:
    """A mailbox name as the server sent it, as text: strict UTF-8 for a quoted string or a
    literal (ValueError when it is not UTF-8: no replacement character may make two names
    equal); ParseError when it is not a short string."""
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8")
    return text_of(raw)


def _is_mutf7(name: str) -> bool:
    try:
        mutf7.decode(name)
    except ValueError:
        return False
    return True


class WatchedNames:
    """The mailboxes NOTIFY's watch covers, by the names NOTIFY SET STATUS gave them (renewed
    with each watch), and what a name in its news stands for."""

    def __init__(self, names: FolderNames) -> None:
        self.names = names
        # The decoded (Unicode) name of each mailbox watched -> the name NOTIFY SET gave it.
        self._by_decoded: dict[str, str] = {}

    def renewed(self, watched: Iterable[str]) -> None:
        """A new watch covers ``watched`` (the names its NOTIFY SET STATUS gave)."""
        self._by_decoded = {}
        for name in watched:
            self._by_decoded.setdefault(_decoded(name), name)

    def watched_name(self, sent: str) -> str:
        """The name NOTIFY SET gave the mailbox that a name in the news stands for (``sent``
        itself when it stands for none): each mailbox is counted under one name."""
        if sent in self._by_decoded.values():
            return sent
        return self._by_decoded.get(_decoded(sent), sent)

    def canonical_name(self, sent: str) -> str:
        """The canonical name of the mailbox a name in NOTIFY's responses stands for;
        BadFolderName when it stands for none that can be named."""
        if _is_mutf7(sent):
            return self.names.canonical_name(sent)
        if sent not in self._by_decoded:
            raise BadFolderName(
                f"folder {sent!r} is neither modified UTF-7 nor the name of a mailbox watched"
            )
        # ``sent`` is the Unicode form of the server's name: its modified UTF-7 form maps as
        # any other name (the namespace prefix, the separator, the checks).
        return self.names.canonical_name(mutf7.encode(sent))


def _decoded(name: str) -> str:
    try:
        return mutf7.decode(name)
    except ValueError:
        return name
