"""The one interface every store implements (IMAP, Maildir, later Gmail).

The engine sees only these protocols, so IMAP <-> IMAP needs no new code
above this line.  Stores know nothing of state, of the other side, or of
the sync rules: they list, read and write one repository.

Folder names above this line are *canonical*: Unicode (not modified UTF-7),
"/" as the hierarchy separator, "INBOX" for the inbox.  Each store maps
them to its own encoding and refuses a name it cannot hold safely (raising
``UnsafeFolderName``).

Message content crosses this line in canonical form: CRLF line ends, as on
the IMAP wire.  A Maildir store converts to LF on write and back on read.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mailtide.core.model import Flags, Identity, Listing, MessageInfo

# Bytes of a big body handled at a time wherever it is read, converted and written in pieces
# (a spooled literal read back, a Maildir file read or written, a body held in memory given
# out): each piece is copied two or three times on its way, once per mailbox in flight.
# 1 MiB pieces cost 5 MB of the 50k initial sync's peak RSS against these (69 → 64 MB), for
# no time (13.7-13.9 s against 13.8-14.1 s).
BODY_PIECE = 256 << 10


class StoreError(Exception):
    """A store could not do what was asked.  The message is for the user."""


class ConnectionLost(StoreError):
    """The connection broke, was refused or the server stopped answering: the same work may
    succeed on a new connection, so the engine retries it (with backoff) before giving up."""


class AuthenticationFailed(StoreError):
    """The server refused the credentials (a wrong password, an expired token).  Trying
    again with the same ones would fail the same way, and repeated failures may lock the
    account, so it is never retried within a run; nor is it a ``ConnectionLost``."""


class MailboxError(StoreError):
    """One mailbox failed; the rest of the account can go on."""


class MessageRefused(MailboxError):
    """The store refused one message of an append (the server said NO to it).  The messages
    before it are stored, their ids in ``delivered``; the ones after it were not tried."""

    def __init__(self, message: str, delivered: list[str | None], reason: str = "") -> None:
        super().__init__(message)
        self.delivered = delivered
        self.reason = reason or message  # the store's (server's) own words, for the report


class UnsafeFolderName(StoreError):
    """A folder name that cannot be mapped safely (``..``, NUL, control characters)."""


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder as a store lists it.  ``special_use``: the RFC 6154 attribute an IMAP server
    marks it with (``\\Sent``, spelt so), None where there is none or the store has none."""

    name: str  # canonical name
    selectable: bool = True
    special_use: str | None = None
    # What identifies the folder whatever its name, when the listing tells it at no cost (IMAP
    # LIST-STATUS: the UIDVALIDITY; Maildir: its .mailtide-id); "" when not known.
    identity: str = ""


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What identifies a mailbox and how far it has come.

    ``validity`` is the UIDVALIDITY (decimal string) on IMAP, the folder's own
    id on Maildir; when it changes, every id the side gave before is void.
    ``uidnext`` / ``highestmodseq`` are None where the side has no such thing; ``count`` where
    it costs a listing.  ``stamp``, where the side gives one, is a token of the mailbox's
    listing: a later status with the same stamp proves the mailbox lists the same messages
    with the same flags as it did then; None proves nothing (a listing is needed).
    """

    validity: str
    uidnext: int | None = None
    highestmodseq: int | None = None
    count: int | None = None
    stamp: str | None = None


class Body(Protocol):
    """Message content in canonical CRLF form, readable in chunks."""

    @property
    def size(self) -> int:
        """Length in bytes of the CRLF form."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The content, in order, in chunks of bounded size (CRLF line ends)."""
        ...


@dataclass(frozen=True, slots=True)
class BytesBody:
    """A body held in memory (CRLF form)."""

    data: bytes | bytearray | memoryview

    @property
    def size(self) -> int:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), BODY_PIECE):
            yield bytes(view[start : start + BODY_PIECE])


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message read from a store, ready to be written to the other one."""

    id: str
    flags: Flags
    internaldate: datetime | None
    identity: Identity
    body: Body
    origin: str = ""  # where it is, for a person: a file's path, "UID 42"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message to write into a store."""

    flags: Flags
    internaldate: datetime | None
    identity: Identity
    body: Body
    hint: str | None = None  # the id on the other side (Maildir puts it in the name as ,U=)


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed in a mailbox since an earlier status of it.

    ``changed`` holds every message that is new or whose flags may have changed
    (with its current flags); ``vanished`` the numeric ids removed since then, as
    sorted, disjoint inclusive ranges (a server may report a range far larger than
    the mailbox, so they are never expanded).
    """

    changed: list[MessageInfo]
    vanished: tuple[tuple[int, int], ...] = ()

    def gone(self, id: str) -> bool:
        if not id.isdigit() or not self.vanished:
            return False
        n = int(id)
        at = bisect.bisect_right(self.vanished, (n, 1 << 64)) - 1
        return at >= 0 and self.vanished[at][0] <= n <= self.vanished[at][1]


@dataclass(frozen=True, slots=True)
class FlagChange:
    """Add ``add`` to and remove ``remove`` from message ``id``'s flags.  ``was``: the flags
    it is taken to have (its record's), a hint for a store that finds a message by them (a
    Maildir file's name); the change is the same whatever the message has."""

    id: str
    add: Flags
    remove: Flags
    was: Flags | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """What a move did.  ``ids``: each message now in the target, with its id there (None
    where the store cannot tell, e.g. an IMAP server without UIDPLUS); a message left out was
    not moved (it was gone, or the target already holds a different file of its name).
    ``kept``: moved messages whose source copy is still there, only marked ``\\Deleted`` (no
    UIDPLUS and other clients' deletions pending): a later ``delete`` removes them."""

    ids: dict[str, str | None]
    kept: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Link:
    """A message to give a name in a mailbox that is another name of a file the store holds
    already (Gmail's labels mode: one file, a hard link per label).  ``sources``: where that
    file may be, as (canonical folder name, id) pairs, tried in order; only one whose content
    identity is ``identity`` is linked.  ``flags`` and ``hint`` as in ``Incoming``."""

    sources: tuple[tuple[str, str], ...]
    identity: Identity
    flags: Flags
    hint: str | None = None


class WrittenStamp(Protocol):
    """A side's proof that, after a sync's own writes, it lists as the sync's records say
    (``Mailbox.written``).  Its methods do blocking I/O: call them off the event loop."""

    def settles_in(self) -> float:
        """Seconds until ``stamp`` can prove anything (the stamp's times must be older)."""
        ...

    def stamp(self) -> str | None:
        """The stamp to record as the side's (``MailboxStatus.stamp``), or None: not proven
        (anything else changed the side, or its times have not settled yet)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Unwritten:
    """A side nothing was written to: the stamp its status gave (before the listing the
    records now match) proves it as it is."""

    given: str

    def settles_in(self) -> float:
        return 0.0

    def stamp(self) -> str | None:
        return self.given

    def close(self) -> None:
        """Nothing is held."""


class Mailbox(Protocol):
    """One open mailbox.  Every method may raise ``MailboxError``."""

    name: str

    @property
    def unselected(self) -> bool:
        """Whether reading what changed costs selecting the mailbox first (a server mailbox
        opened from the folder listing, with no session of it held); False where there is
        nothing to select (a Maildir) or the mailbox is selected already."""
        ...

    async def status(self) -> MailboxStatus: ...

    async def snapshot(self) -> list[MessageInfo]:
        """Every message now in the mailbox with its flags (and size where cheap)."""
        ...

    async def listing(self) -> Listing:
        """What ``snapshot`` gives, compact: what a re-sync compares with the records."""
        ...

    async def changes_since(self, since: MailboxStatus) -> Delta | None:
        """What changed since ``since``, a status this side gave at an earlier sync (same
        validity).  None when the side cannot tell: then a full ``snapshot`` is needed."""
        ...

    async def cannot_hold(self, flags: Flags) -> Flags:
        """Those of ``flags`` this mailbox cannot store (a 27th Maildir keyword, a keyword that
        is no IMAP atom).  The engine keeps them as the other side has them, so a limit of
        this side never reads as the user removing a flag."""
        ...

    async def identify(self, ids: Sequence[str]) -> dict[str, Identity]:
        """Content identities of the given messages; ids no longer present are left out."""
        ...

    def fetch(self, ids: Sequence[str], budget: int | None = None) -> AsyncGenerator[Fetched, None]:
        """The given messages with their bodies, in bounded memory (about ``budget`` bytes of
        bodies held at once where given, else the store's own bound); vanished ids are
        skipped.  A caller that stops before the end closes it (``contextlib.aclosing``): it
        may hold the mailbox's connection until then."""
        ...

    async def append(self, messages: Sequence[Incoming]) -> list[str | None]:
        """Store the messages; return each one's new id, or None where the store cannot tell.

        When this returns, the messages are durable.
        """
        ...

    async def set_flags(self, changes: Sequence[FlagChange]) -> None: ...

    async def delete(self, ids: Sequence[str]) -> set[str]:
        """Remove exactly these messages (and no other, e.g. never a mailbox-wide EXPUNGE of
        another client's messages).  Returns the ids that are gone now (also those that were
        gone already); an id left out could only be marked deleted and is still there."""
        ...

    async def move(self, ids: Sequence[str], target: str) -> Moved:
        """Move exactly these messages into folder ``target`` (canonical name, same store)
        without reading their bodies, keeping their flags; durable when this returns."""
        ...

    def expect(self, since: MailboxStatus | None) -> None:
        """The caller's next questions are likely ``status`` and then ``changes_since(since)``:
        a side that must ask a server for its status may ask both in one round trip."""
        ...

    def begin_writes(self, status: MailboxStatus) -> None:
        """The caller is about to carry out a plan made when this side gave ``status`` (maybe
        through another open of it); ``written`` then weighs the writes against it."""
        ...

    def written(self) -> WrittenStamp | None:
        """After a sync carried out its plan on this open mailbox (``begin_writes``): what may
        prove the side lists as the sync's records now say, so the next sync need not list
        it; None where nothing can.  Handed over: the caller closes it."""
        ...

    def after_writes(self) -> MailboxStatus | None:
        """After a sync carried out its plan on this open mailbox (``begin_writes``): the
        side's status now, where its writes are proven the only change since the status
        ``begin_writes`` was given (a server's mod-sequences); the sync's records then match
        it, and the next sync may start from it.  None where nothing proves it."""
        ...

    async def close(self) -> None: ...


class Store(Protocol):
    """One repository (an IMAP account, a Maildir tree)."""

    def memo(self) -> str | None:
        """What the store learned of its server that a later run may count on before it
        learns it again (IMAP: the capabilities after the login, so the first login of the
        next run can send COMPRESS with it); None: nothing, or nothing yet."""
        ...

    def recall(self, memo: str | None) -> None:
        """An earlier run's ``memo``, before ``connect``."""
        ...

    async def connect(self, first_sync: bool = False) -> None:
        """Open connections / check the root exists.  Raises ``StoreError`` with a clear reason.

        ``first_sync``: the account has never synced, so a store may set itself up (a Maildir
        creates its missing root); after that a missing root is an error, never "empty"."""
        ...

    async def list_folders(self) -> list[FolderInfo]:
        """Every folder, canonical names.  Unsafe names are reported through ``refused``."""
        ...

    @property
    def refused(self) -> list[tuple[str, str]]:
        """(raw name, reason) for folders the last ``list_folders`` could not map safely."""
        ...

    def seen(self) -> dict[str, Any] | None:
        """What this run read that the statuses its pairs recorded come from (the folder list
        and each mailbox's status), for the quiet check (quiet/): JSON values, ``kind`` naming
        the store.  None when the store wrote, or read them in a way it cannot repeat."""
        ...

    def stamped(self, name: str, stamp: str) -> None:
        """The run recorded ``stamp`` as folder ``name``'s stamp after its own writes to it
        (engine/restamp.py): what ``seen`` gives for that folder.  A store whose folders have
        no stamps ignores it."""
        ...

    def check_name(self, name: str) -> None:
        """Raise ``UnsafeFolderName`` when this store could not hold a folder called ``name``
        (no I/O: a dry run asks this instead of creating the folder)."""
        ...

    async def create_folder(self, name: str) -> None: ...

    async def folder_identity(self, name: str, create: bool = False) -> str:
        """What identifies folder ``name`` whatever it is called (``MailboxStatus.validity``);
        "" when it has none yet (with ``create`` a Maildir folder gets one, durably)."""
        ...

    async def rename_folder(self, old: str, new: str) -> None:
        """Rename a folder (and the folders under it) without moving a message: each keeps its
        id.  ``StoreError`` when ``new`` exists already: nothing is merged or replaced."""
        ...

    async def delete_folder(self, name: str) -> None:
        """Remove an empty folder (``StoreError`` when it holds a message: nothing is deleted).
        Folders under it stay, ``name`` then remains as their parent only."""
        ...

    async def subscribed(self) -> set[str] | None:
        """The canonical names of the folders subscribed to; None where a store has no
        subscriptions (every folder counts as subscribed)."""
        ...

    async def subscribe(self, name: str, on: bool = True) -> None:
        """Subscribe to folder ``name`` (or unsubscribe); nothing where a store has none."""
        ...

    async def special_folder(self, use: str) -> str | None:
        """The folder this store marks with RFC 6154 special ``use`` ("\\Trash"), if any."""
        ...

    async def read_ahead(self, recorded: Mapping[str, str | None]) -> None:
        """Begin now, in the background, what opening the folders of ``recorded`` (name ->
        the stamp the last sync left on this side) will need, where that saves time: the
        caller waits for the other side meanwhile.  Returns at once; an empty ``recorded``
        drops what was not used."""
        ...

    def known_changed(self, name: str, since: tuple[str | None, int | None] | None) -> bool:
        """Whether folder ``name`` is known, without asking anything more, to have changed
        since the last complete sync (IMAP: its status in the folder list against the
        validity and mod-sequence that sync left, ``since``; a Maildir: its stamp, where it
        was read ahead).  False where the store cannot tell."""
        ...

    def warm(self, count: int) -> None:
        """``count`` mailboxes are about to be synced at once: begin, in the background, what
        each will need of its own (IMAP: a connection).  Returns at once."""
        ...

    async def open(self, name: str, planned: bool = False) -> Mailbox:
        """Mailbox ``name``.  ``planned``: the engine carries out a plan an earlier open of
        the same run made, and asks no status of this one: a store may hand out that open's
        session as it was (IMAP: the folder still selected, no second SELECT)."""
        ...

    async def keepalive(self) -> None:
        """Prove the connections held between syncs alive (IMAP: NOOP); drop a dead one."""
        ...

    async def drop(self) -> None:
        """Let go of the connections held between syncs at once, without a goodbye (IMAP:
        no LOGOUT): after a suspend they are presumed dead."""
        ...

    async def close(self, hurry: bool = False) -> None:
        """Let go of everything held.  ``hurry``: the process ends next (a one-shot sync),
        so a goodbye is said and its answer not waited for (IMAP: LOGOUT)."""
        ...
