"""One selected IMAP mailbox: snapshot, identities, bodies, appends, flags, deletes.

Every command that names messages is chunked (UID sets of bounded length),
FETCH responses are consumed as they arrive, and bodies are fetched in
batches bounded by bytes, so memory stays bounded whatever the mailbox size.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import NamedTuple

import structlog
from aioimaplib import aioimaplib as aio

from mailtide.core.identity import BODY_PREFIX, header_end, identity_of, identity_of_message
from mailtide.core.model import Flags, Identity, Listing, MessageInfo
from mailtide.stores.base import (
    Body,
    BytesBody,
    ConnectionLost,
    Delta,
    Fetched,
    FlagChange,
    Incoming,
    MailboxError,
    MailboxStatus,
    MessageRefused,
    Moved,
    StoreError,
)
from mailtide.stores.imap import gmail, gmail_keywords, wire
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.copyuid import copied_uids
from mailtide.stores.imap.own_writes import OwnWrites
from mailtide.stores.imap.parse import (
    ParseError,
    SpooledLiteral,
    Untagged,
    Value,
    bytes_of,
    number_of,
    pairs,
    simple_fetch,
    status_text,
    text_of,
)
from mailtide.stores.imap.protocol import Done, OnUntagged, Pipelined, ProtocolError, Sent
from mailtide.stores.imap.seen import status_items
from mailtide.stores.imap.sizes import KnownSizes
from mailtide.stores.imap.wire import Literal, quote_astring

log = structlog.get_logger(__name__)

Connect = Callable[[], Awaitable[ImapClient]]  # a connection of the store's, when first needed


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """What a SELECT of a mailbox said, kept with its connection when the mailbox is closed:
    a later open of the same run that carries out the plan made on it goes on from here
    (``ImapStore.open(planned=True)``) instead of selecting again."""

    uidvalidity: int
    uidnext: int | None
    highestmodseq: int | None
    exists: int


SNAPSHOT_CHUNK = 5000  # messages per FETCH in a snapshot
UIDS_PER_COMMAND = 2000  # UIDs per UID FETCH / STORE / EXPUNGE
BATCH_BYTES = 16 << 20  # bodies the caller holds, by RFC822.SIZE, unless it says
READ_AHEAD_SHARE = 2  # that share of it is asked for ahead of the caller ...
READ_AHEAD_PIECES = 4  # ... in FETCHes of this share of that each (a bigger message alone)
READ_AHEAD_MESSAGES = 256  # and at most so many messages (small ones cost more than bytes)
RECENT = "\\Recent"
HEADER_SCAN = 8 << 20  # a header section is looked for in a message's first 8 MiB

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_ATOM_SPECIALS = frozenset('(){ %*"\\]')
# A mailbox's messages share a few flag sets: one frozenset each, not one a message (100k
# listed messages held 21 MB of equal sets).  Keyed by the FLAGS list as the server sent it.
_FLAG_SETS: dict[tuple[Value, ...], Flags] = {}
MAX_FLAG_SETS = 4096


def uid_ranges(text: str) -> list[tuple[int, int]]:
    """``"7,1:3,5:4"`` -> [(1, 3), (4, 5), (7, 7)]: inclusive ranges, never expanded."""
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        spans.append((min(a, b), max(a, b)))
    return merge_ranges(spans)


def vanished_of(u: Untagged) -> tuple[bool, list[tuple[int, int]]]:
    """``* VANISHED [(EARLIER)] uid-set``: whether it says EARLIER (then it is not news of this
    session, but the answer to a QRESYNC question), and its UID ranges."""
    t = u.tokens()
    value = t.value()
    earlier = isinstance(value, list)
    if earlier:
        value = t.value()
    return earlier, uid_ranges(text_of(value))


def status_of(u: Untagged) -> tuple[Value, dict[str, int]]:
    """``* STATUS name (UIDVALIDITY 7 UIDNEXT 9 ...)``: the name as sent, and the items that
    are numbers."""
    t = u.tokens()
    name = t.value()
    attrs = t.value()
    if not isinstance(attrs, list):
        return name, {}
    return name, {k: int(v) for k, v in pairs(attrs).items() if isinstance(v, str) and v.isdigit()}


def status_from(items: Mapping[str, int]) -> MailboxStatus | None:
    """A mailbox's status from the items of a STATUS response (LIST-STATUS, NOTIFY's news);
    None without its UIDVALIDITY and UIDNEXT (then it is selected and read there)."""
    if "UIDVALIDITY" not in items or "UIDNEXT" not in items:
        return None
    return MailboxStatus(
        str(items["UIDVALIDITY"]),
        items["UIDNEXT"],
        items.get("HIGHESTMODSEQ"),
        items.get("MESSAGES"),
    )


def merge_ranges(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and adjacent ranges joined."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def gaps(present: Sequence[int], top: int) -> list[tuple[int, int]]:
    """The ranges of 1..``top`` not in ``present`` (sorted UIDs): what was expunged."""
    out: list[tuple[int, int]] = []
    start = 1
    for uid in present:
        if uid > top:
            break
        if uid > start:
            out.append((start, uid - 1))
        start = max(start, uid + 1)
    if start <= top:
        out.append((start, top))
    return out


def uid_sets(uids: Iterable[int], per_set: int = UIDS_PER_COMMAND) -> list[str]:
    """Sorted UIDs as compressed sets ("1:5,7,9:12"), at most ``per_set`` UIDs each."""
    ordered = sorted(set(uids))
    out: list[str] = []
    for start in range(0, len(ordered), per_set):
        chunk = ordered[start : start + per_set]
        parts: list[str] = []
        first = prev = chunk[0]
        for uid in chunk[1:]:
            if uid == prev + 1:
                prev = uid
                continue
            parts.append(str(first) if first == prev else f"{first}:{prev}")
            first = prev = uid
        parts.append(str(first) if first == prev else f"{first}:{prev}")
        out.append(",".join(parts))
    return out


def is_flag_atom(flag: str) -> bool:
    """A flag the IMAP grammar allows: a system flag or a keyword atom."""
    body = flag[1:] if flag.startswith("\\") else flag
    return bool(body) and all(0x21 <= ord(c) <= 0x7E and c not in _ATOM_SPECIALS for c in body)


def parse_internaldate(text: str) -> datetime:
    """``17-Jul-1996 02:44:25 -0700`` (day may be space-padded) as an aware datetime."""
    try:
        date, clock, zone = text.split()
        day, mon, year = date.split("-")
        hh, mm, ss = (int(x) for x in clock.split(":"))
        sign = -1 if zone[0] == "-" else 1
        offset = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
        return datetime(int(year), _MONTHS[mon.capitalize()], int(day), hh, mm, ss, tzinfo=offset)
    except (ValueError, KeyError, IndexError):
        raise ParseError(f"bad INTERNALDATE {text!r}") from None


def fetch_attributes(u: Untagged) -> dict[str, Value]:
    """The attributes of ``* n FETCH (...)``: the list must end the response (bytes after it
    mean the server's parentheses do not match, and the values may belong elsewhere)."""
    if u.rest >= 0 and (simple := simple_fetch(u.raw, u.rest)) is not None:
        return simple
    t = u.tokens()
    attrs = pairs(t.value())
    if not t.at_end():
        raise ParseError("FETCH response goes on after its attribute list")
    return attrs


def flags_of(value: Value) -> Flags:
    """A FETCH FLAGS list.  Anything in it that is not an atom of printable ASCII (a nested
    list, a quoted string, NIL, a control character) makes the whole response unparsable:
    dropping just that item would read as the user removing a flag."""
    if not isinstance(value, list):
        raise ParseError("FLAGS is not a list")
    key = tuple(value)
    try:
        known = _FLAG_SETS.get(key)
    except TypeError:  # a list inside: refused below
        known = None
    if known is not None:
        return known
    flags = set()
    for item in value:
        if not isinstance(item, str) or not item or not item.isascii() or not item.isprintable():
            raise ParseError(f"FLAGS holds {item!r}, which is not a flag"[:120])
        if item != RECENT:
            flags.add(item)
    if len(_FLAG_SETS) >= MAX_FLAG_SETS:
        _FLAG_SETS.clear()
    found = _FLAG_SETS[key] = frozenset(flags)
    return found


def uid_of(attrs: dict[str, Value]) -> int:
    """The UID of a FETCH response (a number >= 1)."""
    if "UID" not in attrs:
        raise ParseError("FETCH response without UID")
    uid = number_of(attrs["UID"])
    if not 0 < uid < 1 << 32:
        raise ParseError(f"FETCH response with UID {uid}, not a 32-bit number above 0")
    return uid


def message_info(attrs: dict[str, Value]) -> MessageInfo:
    """A message from the attributes of FETCH (UID FLAGS RFC822.SIZE)."""
    if "FLAGS" not in attrs:
        raise ParseError("FETCH response without FLAGS")
    size = number_of(attrs.get("RFC822.SIZE", "0"))
    return MessageInfo(id=str(uid_of(attrs)), flags=flags_of(attrs["FLAGS"]), size=size)


def identity_of_spooled(body: SpooledLiteral) -> Identity:
    """``identity_of_message`` for a body on disk: only its start is read back, 64 KiB and
    more only while no header end is found (a header past HEADER_SCAN is cut there)."""
    want = 64 << 10
    while True:
        head = body.read(0, min(body.size, want))
        cut = header_end(head)
        if cut is not None or len(head) < want or want >= HEADER_SCAN:
            break
        want = min(want * 8, HEADER_SCAN)
    cut = cut or len(head)
    prefix = body.read(cut, BODY_PREFIX)
    return identity_of(head[:cut], body.size, prefix)


def fetched_of(attrs: dict[str, Value]) -> Fetched:
    """A message from the attributes of FETCH (UID FLAGS INTERNALDATE BODY[])."""
    body = attrs.get("BODY[]")
    content: Body
    if isinstance(body, SpooledLiteral):
        if not body.complete:
            raise ParseError("BODY[] literal is incomplete")
        identity, content = identity_of_spooled(body), body
    elif isinstance(body, bytes | bytearray):
        identity, content = identity_of_message(body), BytesBody(body)
    else:
        raise ParseError("BODY[] is not a string")
    date = attrs.get("INTERNALDATE")
    return Fetched(
        id=str(uid_of(attrs)),
        flags=flags_of(attrs.get("FLAGS")),
        internaldate=parse_internaldate(text_of(date)) if date else None,
        identity=identity,
        body=content,
        origin=f"UID {uid_of(attrs)}",
    )


class ImapMailbox:
    """A mailbox selected on its own connection (closed by ``close``)."""

    def __init__(
        self,
        client: ImapClient | Connect,
        name: str,
        server_name: str,
        release: Callable[
            [ImapClient | None, MailboxStatus | None, Selection | None], Awaitable[None]
        ]
        | None = None,
        listed: MailboxStatus | None = None,
        read_only: bool = False,
        locate: Callable[[str], str] | None = None,
        special_use: str | None = None,
        on_write: Callable[[], None] | None = None,
        listed_holds: Callable[[], bool] | None = None,
        gmail_keywords: bool = False,
        server: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset()),
        sizes: KnownSizes | None = None,
        selection: Selection | None = None,
    ) -> None:
        """``client``: the connection, or (with ``listed``) a coroutine function that gives one
        when a command first needs it, so a mailbox that turns out unchanged costs none.
        ``listed``: the status the store's LIST-STATUS gave; then SELECT waits until a command
        needs the mailbox, and a mailbox that turns out unchanged is never selected.
        ``locate``: the server's name for another folder's canonical name (for ``move``).
        ``special_use``: the RFC 6154 attribute the folder was listed with.
        ``selection``: ``client`` has the mailbox selected, as an earlier open left it: no
        SELECT is sent.
        ``sizes``: the sizes of its messages known from earlier opens in this run (the
        store's), kept up to date here; a new UIDVALIDITY forgets them.
        ``server``: the capabilities and the ENABLEd extensions of the store's connections,
        for a mailbox whose own connection is not yet taken.
        ``release`` gets the connection back at ``close`` (None if it never took one), with
        ``listed`` when the mailbox was never selected and nothing was written through it
        (else None); ``on_write`` is
        called before each command that may change the server's mail.  ``listed_holds``:
        whether ``listed`` (a status given back by an earlier open) still holds; when it no
        longer does, the mailbox is selected before its status is read.
        ``gmail_keywords``: Gmail's All Mail in ``gmail_labels_as = "keywords"``: each
        message's labels are read and written as keywords of its flags
        (stores/imap/gmail_keywords.py)."""
        self.name = name
        self.gmail_keywords = gmail_keywords
        # What a listing asks of each message: with labels as keywords, its labels too (one
        # CHANGEDSINCE FETCH on All Mail then tells every label change).
        self._listing = (
            "(UID FLAGS RFC822.SIZE X-GM-MSGID X-GM-LABELS)"
            if gmail_keywords
            else "(UID FLAGS RFC822.SIZE)"
        )
        self.special_use = special_use
        self._locate = locate
        self.read_only = read_only  # a dry run: EXAMINE, and every write refused
        self._release = release  # gives the connection back to the store for the next mailbox
        self._on_write = on_write
        self._listed = listed
        self._wrote = False
        self._listed_holds = listed_holds
        self._failed = False
        self._own: OwnWrites | None = None  # what this open's writes told (begin_writes)
        self.server_name = server_name
        self._caps = server
        self._client: ImapClient | None = client if isinstance(client, ImapClient) else None
        self._connect: Connect | None = None if isinstance(client, ImapClient) else client
        self._quoted = quote_astring(server_name)
        self.uidvalidity = 0
        self.uidnext: int | None = None
        self.highestmodseq: int | None = None
        self.exists = 0
        self._selected = listed is None  # else the store selects before handing it over
        self._behind = False  # a resumed session, not yet told of the changes since (resume)
        self._expected: MailboxStatus | None = None  # what changes_since will ask (expect)
        # The changes since a status, asked with the SELECT that ``_fresh`` needed
        self._early: tuple[MailboxStatus, Delta | None] | None = None
        # sizes the listings gave, for fetch's batches (of this run's earlier opens too)
        self._known = sizes if sizes is not None else KnownSizes()
        if listed is not None:
            self.uidvalidity = int(listed.validity)
            self._known.hold_for(self.uidvalidity)
            self.uidnext = listed.uidnext
            self.highestmodseq = listed.highestmodseq
            self.exists = listed.count or 0
        if selection is not None:
            self._selected = True
            self.uidvalidity, self.uidnext = selection.uidvalidity, selection.uidnext
            self.highestmodseq, self.exists = selection.highestmodseq, selection.exists
            self._known.hold_for(self.uidvalidity)
            self.exists = self._count_after_news()  # the session's count, news since included

    @property
    def unselected(self) -> bool:
        return not self._selected

    @property
    def unsolicited(self) -> list[Untagged]:
        """EXPUNGE / VANISHED / EXISTS / FETCH the server sent on its own (read and clear)."""
        protocol = self._client.protocol if self._client is not None else None
        return protocol.unsolicited if protocol is not None else []

    async def _connection(self) -> ImapClient:
        """The mailbox's connection, taken from the store on first need."""
        if self._client is None:
            assert self._connect is not None
            try:
                self._client = await self._connect()
            except BaseException:
                self._failed = True
                raise
        return self._client

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities (a connection of the store's, before this one's own)."""
        return self._client.capabilities if self._client is not None else self._caps[0]

    @property
    def enabled(self) -> frozenset[str]:
        """The extensions ENABLEd on the connection (every connection of a store alike)."""
        return self._client.enabled if self._client is not None else self._caps[1]

    async def select(self) -> None:
        self._selected_by(await self._run(*self._select_command()))
        protocol = (await self._connection()).protocol
        if protocol is not None:
            protocol.unsolicited.clear()

    def _select_command(self) -> tuple[str, str]:
        return ("EXAMINE" if self.read_only else "SELECT", self._quoted)

    def _selected_by(self, done: Done) -> None:
        """The mailbox as the SELECT (or EXAMINE) that gave ``done`` found it."""
        for u in done.untagged:
            if u.kind == "EXISTS" and u.number is not None:
                self.exists = u.number
            elif u.kind == "OK":
                st = status_text(u.raw.first[4:])
                arg = st.args.split(b" ")[0]
                if st.code == "UIDVALIDITY" and arg.isdigit():
                    self.uidvalidity = int(arg)
                elif st.code == "UIDNEXT" and arg.isdigit():
                    self.uidnext = int(arg)
                elif st.code == "HIGHESTMODSEQ" and arg.isdigit():
                    self.highestmodseq = int(arg)
        self._selected = True
        self._known.hold_for(self.uidvalidity)  # another validity: its UIDs name other mail
        protocol = self._client.protocol if self._client is not None else None
        if protocol is not None:
            protocol.state = aio.SELECTED
        log.debug(
            "imap.selected", mailbox=self.name, exists=self.exists, uidvalidity=self.uidvalidity
        )

    def resume(self) -> None:
        """The session an earlier run left selected goes on: before its first command, a NOOP
        has the server tell it what changed since (EXISTS, VANISHED), so that a ``1:*`` of the
        commands that follow covers every message the listing counted (a server leaves a
        message it has not yet told the session of out of them).  A mailbox that turns out
        unchanged sends nothing."""
        self._behind = True

    async def _run(
        self,
        *parts: str | bytes | Literal,
        on_untagged: OnUntagged | None = None,
        literal_plus: bool = False,
        check: bool = True,
        counted: bool = False,
    ) -> Done:
        """One command on the mailbox's session (selected first where it needs to be).  A
        write not ``counted`` by its caller (own_writes.py) gives up the proof of this open's
        writes."""
        self._writing(parts[0], counted)
        client = await self._session(selected=parts[0] not in _NO_SELECT_NEEDED)
        with self._failing():
            return await client.run(
                *parts, on_untagged=on_untagged, literal_plus=literal_plus, check=check
            )

    async def _run_many(self, commands: Sequence[Pipelined], counted: bool = False) -> list[Done]:
        """``commands`` pipelined on the mailbox's session (``ImapProtocol.run_many``): one
        round trip for all.  A mailbox not yet selected is selected in the same flight when
        the commands only read; before a write the SELECT is answered first, as the write
        must not go to a mailbox whose UIDVALIDITY is not yet seen."""
        writes = [c.parts[0] for c in commands if c.parts[0] in _WRITES]
        for verb in writes:
            self._writing(verb, counted)
        selecting = not self._selected and commands[0].parts[0] not in _NO_SELECT_NEEDED
        if selecting and writes:
            await self.select()
            selecting = False
        client = await self._session(selected=False)
        protocol = client.protocol
        if selecting:
            if protocol is not None:
                protocol.unsolicited.clear()  # the news of the mailbox selected before
            # Its answers are its own (kept for ``_selected_by``), not news of the mailbox.
            commands = [Pipelined(self._select_command(), takes_news=True), *commands]
        with self._failing():
            done = await client.run_many(commands)
        if selecting:
            self._selected_by(done[0])
            return done[1:]
        return done

    async def _session(self, selected: bool = True) -> ImapClient:
        """The mailbox's connection, its mailbox ``selected`` first where asked, told what
        changed since a resumed session's last command (``_caught_up``)."""
        if selected and not self._selected:
            await self.select()
        await self._caught_up()
        return await self._connection()

    def _writing(self, verb: str | bytes | Literal, counted: bool) -> None:
        """Before a command: one that may change the server's mail is refused in a dry run,
        and gives up the proof of this open's writes unless its caller ``counted`` it."""
        if verb not in _WRITES:
            return
        if self.read_only:
            raise MailboxError(f"mailbox {self.name!r} is open read-only (dry run)")
        self._wrote = True
        if not counted and self._own is not None:
            self._own.spoiled = True
        if self._on_write is not None:
            self._on_write()

    async def _caught_up(self) -> None:
        """A resumed session is told what changed since (``resume``) before its first command."""
        if self._behind:
            self._behind = False
            await self._run("NOOP")
            self.exists = self._count_after_news()

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """Around a command: the conversation log names the mailbox it is for, and a failure
        fails the mailbox (a lost connection is not its fault: the engine retries it)."""
        try:
            with structlog.contextvars.bound_contextvars(mailbox=self.name):
                yield
        except ConnectionLost:
            self._failed = True
            raise
        except StoreError as e:
            self._failed = True
            raise MailboxError(f"mailbox {self.name!r}: {e}") from None

    # -- reading --------------------------------------------------------------------

    async def _fresh(self) -> None:
        """Select when the listed status this mailbox was opened with no longer holds; with
        the changes since the status the caller said it expects (``expect``) in the same
        flight, where the server can tell them."""
        holds = self._listed_holds
        if self._selected or holds is None or holds():
            return
        since, self._expected = self._expected, None
        if since is None or not self._tells_changes(since) or "QRESYNC" not in self.enabled:
            await self.select()
            return
        self._early = (since, await self._changes_by_qresync(since))

    async def status(self) -> MailboxStatus:
        """From the SELECT answer when it carried everything (no round trip), else STATUS."""
        await self._fresh()
        if (
            self.uidvalidity
            and self.uidnext is not None
            and (self.highestmodseq is not None or "CONDSTORE" not in self.capabilities)
        ):
            return MailboxStatus(
                str(self.uidvalidity), self.uidnext, self.highestmodseq, self.exists
            )
        items = status_items(self.capabilities)
        done = await self._run("STATUS", self._quoted, f"({items})")
        values: dict[str, int] = {}
        for u in done.untagged:
            if u.kind == "STATUS":
                values.update(status_of(u)[1])
        validity = values.get("UIDVALIDITY", self.uidvalidity)
        return MailboxStatus(
            validity=str(validity),
            uidnext=values.get("UIDNEXT", self.uidnext),
            highestmodseq=values.get("HIGHESTMODSEQ", self.highestmodseq),
            count=values.get("MESSAGES", self.exists),
        )

    async def listing(self) -> Listing:
        return Listing.of(await self.snapshot())

    async def snapshot(self) -> list[MessageInfo]:
        """Every message, by ``FETCH 1:*``.  A message the server leaves out of its answer would
        read as expunged (and its local copy be deleted), so every sequence number up to the
        count the server gave must be answered, and parse, or the mailbox fails."""
        await self._run("NOOP")  # learn of new messages (EXISTS) before counting
        self.exists = self._count_after_news()
        out: list[MessageInfo] = []
        bad: list[str] = []
        answered: set[int] = set()

        listing = self._on_fetch(lambda attrs: out.append(self._info(attrs)), bad)

        def on_fetch(u: Untagged) -> bool:
            before = len(out)
            consumed = listing(u)
            if len(out) > before and u.number is not None:
                answered.add(u.number)
            return consumed

        if self.exists:
            for start in range(1, self.exists + 1, SNAPSHOT_CHUNK):
                end = start + SNAPSHOT_CHUNK - 1
                seq = f"{start}:*" if end >= self.exists else f"{start}:{end}"
                before = len(answered)
                await self._run("FETCH", seq, self._listing, on_untagged=on_fetch)
                if len(answered) == before:
                    break  # fewer messages than counted: no need to ask on up to a false count
        if bad:
            raise MailboxError(
                f"mailbox {self.name!r}: the server's listing has {len(bad)} response(s) that do "
                f"not parse (first: {bad[0]}); the mailbox is skipped rather than taking those "
                "messages for deleted"
            )
        unanswered = self.exists - sum(1 for n in answered if 1 <= n <= self.exists)
        if unanswered:
            raise MailboxError(
                f"mailbox {self.name!r}: the server's listing left out {unanswered} of its "
                f"{self.exists} messages; the mailbox is skipped rather than taking them for "
                "deleted"
            )
        # A message can be answered twice when new mail arrives mid-way ("n:*").
        unique = {m.id: m for m in out}
        self._known.listed(unique.values())
        return sorted(unique.values(), key=lambda m: int(m.id))

    def _count_after_news(self) -> int:
        """The message count after the news the server sent since SELECT (or since the last
        count), in order; the news is used up."""
        count = self.exists
        news = self.unsolicited
        for u in news:
            if u.kind == "EXISTS" and u.number is not None:
                count = u.number
            elif u.kind == "EXPUNGE":
                count -= 1
            elif u.kind == "VANISHED":
                try:
                    earlier, ranges = vanished_of(u)
                except (ParseError, ValueError):
                    continue
                if not earlier:  # EARLIER is not news of this session
                    count -= sum(b - a + 1 for a, b in ranges)
        news.clear()
        return max(count, 0)

    async def changes_since(self, since: MailboxStatus) -> Delta | None:
        """With QRESYNC: the messages whose MODSEQ passed ``since.highestmodseq`` (new ones
        included) and the UIDs expunged since (VANISHED), in one command.  With CONDSTORE
        alone (Gmail): the same changed messages, and the expunged ones only when the count
        says some went (``_vanished_by_count``)."""
        await self._fresh()  # which may ask them with its SELECT (``expect``)
        early, self._early = self._early, None
        if early is not None and early[0] == since:
            return early[1]  # asked with the SELECT that ``status`` or ``_fresh`` needed
        if not self._tells_changes(since):
            return None
        if "QRESYNC" not in self.enabled:
            return await self._changes_by_condstore(since)
        if self.highestmodseq == since.highestmodseq:
            return Delta([])
        return await self._changes_by_qresync(since)

    def _tells_changes(self, since: MailboxStatus) -> bool:
        """Whether the server can tell the changes since ``since`` (CONDSTORE or QRESYNC
        enabled, and ``since`` a mod-sequence of the mailbox's present UIDVALIDITY)."""
        return (
            bool({"QRESYNC", "CONDSTORE"} & self.enabled)
            and since.highestmodseq is not None
            and since.validity == str(self.uidvalidity)
        )

    def expect(self, since: MailboxStatus | None) -> None:
        """The caller's next question is likely ``changes_since(since)``: where ``status``
        must SELECT, those changes are asked in the same flight (one round trip for both)."""
        self._expected = since

    async def _changes_by_qresync(self, since: MailboxStatus) -> Delta | None:
        """``UID FETCH 1:* (CHANGEDSINCE VANISHED)``, pipelined after the SELECT where the
        mailbox is not yet selected (one round trip for both); None (a full listing) when the
        SELECT finds another UIDVALIDITY or an answer does not parse."""
        assert since.highestmodseq is not None
        changed: list[MessageInfo] = []
        vanished: list[tuple[int, int]] = []
        bad: list[str] = []
        on_fetch = self._on_fetch(lambda attrs: changed.append(self._info(attrs)), bad)

        def on_untagged(u: Untagged) -> bool:
            if u.kind != "VANISHED":
                return on_fetch(u)
            try:
                vanished.extend(vanished_of(u)[1])
            except (ParseError, ValueError) as e:
                bad.append(str(e))
            return True

        fetch = (
            "UID FETCH",
            "1:*",
            self._listing,
            f"(CHANGEDSINCE {since.highestmodseq} VANISHED)",
        )
        await self._run_many([Pipelined(fetch, on_untagged)])
        if since.validity != str(self.uidvalidity):
            return None  # those were other messages
        if bad:
            # A change we cannot read: a full listing is the safe answer.
            log.warning("imap.bad_vanished", mailbox=self.name, error=bad[0])
            return None
        self._known.add(changed)
        return Delta(changed, tuple(merge_ranges(vanished)))

    async def _changes_by_condstore(self, since: MailboxStatus) -> Delta | None:
        """``UID FETCH 1:* (CHANGEDSINCE)`` for the messages changed or new since ``since``;
        then, as a server without QRESYNC need not count an expunge as a change, the
        expunged UIDs from the count: when the mailbox holds exactly ``since.count`` plus the
        new messages, nothing went; else ``UID SEARCH ALL`` says which UIDs are left.  None
        (a full listing) when an answer does not parse or the old count is not known."""
        if since.count is None or since.uidnext is None:
            return None
        changed: list[MessageInfo] = []
        bad: list[str] = []
        on_fetch = self._on_fetch(lambda attrs: changed.append(self._info(attrs)), bad)
        await self._run(
            "UID FETCH",
            "1:*",
            self._listing,
            f"(CHANGEDSINCE {since.highestmodseq})",
            on_untagged=on_fetch,
        )
        if bad:
            return None
        self._known.add(changed)
        new = sum(1 for m in changed if int(m.id) >= since.uidnext)
        if self._count_after_news() == since.count + new:
            return Delta(changed)
        left = await self._all_uids()
        if left is None:
            return None
        return Delta(changed, tuple(gaps(left, since.uidnext - 1)))

    async def _all_uids(self) -> list[int] | None:
        """Every UID now in the mailbox (``UID SEARCH ALL``), None when the answer does not
        parse (a UID missing from it would read as expunged)."""
        uids: list[int] = []
        bad = False

        def on_search(u: Untagged) -> bool:
            nonlocal bad
            if u.kind != "SEARCH":
                return False
            words = u.raw.first.split()[2:]
            bad = bad or not all(w.isdigit() for w in words)
            uids.extend(int(w) for w in words if w.isdigit())
            return True

        await self._run("UID SEARCH", "ALL", on_untagged=on_search)
        return None if bad else sorted(uids)

    def _on_fetch(
        self, take: Callable[[dict[str, Value]], bool | None], bad: list[str] | None = None
    ) -> OnUntagged:
        """A handler for FETCH responses: their attributes go to ``take`` (which returns False
        for a response that is not its business: it is kept as news).  A response that does
        not parse is reported and skipped, and noted in ``bad``: a listing that skipped one is
        incomplete, and must not be taken to say the message is gone."""

        def on_untagged(u: Untagged) -> bool:
            if u.kind != "FETCH":
                return False
            try:
                return take(fetch_attributes(u)) is not False
            except (ParseError, KeyError, ValueError) as e:
                line = wire.shown_line(u.raw.first)[:120]
                log.warning("imap.unparsable_fetch", mailbox=self.name, error=str(e), line=line)
                if bad is not None:
                    bad.append(f"{e} in {line!r}")
                return True

        return on_untagged

    def _info(self, attrs: dict[str, Value]) -> MessageInfo:
        info = message_info(attrs)
        if not self.gmail_keywords:
            return info
        labels = gmail.labels_of(attrs["X-GM-LABELS"]) if "X-GM-LABELS" in attrs else None
        if labels is None:
            raise ParseError("FETCH response without X-GM-LABELS")
        return dataclasses.replace(info, flags=gmail_keywords.with_labels(info.flags, labels))

    def _with_labels(self, fetched: Fetched, attrs: dict[str, Value]) -> Fetched:
        if not self.gmail_keywords:
            return fetched
        if "X-GM-LABELS" not in attrs:
            raise ParseError("FETCH response without X-GM-LABELS")
        labels = gmail.labels_of(attrs["X-GM-LABELS"])
        flags = gmail_keywords.with_labels(fetched.flags, labels)
        return dataclasses.replace(fetched, flags=flags)

    async def cannot_hold(self, flags: Flags) -> Flags:
        return frozenset(f for f in flags if f == RECENT or not is_flag_atom(f))

    async def identify(self, ids: Sequence[str]) -> dict[str, Identity]:
        """Content identities.  A message left out here is taken for gone by the caller, and
        its twin on the other side for new (copied again): so an answer that does not parse,
        or no answer for a message the server still holds, fails the mailbox instead."""
        out: dict[str, Identity] = {}
        nil: list[int] = []

        def take(attrs: dict[str, Value]) -> bool:
            if "BODY[HEADER]" not in attrs:
                return False  # another client's flag change, told in the middle: news
            header = attrs.get("BODY[HEADER]")
            if header is None:
                nil.append(uid_of(attrs))  # being expunged by another session, maybe
                return True
            text = attrs.get("BODY[TEXT]<0>", b"")
            if header is None or isinstance(header, list) or isinstance(text, list | str):
                raise ParseError("BODY[HEADER] or BODY[TEXT] is not a string")
            uid = str(uid_of(attrs))
            size = number_of(attrs.get("RFC822.SIZE"))
            out[uid] = identity_of(bytes_of(header, HEADER_SCAN), size, bytes_of(text, BODY_PREFIX))
            return True

        bad: list[str] = []
        on_fetch = self._on_fetch(take, bad)
        wanted = _uids(ids)
        for uids in uid_sets(wanted):
            await self._run(
                "UID FETCH",
                uids,
                f"(UID RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.{BODY_PREFIX}>)",
                on_untagged=on_fetch,
            )
        still = sorted(set(nil) - await self._gone_meanwhile(nil))
        if still:
            bad.append(f"UID {', '.join(map(str, still[:20]))}: BODY[HEADER] is NIL")
        if not bad:
            missing = [str(u) for u in wanted if str(u) not in out]
            held = await self._sizes(missing, bad) if missing else {}
            if held:
                bad.append(f"no answer for UID {', '.join(map(str, sorted(held)[:20]))}")
        if bad:
            raise MailboxError(
                f"mailbox {self.name!r}: the server's answer for {len(bad)} message(s) cannot be "
                f"read (first: {bad[0]}); the mailbox is skipped rather than taking them for "
                "gone and their copies here for new"
            )
        return out

    async def gmail_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """The Gmail message (X-GM-MSGID) each of the given messages shows, by UID (``UID
        FETCH (X-GM-MSGID)``).  A message whose answer does not parse is left out (logged):
        the caller then does without its Gmail identity."""
        out: dict[str, int] = {}

        def take(attrs: dict[str, Value]) -> bool:
            if "X-GM-MSGID" not in attrs:
                return False  # another client's flag change, told in the middle: news
            out[str(uid_of(attrs))] = gmail.message_id_of(attrs["X-GM-MSGID"])
            return True

        await self._gmail_fetch(ids, "(UID X-GM-MSGID)", take)
        return out

    async def gmail_messages(self, ids: Sequence[str]) -> dict[str, gmail.GmailMessage]:
        """Gmail's identity and labels of the given messages (``UID FETCH (X-GM-MSGID
        X-GM-LABELS)``), by UID; the selected mailbox's own label is left out, as Gmail does.
        A message whose answer does not parse (a label that is no label) is left out (logged):
        a label read wrong would later read as the user taking it away."""
        out: dict[str, gmail.GmailMessage] = {}

        def take(attrs: dict[str, Value]) -> bool:
            if "X-GM-MSGID" not in attrs:
                return False  # another client's flag change, told in the middle: news
            out[str(uid_of(attrs))] = gmail.gmail_message(attrs)
            return True

        await self._gmail_fetch(ids, "(UID X-GM-MSGID X-GM-LABELS)", take)
        return out

    async def gmail_changes(self, since: int) -> dict[str, gmail.GmailMessage]:
        """Every message whose MODSEQ passed ``since`` (a label, a flag changed, or new),
        with its Gmail identity and labels, by UID: one ``UID FETCH 1:* (X-GM-MSGID
        X-GM-LABELS FLAGS) (CHANGEDSINCE since)``.  On All Mail this is every label change
        of the account (Gmail counts a label change as a change).  An answer that does not
        parse fails the mailbox: a change not read must not pass for no change."""
        if not gmail.speaks_gmail(self.capabilities):
            raise MailboxError(f"mailbox {self.name!r}: the server does not speak X-GM-EXT-1")
        out: dict[str, gmail.GmailMessage] = {}
        bad: list[str] = []

        def take(attrs: dict[str, Value]) -> bool:
            if "X-GM-MSGID" not in attrs:
                return False  # news of another kind
            out[str(uid_of(attrs))] = gmail.gmail_message(attrs)
            return True

        await self._run(
            "UID FETCH",
            "1:*",
            "(UID X-GM-MSGID X-GM-LABELS FLAGS)",
            f"(CHANGEDSINCE {since})",
            on_untagged=self._on_fetch(take, bad),
        )
        if bad:
            raise MailboxError(f"mailbox {self.name!r}: a changed message cannot be read: {bad[0]}")
        return out

    async def _gmail_fetch(
        self, ids: Sequence[str], items: str, take: Callable[[dict[str, Value]], bool]
    ) -> None:
        if not gmail.speaks_gmail(self.capabilities):
            raise MailboxError(f"mailbox {self.name!r}: the server does not speak X-GM-EXT-1")
        on_fetch = self._on_fetch(take)
        for uids in uid_sets(_uids(ids)):
            await self._run("UID FETCH", uids, items, on_untagged=on_fetch)

    async def _gone_meanwhile(self, uids: Sequence[int]) -> set[int]:
        """Of ``uids``, whose FETCH came back without its body (NIL: Dovecot's answer for a
        message another session has just expunged), those the server no longer holds once a
        NOOP has told of the expunge.  They went while we read, as if gone before we listed:
        the next listing says so; the others stay unreadable."""
        if not uids:
            return set()
        await self._run("NOOP")
        held = await self._sizes([str(u) for u in uids], [])
        gone = set(uids) - set(held)
        if gone:
            log.debug("imap.gone_while_read", mailbox=self.name, count=len(gone))
        return gone

    async def _sizes(self, ids: Sequence[str], bad: list[str]) -> dict[int, int]:
        sizes: dict[int, int] = {}

        def take(attrs: dict[str, Value]) -> bool:
            if "RFC822.SIZE" not in attrs:
                return False  # another client's flag change, told in the middle: news
            sizes[uid_of(attrs)] = number_of(attrs.get("RFC822.SIZE"))
            return True

        on_fetch = self._on_fetch(take, bad)

        for uids in uid_sets(_uids(ids)):
            await self._run("UID FETCH", uids, "(UID RFC822.SIZE)", on_untagged=on_fetch)
        return sizes

    async def _sizes_of(self, uids: list[int], bad: list[str]) -> dict[int, int]:
        """The sizes of ``uids``: from the listings where they gave them, else asked for
        (a message the server no longer holds is then left out)."""
        sizes: dict[int, int] = {}
        unknown: list[str] = []
        for uid in uids:
            size = self._known.get(uid)
            if size is None:
                unknown.append(str(uid))
            else:
                sizes[uid] = size
        if unknown:
            sizes.update(await self._sizes(unknown, bad))
        return sizes

    async def fetch(
        self, ids: Sequence[str], budget: int | None = None
    ) -> AsyncGenerator[Fetched, None]:
        """Bodies in UID order.  At most half of ``budget`` bytes (default ``BATCH_BYTES``;
        by RFC822.SIZE) and ``READ_AHEAD_MESSAGES`` is asked for and not yet given, in
        FETCHes of a quarter of that each (a bigger message alone), the next sent as soon as
        the caller has taken enough (``_bodies``).  The caller holds up to ``budget`` of them
        before it writes them, and the FETCHes in flight meanwhile keep the link busy:
        bodies in memory stay under 1.5 x ``budget``.  A body given is no longer referenced
        here.  (Measured through a 25 ms, 100 Mbit/s link, 20k messages in one folder, 8 MiB
        budget: read ahead 2 MiB 37.5 s, 4 MiB 32.3 s, 8 MiB 30.6 s; mbsync, link-bound,
        28.7 s.)

        A message whose FETCH response does not parse is skipped; the others are still
        given, and then ``MailboxError`` names what could not be read (the caller keeps
        what it got; the next run tries the skipped ones again)."""
        bad: list[str] = []
        sizes = await self._sizes_of(_uids(ids), bad)
        unreadable = [f"a size: {why}" for why in bad]
        nil: list[int] = []
        ahead = max((budget or BATCH_BYTES) // READ_AHEAD_SHARE, 1)
        async with contextlib.aclosing(self._bodies(sizes, ahead, unreadable, nil)) as bodies:
            async for fetched in bodies:
                yield fetched
        still = sorted(set(nil) - await self._gone_meanwhile(nil))
        if still:
            unreadable.append(f"UID {', '.join(map(str, still[:20]))}: BODY[] is NIL")
        if unreadable:
            raise MailboxError(
                f"mailbox {self.name!r}: {len(unreadable)} message(s) could not be read and "
                f"were skipped: {'; '.join(unreadable[:5])}"
            )

    async def _bodies(
        self, sizes: dict[int, int], ahead: int, unreadable: list[str], nil: list[int]
    ) -> AsyncGenerator[Fetched, None]:
        """The bodies of ``sizes``' UIDs in order, read through a ``Window``: pieces of a
        quarter of ``ahead`` bytes, each sent when what is asked for and not yet given
        leaves room for it.  Every FETCH of the window shares one answer handler: a server
        may answer a later piece's message early, and it waits for its piece's turn.  A NIL
        body's UID goes to ``nil`` (``_gone_meanwhile`` tells after)."""
        pieces = collections.deque(
            _batches(
                sizes, max(ahead // READ_AHEAD_PIECES, 1), READ_AHEAD_MESSAGES // READ_AHEAD_PIECES
            )
        )
        if not pieces:
            return
        arrived: dict[int, Fetched] = {}
        asked = received = owed = owed_messages = 0
        bad: list[str] = []
        lost: list[int] = []

        def take(attrs: dict[str, Value]) -> bool:
            nonlocal received
            if "BODY[]" not in attrs:
                return False  # a flag update for another message: keep it as news
            uid = uid_of(attrs)
            if attrs["BODY[]"] is None:
                nil.append(uid)  # being expunged by another session, maybe
                return True
            fetched = self._with_labels(fetched_of(attrs), attrs)
            received += fetched.body.size
            # A server may misstate RFC822.SIZE a little; one sending far more than it
            # announced would fill the disk with spooled bodies.
            if received > 2 * asked + BATCH_BYTES:
                raise ProtocolError(
                    f"server sent {received} bytes of messages where it announced {asked}"
                )
            arrived[uid] = fetched
            return True

        on_fetch = self._on_fetch(take, bad)
        items = (
            "(UID FLAGS INTERNALDATE X-GM-LABELS BODY.PEEK[])"
            if self.gmail_keywords
            else "(UID FLAGS INTERNALDATE BODY.PEEK[])"
        )
        client = await self._session()
        flying: collections.deque[tuple[list[int], list[Sent]]] = collections.deque()
        async with contextlib.AsyncExitStack() as stack:
            with self._failing():
                window = await stack.enter_async_context(client.window())

            def send_more() -> None:
                nonlocal asked, owed, owed_messages
                while pieces and (
                    not flying
                    or (
                        owed + pieces[0][1] <= ahead
                        and owed_messages + len(pieces[0][0]) <= READ_AHEAD_MESSAGES
                    )
                ):
                    uids, size = pieces.popleft()
                    with self._failing():
                        sent = [
                            window.send(Pipelined(("UID FETCH", uid_set, items), on_fetch))
                            for uid_set in uid_sets(uids)
                        ]
                    flying.append((uids, sent))
                    asked += size
                    owed += size
                    owed_messages += len(uids)

            send_more()
            while flying:
                uids, sent = flying.popleft()
                with self._failing():
                    for one in sent:
                        await window.answer(one)
                for uid in uids:
                    owed -= sizes[uid]  # the caller's to count from here
                    owed_messages -= 1
                    send_more()  # on the wire while the caller holds it
                    fetched = arrived.pop(uid, None)
                    if fetched is None:
                        lost.append(uid)
                    else:
                        yield fetched
        lost = sorted(set(lost) - set(nil))
        if bad:
            unreadable.append(
                f"UID {', '.join(map(str, lost[:20])) or '?'}: {bad[0]}"
                + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
            )

    # -- writing --------------------------------------------------------------------

    def _flag_list(self, flags: Iterable[str]) -> str:
        ok: list[str] = []
        for flag in sorted(flags):
            if flag == RECENT:
                continue
            if is_flag_atom(flag):
                ok.append(flag)
            else:
                log.warning(
                    "imap.flag_dropped",
                    mailbox=self.name,
                    flag=flag,
                    reason="not a valid IMAP flag atom",
                )
        return "(" + " ".join(ok) + ")"

    async def append(self, messages: Sequence[Incoming]) -> list[str | None]:
        plus = "LITERAL+" in self.capabilities
        out: list[str | None] = []
        for message in messages:
            flags, labels = (
                gmail_keywords.split(message.flags)
                if self.gmail_keywords
                else (message.flags, frozenset())
            )
            parts: list[str | bytes | Literal] = ["APPEND", self._quoted, self._flag_list(flags)]
            if message.internaldate is not None:
                parts.append(aio.time2internaldate(message.internaldate))
            parts.append((message.body.size, message.body.chunks()))
            done = await self._run(*parts, literal_plus=plus, check=False, counted=True)
            if done.status == "NO":  # this message, not the connection: say so, go on without it
                raise MessageRefused(
                    f"mailbox {self.name!r}: the server refused a message "
                    f"({message.identity.message_id or 'no Message-ID'}): {done.text}",
                    out,
                    reason=f"the server said: {done.status} {done.text}",
                )
            if not done.ok:
                self._failed = True
                raise MailboxError(
                    f"mailbox {self.name!r}: APPEND failed: {done.status} {done.text}"
                )
            uid: str | None = None
            if done.code == "APPENDUID":
                fields = done.code_args.split()
                if len(fields) == 2 and fields[1].isdigit():
                    uid = fields[1].decode()
            if labels and uid is not None:
                # A message appended to All Mail has no label: its labels are stored after.
                argument = gmail.labels_argument(labels)
                await self._run(
                    "UID STORE", uid, "+X-GM-LABELS", argument, on_untagged=_swallow_fetch
                )
            if self._own is not None:
                told = _highest_told(done.untagged) if self._selected else None
                self._own.added(int(uid) if uid is not None else None, told)
            out.append(uid)
        log.debug("imap.appended", mailbox=self.name, count=len(messages))
        return out

    async def set_flags(self, changes: Sequence[FlagChange]) -> None:
        """Flags added and removed; with labels as keywords (``gmail_keywords``), a keyword
        that stands for a label is that label added or taken away (``X-GM-LABELS``).  The
        STOREs go in flights (``_stores``), one round trip each, a message once per flight."""
        ops: list[tuple[str, Flags, int]] = []
        for change in changes:
            for sign, changed in (("+", change.add), ("-", change.remove)):
                plain, named = (
                    gmail_keywords.split(changed) if self.gmail_keywords else (changed, frozenset())
                )
                if plain:
                    ops.append((sign + "FLAGS.SILENT", plain, int(change.id)))
                if named:
                    ops.append((sign + "X-GM-LABELS", named, int(change.id)))

        def key(op: tuple[str, Flags, int]) -> tuple[str, tuple[str, ...]]:
            return op[0], tuple(sorted(op[1]))

        stores: list[_Store] = []
        for (verb, flags), group in groupby(sorted(ops, key=key), key=key):
            as_labels = verb.endswith("X-GM-LABELS")
            flag_list = gmail.labels_argument(flags) if as_labels else self._flag_list(flags)
            if flag_list == "()":
                continue
            for uids in uid_sets(op[2] for op in group):
                if as_labels:
                    await self._run("UID STORE", uids, verb, flag_list, on_untagged=_swallow_fetch)
                else:
                    stores.append(_Store(uids, verb, flag_list))
        for flight in _flights(stores):
            await self._stores(flight)

    async def _stores(self, stores: Sequence[_Store]) -> None:
        """``UID STORE`` of flags in one flight (one round trip), no message in two of them.
        Counted (own_writes.py): each sent ``UNCHANGEDSINCE`` what is proven so far, each
        answer's MODSEQ told; a message another client changed meanwhile fails that test
        (``MODIFIED``) and is stored again plainly, after the flight."""
        own = self._own
        since = own.unchanged_since() if own is not None else None
        if own is None or since is None:
            await self._run_many(_plain(stores))
            return
        asked = frozenset(uid for s in stores for uid in _expanded(s.uids))

        def on_fetch(u: Untagged) -> bool:
            if u.kind != "FETCH":
                return False
            try:
                attrs = fetch_attributes(u)
                own.stored(uid_of(attrs), _modseq_of(attrs), asked, since)
            except (ParseError, KeyError, ValueError):
                own.spoiled = True
            return True

        # One handler for all: a server may run the STOREs at once and mix their answers.
        done = await self._run_many(
            [
                Pipelined(
                    ("UID STORE", s.uids, f"(UNCHANGEDSINCE {since})", s.verb, s.flag_list),
                    on_fetch,
                )
                for s in stores
            ],
            counted=True,
        )
        again: list[_Store] = []
        for s, answer in zip(stores, done, strict=True):
            if answer.code != "MODIFIED":
                continue
            own.spoiled = True
            mine = _expanded(s.uids)
            try:
                modified = _named(mine, uid_ranges(answer.code_args.decode("ascii")))
            except (ValueError, UnicodeDecodeError):
                modified = sorted(mine)
            again.extend(_Store(uids, s.verb, s.flag_list) for uids in uid_sets(modified))
        if again:
            await self._run_many(_plain(again))

    async def delete(self, ids: Sequence[str]) -> set[str]:
        """``UID EXPUNGE`` of exactly these (UIDPLUS).  Without UIDPLUS a plain EXPUNGE would
        also remove other clients' ``\\Deleted`` messages, so it is sent only when SEARCH
        DELETED finds nothing but ours; otherwise ours stay marked and are not reported gone
        (the engine keeps their records and asks again on a later run)."""
        uids = _uids(ids)
        if not uids:
            return set()
        for uid_set in uid_sets(uids):
            # Not in one flight with its EXPUNGE: a server that runs both at once tells no
            # MODSEQ for messages expunged meanwhile (Dovecot), and the proof would be lost.
            await self._stores([_Store(uid_set, "+FLAGS.SILENT", "(\\Deleted)")])
            if "UIDPLUS" in self.capabilities:
                await self._expunge(uid_set)
        if "UIDPLUS" in self.capabilities:
            log.debug("imap.deleted", mailbox=self.name, count=len(uids))
            return set(ids)
        marked: set[int] = set()

        def on_search(u: Untagged) -> bool:
            if u.kind != "SEARCH":
                return False
            marked.update(int(w) for w in u.raw.first.split()[2:] if w.isdigit())
            return True

        await self._run("UID SEARCH", "DELETED", on_untagged=on_search)
        others = marked - set(uids)
        if others:
            log.warning(
                "imap.expunge_deferred",
                mailbox=self.name,
                ours=len(uids),
                others=len(others),
                detail="no UIDPLUS and other messages are marked \\Deleted: ours stay marked",
            )
            return set()
        await self._run("EXPUNGE", on_untagged=_swallow_expunge)
        log.debug("imap.deleted", mailbox=self.name, count=len(uids), via="EXPUNGE")
        return set(ids)

    async def _expunge(self, uid_set: str) -> None:
        """``UID EXPUNGE`` of one of our sets; counted (own_writes.py): the messages its
        VANISHED names (one not asked for gives the proof up) and its OK's HIGHESTMODSEQ."""
        asked = _expanded(uid_set)
        gone = 0
        foreign = False

        def on_vanished(u: Untagged) -> bool:
            nonlocal gone, foreign
            if u.kind == "VANISHED":
                try:
                    ranges = vanished_of(u)[1]  # merged: no UID counted twice
                    named = len(_named(asked, ranges))
                    gone += named
                    foreign = foreign or named < sum(b - a + 1 for a, b in ranges)
                except (ParseError, ValueError):
                    foreign = True
            return False  # kept: the news that counts the mailbox's messages

        done = await self._run("UID EXPUNGE", uid_set, on_untagged=on_vanished, counted=True)
        if self._own is not None:
            told = done.code_args if done.code == "HIGHESTMODSEQ" else b""
            self._own.removed(gone, foreign, int(told) if told.isdigit() else None)

    async def move(self, ids: Sequence[str], target: str) -> Moved:
        """``UID MOVE`` where the server has it, else ``UID COPY`` then ``delete`` (which
        expunges only ours).  With UIDPLUS the COPYUID code says which UIDs moved and their new
        UIDs; without it every UID asked for counts as moved, its new UID unknown."""
        uids = _uids(ids)
        if not uids:
            return Moved({})
        if self._locate is None:
            raise MailboxError(f"mailbox {self.name!r}: no way to name another folder")
        dest = quote_astring(self._locate(target))
        verb = "UID MOVE" if "MOVE" in self.capabilities else "UID COPY"
        new: dict[str, str | None] = {}
        for uid_set in uid_sets(uids):
            in_set = _expanded(uid_set)
            chunk = [u for u in uids if u in in_set]
            codes: list[bytes] = []
            done = await self._run(verb, uid_set, dest, on_untagged=_copyuid_into(codes))
            if done.code == "COPYUID":
                codes.append(done.code_args)
            new.update(self._moved(chunk, codes))
        kept: frozenset[str] = frozenset()
        if verb == "UID COPY" and new:
            kept = frozenset(new) - frozenset(await self.delete(list(new)))
        log.debug("imap.moved", mailbox=self.name, target=target, count=len(new), via=verb)
        return Moved(new, kept)

    async def remove_label(self, ids: Sequence[str]) -> set[str]:
        """Take this mailbox's Gmail label away from exactly these messages (``UID STORE
        -X-GM-LABELS``), which takes them out of it and out of nothing else: unlike an expunge,
        never a deletion, whatever Gmail's setting for a message expunged from its last label.
        A mailbox that is no label's (All Mail, Trash, Spam) deletes as ``delete`` does.
        Returns the ids gone from this mailbox."""
        label = gmail.label_of_mailbox(self.name, self.special_use)
        if label is None:
            return await self.delete(ids)
        argument = gmail.labels_argument([label])
        for uid_set in uid_sets(_uids(ids)):
            await self._run(
                "UID STORE", uid_set, "-X-GM-LABELS", argument, on_untagged=_swallow_fetch
            )
        log.debug("imap.label_removed", mailbox=self.name, count=len(ids))
        return set(ids)

    async def copy(self, ids: Sequence[str], target: str) -> dict[str, str | None]:
        """``UID COPY`` of exactly these into folder ``target`` (canonical name), without
        reading their bodies: each UID copied and its new UID there (None where the server
        does not say, without UIDPLUS).  On Gmail this adds the target's label to the same
        message, never a second message."""
        uids = _uids(ids)
        if not uids:
            return {}
        if self._locate is None:
            raise MailboxError(f"mailbox {self.name!r}: no way to name another folder")
        dest = quote_astring(self._locate(target))
        new: dict[str, str | None] = {}
        for uid_set in uid_sets(uids):
            in_set = _expanded(uid_set)
            codes: list[bytes] = []
            done = await self._run("UID COPY", uid_set, dest, on_untagged=_copyuid_into(codes))
            if done.code == "COPYUID":
                codes.append(done.code_args)
            new.update(self._moved([u for u in uids if u in in_set], codes))
        log.debug("imap.copied", mailbox=self.name, target=target, count=len(new))
        return new

    def _moved(self, chunk: list[int], codes: list[bytes]) -> dict[str, str | None]:
        """Source UID -> new UID, from the COPYUID codes of one command (none: all unknown)."""
        if not codes:
            return {str(u): None for u in chunk}
        mapping: dict[int, int] = {}
        try:
            for args in codes:
                mapping.update(copied_uids(args, len(chunk)))
        except ParseError as e:
            log.warning("imap.bad_copyuid", mailbox=self.name, error=str(e))
            return {str(u): None for u in chunk}
        return {str(u): str(mapping[u]) for u in chunk if u in mapping}

    def begin_writes(self, status: MailboxStatus) -> None:
        """The writes from here on are counted against ``status`` (own_writes.py)."""
        self._own = OwnWrites.start(status, self.capabilities, self.enabled)

    def written(self) -> None:
        """Nothing: the server's HIGHESTMODSEQ tells the next sync what changed (and
        ``after_writes`` what the writes alone made of it)."""
        return None

    def after_writes(self) -> MailboxStatus | None:
        """The status after this open's writes since ``begin_writes``, when they are proven
        the only change (own_writes.py); asked once."""
        own, self._own = self._own, None
        if own is None or not self._selected or own.since.validity != str(self.uidvalidity):
            return None
        return own.status()

    async def close(self) -> None:
        client = self._client
        if self._release is not None and not self._failed and (client is None or client.usable):
            untouched = not self._selected and not self._wrote
            selection = (
                Selection(self.uidvalidity, self.uidnext, self.highestmodseq, self.exists)
                if self._selected and client is not None
                else None
            )
            await self._release(client, self._listed if untouched else None, selection)
        elif client is not None:
            await client.close()


_NO_SELECT_NEEDED = frozenset({"SELECT", "EXAMINE", "APPEND", "STATUS"})
_WRITES = frozenset(
    {"APPEND", "UID STORE", "STORE", "UID EXPUNGE", "EXPUNGE", "UID MOVE", "UID COPY"}
)


def _batches(
    sizes: dict[int, int], most: int, count: int | None = None
) -> Iterator[tuple[list[int], int]]:
    """UIDs in order, in batches of at most ``most`` bytes (a bigger message alone) and
    ``count`` messages, each with its bytes."""
    batch: list[int] = []
    held = 0
    for uid in sorted(sizes):
        if batch and (held + sizes[uid] > most or len(batch) == count):
            yield batch, held
            batch, held = [], 0
        batch.append(uid)
        held += sizes[uid]
    if batch:
        yield batch, held


def _copyuid_into(codes: list[bytes]) -> OnUntagged:
    """Keep the COPYUID of an untagged OK (MOVE sends it before its EXPUNGEs); swallow the
    EXPUNGE / VANISHED of the moved messages."""

    def on_untagged(u: Untagged) -> bool:
        if u.kind == "OK":
            st = status_text(u.raw.first[4:])
            if st.code == "COPYUID":
                codes.append(st.args)
                return True
        return u.kind in ("EXPUNGE", "VANISHED")

    return on_untagged


def _expanded(uid_set: str) -> set[int]:
    """Every UID of one of our own sets (``uid_sets``: at most UIDS_PER_COMMAND of them)."""
    return {u for a, b in uid_ranges(uid_set) for u in range(a, b + 1)}


def _named(ours: Iterable[int], ranges: Sequence[tuple[int, int]]) -> list[int]:
    """Those of ``ours`` that a server's UID ranges name, in order; the ranges are never
    expanded (a server's set may name any range)."""
    return sorted(u for u in ours if any(a <= u <= b for a, b in ranges))


def _modseq_of(attrs: dict[str, Value]) -> int | None:
    """The MODSEQ of a FETCH response (``MODSEQ (n)``), None when it has none."""
    value = attrs.get("MODSEQ")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 1:
        raise ParseError(f"MODSEQ is not one number in parentheses: {value!r}"[:120])
    return number_of(value[0])


def _highest_told(untagged: Iterable[Untagged]) -> int | None:
    """The last ``* OK [HIGHESTMODSEQ n]`` among a command's untagged answers."""
    told = None
    for u in untagged:
        if u.kind == "OK":
            st = status_text(u.raw.first[4:])
            if st.code == "HIGHESTMODSEQ" and st.args.isdigit():
                told = int(st.args)
    return told


class _Store(NamedTuple):
    """A ``UID STORE`` of flags: the UIDs (a set of ours), ``+FLAGS.SILENT`` or
    ``-FLAGS.SILENT``, the flag list."""

    uids: str
    verb: str
    flag_list: str


def _flights(stores: Sequence[_Store]) -> list[list[_Store]]:
    """``stores`` in order, in flights that name each message once: a STORE sent
    ``UNCHANGEDSINCE`` a mod-sequence fails for a message an earlier STORE of its own flight
    changed."""
    flights: list[list[_Store]] = []
    named: set[int] = set()
    for store in stores:
        uids = _expanded(store.uids)
        if not flights or uids & named:
            flights.append([])
            named = set()
        flights[-1].append(store)
        named |= uids
    return flights


def _plain(stores: Sequence[_Store]) -> list[Pipelined]:
    """``stores`` as plain STOREs, not counted (their FETCH answers swallowed)."""
    return [Pipelined(("UID STORE", *s), _swallow_fetch) for s in stores]


def _swallow_fetch(u: Untagged) -> bool:
    return u.kind == "FETCH"


def _swallow_expunge(u: Untagged) -> bool:
    return u.kind == "EXPUNGE"


def _uids(ids: Iterable[str]) -> list[int]:
    out: list[int] = []
    for i in ids:
        if not i.isdigit() or int(i) == 0:
            raise MailboxError(f"not an IMAP UID: {i!r}")
        out.append(int(i))
    return out
