"""Gmail's labels as IMAP keywords (``gmail_labels_as = "keywords"``): how a label is spelt as
a keyword of a message in All Mail, and back.

In this mode All Mail is synced as one folder, and each message's labels travel with its
flags, so the three-way flag merge (core/reconcile.py) carries a label added or removed on
either side like any keyword, and the Maildir keeps them as Dovecot keyword letters.

The spelling, which must be an IMAP atom (a Maildir keyword and a flag in the state):

- a user label is its own name, with characters an atom cannot hold (space, ``(){%*"\\]``,
  anything outside printable ASCII) written as modified UTF-7 writes non-ASCII
  (``&`` + base64 of UTF-16 + ``-``; ``&`` itself is ``&-``): ``Project Alpha`` is
  ``Project&ACA-Alpha``, ``Entwürfe`` is ``Entw&APw-rfe``, ``Work/2024`` stays so (and
  a leading ``$`` is written so too: ``$Money`` is ``&ACQ-Money``);
- the system labels ``\\Inbox``, ``\\Important``, ``\\Sent`` and ``\\Draft`` drop their
  backslash (``Inbox``...): Gmail refuses user labels of those names, and a keyword
  cannot start with a backslash;
- ``\\Starred`` is no keyword: it is ``\\Flagged`` (Maildir ``F``), which Gmail keeps in
  step with the star itself; ``\\Trash`` and ``\\Spam`` never show in All Mail.

A keyword that starts with ``$`` (``$Forwarded``, ``$Junk``, ``$MDNSent``) stays an IMAP
keyword; every other keyword on a message of All Mail is a label.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailtide.core import mutf7
from mailtide.core.model import Flags

_SYSTEM = {"\\Inbox": "Inbox", "\\Important": "Important", "\\Sent": "Sent", "\\Draft": "Draft"}
_SYSTEM_OF_KEYWORD = {k.upper(): label for label, k in _SYSTEM.items()}
_NOT_KEYWORDS = frozenset({"\\Starred", "\\Trash", "\\Spam"})
_ATOM_SPECIALS = frozenset('(){ %*"\\]&')


def _literal(at: int, ch: str) -> bool:
    """Whether a label's character stands for itself in its keyword: a plain atom character,
    but not a leading ``$`` (that would read as no label)."""
    return 0x21 <= ord(ch) <= 0x7E and ch not in _ATOM_SPECIALS and not (at == 0 and ch == "$")


def keyword_of(label: str) -> str | None:
    """The keyword that stands for ``label`` (as ``stores.imap.gmail`` spells labels); None
    for a label that is no keyword (``\\Starred``, ``\\Trash``, ``\\Spam``, other system
    labels) or cannot be spelt (a lone surrogate)."""
    if label.startswith("\\"):
        return _SYSTEM.get(label)
    try:
        return mutf7.encode(label, _literal)
    except ValueError:
        return None


def label_of(keyword: str) -> str | None:
    """The label a keyword stands for; None for a flag that is no label (a system flag, a
    ``$`` keyword) or one that does not decode."""
    if not keyword or keyword[0] in "\\$":
        return None
    system = _SYSTEM_OF_KEYWORD.get(keyword.upper())
    if system is not None:
        return system
    try:
        return mutf7.decode(keyword, _literal)
    except ValueError:
        return None


def with_labels(flags: Flags, labels: Iterable[str]) -> Flags:
    """A message's flags with its labels added as keywords."""
    keywords = {k for label in labels if label not in _NOT_KEYWORDS if (k := keyword_of(label))}
    return flags | frozenset(keywords)


def split(flags: Iterable[str]) -> tuple[Flags, frozenset[str]]:
    """Flags as (IMAP flags, labels): what FLAGS takes and what X-GM-LABELS takes."""
    plain: set[str] = set()
    labels: set[str] = set()
    for flag in flags:
        label = label_of(flag)
        if label is None:
            plain.add(flag)
        else:
            labels.add(label)
    return frozenset(plain), frozenset(labels)
