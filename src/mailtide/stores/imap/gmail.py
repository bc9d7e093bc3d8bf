"""Gmail's IMAP extension (``X-GM-EXT-1``): a message's Gmail identity and labels, read from
FETCH responses and written for STORE.

Gmail keeps one message however many labels show it as folders.  ``X-GM-MSGID`` names that
message in every mailbox (an unsigned 64-bit number, where a UID names it in one mailbox
only), ``X-GM-THRID`` its conversation, and ``X-GM-LABELS`` its labels: user labels as
strings in modified UTF-7 with "/" between levels (like mailbox names), system labels as
``\\Inbox``, ``\\Sent``, ``\\Draft``, ``\\Important``, ``\\Starred``, ``\\Trash``, ``\\Spam``.

Gmail leaves the selected mailbox's own label out of ``X-GM-LABELS``; ``with_selected`` puts
it back.  As everywhere in parse.py, a value that does not follow the grammar raises
``ParseError`` (the message is skipped), never a guess: a label read wrong would later read
as the user taking it away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailtide.core import mutf7
from mailtide.stores.imap.parse import ParseError, Value, number_of, text_of

EXTENSION = "X-GM-EXT-1"
FETCH_ITEMS = "X-GM-MSGID X-GM-THRID X-GM-LABELS"
SYSTEM_LABELS = (
    "\\Draft",
    "\\Important",
    "\\Inbox",
    "\\Sent",
    "\\Spam",
    "\\Starred",
    "\\Trash",
)
_SYSTEM_BY_UPPER = {label.upper(): label for label in SYSTEM_LABELS}


def speaks_gmail(capabilities: Iterable[str]) -> bool:
    """Whether the server announces Gmail's extension."""
    return EXTENSION in {c.upper() for c in capabilities}


@dataclass(frozen=True, slots=True)
class GmailMessage:
    """What Gmail says of one message: ``msgid`` (X-GM-MSGID), ``thread`` (X-GM-THRID, None
    when not asked for) and ``labels`` (system labels spelt as in ``SYSTEM_LABELS``, user
    labels as canonical folder names, Unicode with "/")."""

    msgid: int
    thread: int | None
    labels: frozenset[str]


def gmail_message(attrs: dict[str, Value]) -> GmailMessage:
    """The Gmail attributes of a FETCH response (``parse.fetch_attributes``); X-GM-MSGID and
    X-GM-LABELS must be there."""
    if "X-GM-MSGID" not in attrs or "X-GM-LABELS" not in attrs:
        raise ParseError("FETCH response without X-GM-MSGID or X-GM-LABELS")
    thread = attrs.get("X-GM-THRID")
    return GmailMessage(
        msgid=_id64(attrs["X-GM-MSGID"], "X-GM-MSGID"),
        thread=None if thread is None else _id64(thread, "X-GM-THRID"),
        labels=labels_of(attrs["X-GM-LABELS"]),
    )


def message_id_of(value: Value) -> int:
    """An ``X-GM-MSGID`` value."""
    return _id64(value, "X-GM-MSGID")


def _id64(value: Value, what: str) -> int:
    number = number_of(value)
    if not 0 < number < 1 << 64:
        raise ParseError(f"{what} {number} is not an unsigned 64-bit number above 0")
    return number


def labels_of(value: Value) -> frozenset[str]:
    """An ``X-GM-LABELS`` list as labels (see ``GmailMessage``)."""
    if not isinstance(value, list):
        raise ParseError(f"X-GM-LABELS is not a list: {value!r}"[:120])
    return frozenset(label_of(item) for item in value)


def label_of(value: Value) -> str:
    """One label: an atom or a string.  One that starts with a backslash is a system label
    (Gmail sends them as atoms, sometimes quoted); any other is decoded from modified UTF-7."""
    if isinstance(value, list) or value is None:
        raise ParseError(f"X-GM-LABELS holds {value!r}, which is not a label"[:120])
    text = text_of(value)
    if not text or not text.isprintable():
        raise ParseError(f"X-GM-LABELS holds {text!r}, which is not a label"[:120])
    if text.startswith("\\"):
        return _SYSTEM_BY_UPPER.get(text.upper(), text)
    try:
        return mutf7.decode(text)
    except ValueError as e:
        raise ParseError(f"label {text!r} is not valid modified UTF-7: {e}"[:120]) from None


# The label a special-use mailbox shows; \All, \Trash and \Junk show none (leaving them is
# no label taken away but a move to Trash, or a deletion for good).
_LABEL_OF_USE = {
    "\\Sent": "\\Sent",
    "\\Drafts": "\\Draft",
    "\\Important": "\\Important",
    "\\Flagged": "\\Starred",
}


def label_of_mailbox(name: str, special_use: str | None) -> str | None:
    """The label whose mailbox ``name`` (canonical) is, with its special use: ``\\Inbox``
    for INBOX, a system label for Sent, Drafts, Important and Starred, the name itself for a
    user label; None for All Mail, Trash, Spam and any other special use."""
    if name == "INBOX":
        return "\\Inbox"
    if special_use is None:
        return name
    return _LABEL_OF_USE.get(special_use)


def with_selected(labels: frozenset[str], selected: str | None) -> frozenset[str]:
    """``labels`` as FETCHed in the mailbox of label ``selected`` (None: All Mail, which is
    no label), with that label put back."""
    return labels if selected is None else labels | {selected}


def labels_argument(labels: Iterable[str]) -> str:
    """The parenthesised list for ``STORE +X-GM-LABELS``: system labels as atoms, user labels
    as quoted strings in modified UTF-7, sorted."""
    parts = []
    for label in sorted(labels):
        if label.startswith("\\"):
            parts.append(label)
            continue
        encoded = "/".join(mutf7.encode(part) for part in label.split("/"))
        parts.append('"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "(" + " ".join(parts) + ")"
