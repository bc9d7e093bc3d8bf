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

import base64
from collections.abc import Iterable

from mailtide.core.model import Flags

_SYSTEM = {"\\Inbox": "Inbox", "\\Important": "Important", "\\Sent": "Sent", "\\Draft": "Draft"}
_SYSTEM_OF_KEYWORD = {k.upper(): label for label, k in _SYSTEM.items()}
_NOT_KEYWORDS = frozenset({"\\Starred", "\\Trash", "\\Spam"})
_ATOM_SPECIALS = frozenset('(){ %*"\\]&')


def _plain(ch: str) -> bool:
    return 0x21 <= ord(ch) <= 0x7E and ch not in _ATOM_SPECIALS


def keyword_of(label: str) -> str | None:
    """The keyword that stands for ``label`` (as ``stores.imap.gmail`` spells labels); None
    for a label that is no keyword (``\\Starred``, ``\\Trash``, ``\\Spam``, other system
    labels)."""
    if label.startswith("\\"):
        return _SYSTEM.get(label)
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be", "surrogatepass")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for i, ch in enumerate(label):
        if ch == "&":
            flush()
            out.append("&-")
        elif _plain(ch) and not (i == 0 and ch == "$"):  # a leading $ reads as no label
            flush()
            out.append(ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def label_of(keyword: str) -> str | None:
    """The label a keyword stands for; None for a flag that is no label (a system flag, a
    ``$`` keyword) or one that does not decode."""
    if not keyword or keyword[0] in "\\$":
        return None
    system = _SYSTEM_OF_KEYWORD.get(keyword.upper())
    if system is not None:
        return system
    out: list[str] = []
    i = 0
    while i < len(keyword):
        ch = keyword[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = keyword.find("-", i + 1)
        if end < 0:
            return None
        chunk = keyword[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        try:
            raw = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4))
            out.append(raw.decode("utf-16-be"))
        except (ValueError, UnicodeDecodeError):
            return None
    return "".join(out)


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
