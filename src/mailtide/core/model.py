"""Value types shared by every layer.

Nothing here knows which side is IMAP and which is Maildir: the two sides of a
mailbox pair are ``FAR`` and ``NEAR`` (mbsync's words), indexed 0 and 1, so a
rule is written once and applied to ``side`` and ``other(side)``.

Flags are IMAP-style names in every layer above the stores: the system flags
``\\Seen \\Answered \\Flagged \\Draft \\Deleted`` and keywords such as
``$Forwarded``.  ``\\Recent`` is never synced.  Each store maps them to its own
encoding (Maildir letters, IMAP atoms).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Flags = frozenset[str]

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DRAFT = "\\Draft"
DELETED = "\\Deleted"
# A trash setting that names no folder but the one the server marks with this special use
TRASH_SPECIAL_USE = "\\Trash"


class Side(enum.IntEnum):
    """One side of a mailbox pair.  In an account, FAR is the remote repository."""

    FAR = 0
    NEAR = 1

    @property
    def other(self) -> Side:
        return Side(1 - self.value)


SIDES = (Side.FAR, Side.NEAR)


@dataclass(frozen=True, slots=True)
class Identity:
    """What a message *is*, independent of where it is stored.

    ``size`` is the size in canonical CRLF form (what IMAP's RFC822.SIZE
    reports; a Maildir file holding LF line ends is counted as if converted).
    ``header_digest`` is a SHA-256 (hex) of the header section with line ends
    normalised to LF, so the same message gives the same identity on both
    sides.  ``message_id`` is the Message-ID header, or "" when there is none.
    ``body_digest`` covers the start of the body (``core.identity.BODY_PREFIX``
    bytes in CRLF form), so that two messages with the same header section and
    size (a cron mail without Message-ID or Date) stay two; the whole body is
    not hashed, which would cost a server download per candidate.
    """

    message_id: str
    size: int
    header_digest: str
    body_digest: str = ""  # of the first BODY_PREFIX bytes of the body, CRLF form
    # Bytes (CRLF form) of other synchronisers' marks (mbsync's X-TUID, ...) that the header
    # digest and ``size`` leave out, so the copy without them is the same message; the stored
    # message is ``size + marks`` long.  Not part of what the message is: not compared.
    marks: int = field(default=0, compare=False)
    # The same message as identities were computed before mail clients' copy lines
    # (``core.identity.CLIENT_LINES``) were left out, when that differs: records written then
    # hold it, so a message is looked for under both (``Identity.forms``).  Not stored.
    legacy: Identity | None = field(default=None, compare=False)

    def forms(self) -> tuple[Identity, ...]:
        """The identities a record may know this message by: this one, and the legacy one."""
        if self.legacy is None or self.legacy == self:
            return (self,)
        return (self, self.legacy)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """One message as a side lists it in a snapshot.

    ``id`` is the side's own key: the UID (as a decimal string) on IMAP, the
    unique part of the file name on Maildir (stable across flag renames).
    ``identity`` is present when
    the side could give it cheaply or the engine asked for it.
    """

    id: str
    flags: Flags
    size: int = 0
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class PendingFlags:
    """A flag update being carried, made durable before the first side is changed: both sides
    are to hold ``flags``; ``sides`` are the ones being changed.  The record that follows the
    update clears it; a run that dies in between leaves it for the next (``settle_pending``)."""

    flags: Flags
    sides: frozenset[Side]


@dataclass(frozen=True, slots=True)
class Record:
    """What the last sync agreed on for one message present on both sides.

    ``ids[Side.FAR]`` and ``ids[Side.NEAR]`` are the two sides' keys.  A record
    with an empty id on one side is a *pending upload/download*: the intent was
    recorded, the result was not (see the engine's journal).  ``pending`` is a
    flag update that was being carried when the record was last written.
    """

    ids: tuple[str, str]
    flags: Flags
    identity: Identity | None = None
    pending: PendingFlags | None = None


def pair_ids(side: Side, this: str, that: str) -> tuple[str, str]:
    """The (far, near) tuple for ``this`` on ``side`` and ``that`` on the other side."""
    return (this, that) if side is Side.FAR else (that, this)


@dataclass(frozen=True, slots=True)
class Listing:
    """Every message a side holds, kept compact (a big mailbox lists 50k messages where a
    re-sync finds a few changed): ``keys`` maps each id to a key of its flags (ids with one key
    have the same flags: a Maildir file's info letters), ``flags`` each key to the flags it
    stands for, ``sizes`` each id to its size (0 where not known; a store may work a size out
    only when it is asked for)."""

    keys: Mapping[str, str]
    flags: Mapping[str, Flags]
    sizes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, messages: Iterable[MessageInfo]) -> Listing:
        """The listing of ``messages`` (their identities are left out)."""
        keys: dict[str, str] = {}
        flags: dict[str, Flags] = {}
        sizes: dict[str, int] = {}
        named: dict[Flags, str] = {}
        for m in messages:
            key = named.get(m.flags)
            if key is None:
                key = named[m.flags] = str(len(named))
                flags[key] = m.flags
            keys[m.id] = key
            sizes[m.id] = m.size
        return cls(keys, flags, sizes)

    def __len__(self) -> int:
        return len(self.keys)

    def info(self, id: str) -> MessageInfo:
        return MessageInfo(id, self.flags[self.keys[id]], self.sizes.get(id, 0))

    def messages(self) -> list[MessageInfo]:
        """Every message as a ``MessageInfo`` (an object each: what a full reconcile takes)."""
        return [self.info(id) for id in self.keys]

    def digest(self) -> str:
        """``listing_digest`` of the messages, without an object per message."""
        texts = {key: " ".join(sorted(flags)) for key, flags in self.flags.items()}
        return _digest(f"{id}\0{texts[key]}" for id, key in self.keys.items())


def listing_digest(messages: Iterable[MessageInfo]) -> str:
    """A digest of a side's full listing (ids and flags): equal digests, equal listings."""
    return _digest(f"{m.id}\0{' '.join(sorted(m.flags))}" for m in messages)


def _digest(lines: Iterable[str]) -> str:
    import hashlib  # here: a start that digests nothing does not load it (issue 12)

    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()


def fold_flag(flag: str) -> str:
    """The key two spellings of one flag share: IMAP flags and keywords ignore case."""
    return flag.casefold()


def spelled(flags: Flags, spelling: dict[str, str]) -> Flags:
    """``flags`` with each one written the way ``spelling`` (folded -> chosen) says; a flag not
    in ``spelling`` gets its own spelling added as the choice."""
    out = set()
    for flag in flags:
        out.add(spelling.setdefault(fold_flag(flag), flag))
    return frozenset(out)
