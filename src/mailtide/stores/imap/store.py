"""The IMAP store: folders of one account; each open mailbox on its own connection, which
goes back to a pool for the next mailbox when it is closed.

Folder names are mapped by the server's ``FolderNames`` (names.py).  A server name that
cannot be mapped safely is reported in ``refused`` and left out, never guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from mailtide.core.names import BadFolderName, is_inbox, parents
from mailtide.stores.base import FolderInfo, MailboxStatus, StoreError, UnsafeFolderName
from mailtide.stores.imap import gmail
from mailtide.stores.imap.client import ImapClient, ImapSettings
from mailtide.stores.imap.mailbox import ImapMailbox, Selection, status_from, status_of
from mailtide.stores.imap.names import FolderNames, namespace_of, raw_name
from mailtide.stores.imap.parse import ParseError, Untagged, text_of, untagged
from mailtide.stores.imap.protocol import Done, Pipelined, ProtocolError, ResponseReader
from mailtide.stores.imap.seen import KINDS, Listing, answers, list_returns, response_bytes
from mailtide.stores.imap.sizes import KnownSizes
from mailtide.stores.imap.special_use import ALL_MAIL
from mailtide.stores.imap.wire import quote_astring

NAMESPACE = frozenset({"NAMESPACE"})  # what answers NAMESPACE (a LIST run at once: not it)

log = structlog.get_logger(__name__)

NO_CAPABILITIES: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

__all__ = ["ImapMailbox", "ImapSettings", "ImapStore"]


class ImapStore:
    """An IMAP account as a ``Store``."""

    def __init__(self, settings: ImapSettings, read_only: bool = False, held: bool = False) -> None:
        """``read_only``: for a dry run; mailboxes are EXAMINEd and every write is refused.
        ``held``: the store's connections are held between syncs (a daemon): its own is kept
        for its folder listings, never given to a mailbox (``_take_client``)."""
        self.settings = settings
        self.read_only = read_only
        self.held = held
        self._client: ImapClient | None = None  # the store's own: folders, namespace
        # The server's capabilities and what it enabled, as the store's own connection last
        # saw them (that connection may since have gone to a mailbox: ``_take_client``).
        self._server: tuple[frozenset[str], frozenset[str]] = NO_CAPABILITIES
        # ... and as an earlier run's last saw them (``recall``), until this run's do.
        self._recalled: frozenset[str] = frozenset()
        self._idle: list[ImapClient] = []  # connections a closed mailbox gave back
        # Connections begun ahead of the mailboxes that will take them (``warm``).
        self._warming: list[asyncio.Future[ImapClient]] = []
        # LIST-STATUS answers of the last list_folders, each handed to one open() only: a
        # later open must not trust a status older than the sync that follows it.  Except
        # that a mailbox closed unselected and unwritten gives its status back, for a second
        # open in the same sync (the engine's move pass opens every mailbox before the pairs
        # do: a no-change sync then selects none), until anything is written (a MOVE changes
        # the mailbox it goes to without selecting it).
        self._listed: dict[str, MailboxStatus] = {}
        self._given_back: set[str] = set()
        self._writes = 0  # commands that may have changed mail, counted over the store's life
        self._writes_at_list = 0  # ... when list_folders read the statuses
        self._open = 0  # mailboxes handed out and not yet given back
        self._refused: list[tuple[str, str]] = []
        # Folders the last list_folders left out by their special use: name -> the use.
        self._left_out: dict[str, str] = {}
        # The special use of each folder of the last list_folders (a Gmail label's mailbox).
        self._uses: dict[str, str] = {}
        self.names = FolderNames()  # read from the server (NAMESPACE) at connect
        # The sizes each mailbox's listings gave in this run (from list_folders on), for its
        # later opens: the move pass's plan and the pair's own run share them, so the copies
        # need no size FETCH of their own.
        self._sizes: dict[str, KnownSizes] = {}
        # The mailbox each connection given back has selected, and what its SELECT said, for
        # an open that carries out the plan made on it (``open(planned=True)``); this run only.
        self._selections: dict[int, tuple[ImapClient, str, Selection]] = {}
        # ... and those of earlier runs (a daemon holds its connections between syncs): a
        # later run's open of that mailbox goes on in the same session (``_resumed``).
        self._earlier: dict[int, tuple[ImapClient, str, Selection]] = {}
        # What this run's statuses come from (imap/seen.py): the answers to NAMESPACE and to
        # the folder LIST (None for one that cannot be kept), how many LISTs there were, and
        # whether a mailbox was opened without its status from the LIST (read otherwise).
        self._namespace_seen: list[bytes | None] = []
        self._listed_seen: list[bytes | None] | None = None
        self._lists = 0
        self._unlisted = False
        # The folder LIST asked with the store's connection (``_ready``), or read before the
        # run (``listed_before``: no connection, None), for the next list_folders while that
        # connection is still the store's own and nothing was asked or written meanwhile.
        self._early_list: tuple[ImapClient | None, Done] | None = None
        # The folders the last LIST gave (list_folders), until this store changes a folder;
        # and statuses a daemon's push told since, for the next list_folders (``pushed``).
        self._last_list: list[FolderInfo] | None = None
        self._pushed: dict[str, MailboxStatus] | None = None
        # What gives the answers of a session begun before the run (``listed_before``).
        self._before: tuple[Callable[[], Listing | None], bool, bool] | None = None
        self._begun: asyncio.Future[ImapClient] | None = None  # begun beside that session

    @property
    def capabilities(self) -> frozenset[str]:
        return self._server[0]

    @property
    def speaks_gmail(self) -> bool:
        """Whether the server has Gmail's extension (X-GM-EXT-1: labels, X-GM-MSGID), as far
        as the store's connection has seen its capabilities."""
        return gmail.speaks_gmail(self.capabilities)

    async def _new_client(self) -> ImapClient:
        client = ImapClient(self.settings, known=self._server[0] or self._recalled)
        try:
            await client.connect(enable_later=True)  # with its first command: a round trip less
        except BaseException:
            client.drop()  # what a failed or stopped login left open
            raise
        return client

    def known_changed(self, name: str, since: tuple[str | None, int | None] | None) -> bool:
        """Whether mailbox ``name``'s status in the folder list differs from the validity and
        mod-sequence the last sync left (``since``; None: never synced): it will need a
        connection.  One that shows the same needs no command (``ImapMailbox.changes_since``
        with QRESYNC).  False where the list gave no mod-sequence: cannot tell."""
        listed = self._listed.get(name)
        if listed is None or listed.highestmodseq is None:
            return False
        return since is None or (listed.validity, listed.highestmodseq) != since

    def warm(self, count: int) -> None:
        """Begin now, in the background, the connections ``count`` mailboxes synced at once
        will each take (the store's own and those given back count): while the caller plans,
        not when each mailbox first needs one (on a link, a connection and its login are two
        round trips or more).  ``_take_client`` takes them before it opens another."""
        own = self._client is not None and not self.held  # a mailbox may take the store's own
        ready = len(self._idle) + len(self._warming) + own
        for _ in range(count - ready):
            self._warming.append(asyncio.ensure_future(self._new_client()))

    def memo(self) -> str | None:
        """The capabilities after the login, as the store's own connection saw them."""
        return " ".join(sorted(self._server[0])) if self._server[0] else None

    def recall(self, memo: str | None) -> None:
        self._recalled = frozenset((memo or "").split())

    def listed_before(
        self, ended: Callable[[], Listing | None], beside: bool = False, usable: bool = True
    ) -> None:
        """A session of this store's server and user, begun before the run (the command's,
        quiet/early.py), is reading what a new connection of the store reads first: its
        capabilities, NAMESPACE and the folder LIST with each folder's STATUS.  ``ended``
        waits for that session to end (it blocks) and gives its answers, None for none to
        take.  The next ``connect`` waits for it before a connection of its own begins
        (``max_connections``), except the one a mailbox takes first when ``beside`` (it may
        be open beside that session: it counts as the store's own).  Given the answers, and
        ``usable`` (they apply to this run: wiring.py), the store opens no connection for them:
        they are the next ``list_folders``."""
        self._before = (ended, beside, usable)

    async def connect(self, first_sync: bool = False) -> None:
        before, self._before = self._before, None
        if before is not None:
            ended, beside, usable = before
            begun = None
            if beside and self._client is None:  # its login while the server lists
                begun = asyncio.ensure_future(self._new_client())
            try:
                listing = await asyncio.to_thread(ended)
            except BaseException:
                if begun is not None:
                    begun.cancel()  # _new_client drops what it had opened
                raise
            if (
                usable
                and listing is not None
                and self._client is None
                and self._listed_from(listing)
            ):
                self._warming.append(begun or asyncio.ensure_future(self._new_client()))
                return
            self._begun = begun  # the store's own, then (``_ready``)
        await self._ready(listing=True)  # a sync lists the folders next

    def _listed_from(self, listing: Listing) -> bool:
        """Take ``listing`` (``listed_before``) as a new connection's first answers (as
        ``_ready`` reads them); False, taking nothing, for answers this store cannot read."""
        try:
            namespace = _answered(listing.namespace)
            listed = _answered(listing.listed)
        except (ProtocolError, ParseError) as e:
            log.debug("imap.listed_before_unread", error=str(e))
            return False
        self._answered(
            listing.capabilities,
            listing.enabled,
            namespace if "NAMESPACE" in listing.capabilities else None,
            (None, listed),
        )
        log.debug("imap.listed_before", folders=sum(u.kind == "LIST" for u in listed.untagged))
        return True

    async def _ready(self, listing: bool = False) -> ImapClient:
        """The store's own connection (folders, namespace), opened again if it broke: after a
        lost connection the engine retries on this store, which must not reuse a dead one.

        A new one asks NAMESPACE in one flight with its ENABLE, and with the folder LIST for
        a caller ``listing`` next: that answer is kept for the ``list_folders`` that comes
        next, as long as nothing else was asked of the server or written to it meanwhile."""
        client = self._client
        if client is not None and client.usable:
            if not listing:
                self._early_list = None
            return client
        self._client = None
        if client is not None:
            await client.close()
        begun, self._begun = self._begun, None
        client = await (begun if begun is not None else self._new_client())
        namespace = "NAMESPACE" in client.capabilities
        done = await client.run_many(
            [
                *([Pipelined(("NAMESPACE",), check=False, kinds=NAMESPACE)] if namespace else []),
                *(
                    [
                        Pipelined(
                            ("LIST", '""', '"*"', *list_returns(client.capabilities)), check=False
                        )
                    ]
                    if listing
                    else []
                ),
            ]
        )
        self._client = client
        self._answered(
            client.capabilities,
            client.enabled,
            done[0] if namespace else None,
            (client, done[-1]) if listing else None,
        )
        return client

    def _answered(
        self,
        capabilities: frozenset[str],
        enabled: frozenset[str],
        namespace: Done | None,
        early_list: tuple[ImapClient | None, Done] | None,
    ) -> None:
        """What a new connection's first answers say (``_ready``), or a session's begun before
        the run (``_listed_from``): the server's capabilities and what it enabled, the
        namespace (the default one without an answer to NAMESPACE), and the folder LIST."""
        self._namespace_seen = []
        self.names = namespace_of(namespace, self._namespace_seen) if namespace else FolderNames()
        self._early_list = early_list
        self._server = (capabilities, enabled)

    # -- names ----------------------------------------------------------------------

    def server_name(self, name: str) -> str:
        """The server's name for canonical ``name``; UnsafeFolderName if it has none."""
        return self.names.server_name(name)

    def check_name(self, name: str) -> None:
        use = self._left_out.get(name)
        if use is not None:
            # The folder exists, unlisted: creating it would fail or make a second one.
            raise UnsafeFolderName(
                f"it is the server's {use} folder, which this repository leaves out (name it"
                " exactly in folders.include to sync it)"
            )
        self.server_name(name)

    def canonical_name(self, raw: str, separator: str | None) -> str:
        """The canonical name for a server name; BadFolderName with the reason if none."""
        return self.names.canonical_name(raw, separator)

    # -- folders --------------------------------------------------------------------

    def pushed(self, statuses: Mapping[str, MailboxStatus] | None) -> None:
        """The server's push told these mailboxes' statuses (NOTIFY's STATUS news, by
        canonical name), and nothing of its folders (a folder created, renamed or deleted is
        news of its own, and a sync of every mailbox), since this store last listed them: the
        next ``list_folders`` answers from that listing, with these statuses, without asking
        the server (on Maildir its LIST-STATUS re-reads every changed folder, which the
        pushed mailbox's own commands do again).  Only where that listing is at hand and the
        store's connection was open already (a new one asks the LIST with its login: that
        answer is used then).  None: forget what was told (its sync has ended)."""
        self._pushed = None if statuses is None else dict(statuses)

    def _listed_by_push(self) -> list[FolderInfo] | None:
        """The folders of the last listing with the pushed statuses (``pushed``), or None."""
        pushed, self._pushed = self._pushed, None
        client = self._client
        if (
            pushed is None
            or self._last_list is None
            or self._early_list is not None
            or client is None
            or not client.usable
            or not pushed.keys() <= {f.name for f in self._last_list}  # a folder made since
        ):
            return None
        self._new_listing(None)
        self._listed = dict(pushed)  # any other mailbox opened is selected for its status
        log.debug("imap.listed_by_push", mailboxes=sorted(pushed))
        return [
            replace(f, identity=s.validity) if (s := pushed.get(f.name)) else f
            for f in self._last_list
        ]

    def _new_listing(self, seen: list[bytes | None] | None) -> None:
        """What a listing makes anew: the statuses, the sessions this run may take up again,
        the counts that tell what this run's statuses come from (``seen``: the answers)."""
        self._listed = {}
        self._given_back = set()
        self._sizes = {}
        self._earlier.update(self._selections)
        self._selections = {}
        self._writes_at_list = self._writes
        self._lists += 1
        self._listed_seen = seen

    async def list_folders(self) -> list[FolderInfo]:
        by_push = self._listed_by_push()
        if by_push is not None:
            return by_push
        done = self._early_listed()
        if done is None or not done.ok:
            client = await self._ready(listing=True)
            done = self._early_listed()
            if done is None or not done.ok:  # asked again: its failure is this call's
                done = await client.run("LIST", '""', '"*"', *list_returns(client.capabilities))
        refused: list[tuple[str, str]] = []
        found: dict[str, FolderInfo] = {}
        left_out: dict[str, str] = {}
        listed = 0
        self._new_listing(
            [response_bytes(u.raw.lines, u.raw.literals) for u in done.untagged if u.kind in KINDS]
        )
        for u in done.untagged:
            if u.kind == "STATUS":
                self._remember_status(u)
                continue
            if u.kind != "LIST":
                continue
            listed += 1
            try:
                info = self.names.folder_of(u)
            except BadFolderName as e:
                refused.append((raw_name(u), str(e)))
                log.warning("imap.folder_refused", folder=raw_name(u), reason=str(e))
                continue
            except ParseError as e:
                refused.append((raw_name(u), f"unparsable LIST response: {e}"))
                continue
            if info is not None and self.settings.left_out.hides(info):
                left_out[info.name] = info.special_use or ""
                log.debug("imap.folder_left_out", folder=info.name, special_use=info.special_use)
            elif info is not None:
                found[info.name] = info
        self._refused = refused
        self._uses = {name: f.special_use for name, f in found.items() if f.special_use}
        self._left_out = left_out
        if listed == 0:
            # Never let an empty answer look like "every folder was deleted".
            raise StoreError(f"{self.settings.where}: server listed no folders")
        self._last_list = [
            replace(f, identity=s.validity) if (s := self._listed.get(f.name)) else f
            for f in sorted(found.values(), key=lambda f: f.name)
        ]
        return list(self._last_list)

    def _early_listed(self) -> Done | None:
        """The LIST kept for this list_folders (``_early_list``), taken, where its connection
        is still the store's own (none: read before the run, and none opened since)."""
        kept, self._early_list = self._early_list, None
        if kept is None or kept[0] is not self._client:
            return None
        return kept[1] if kept[0] is None or kept[0].usable else None

    def seen(self) -> dict[str, Any] | None:
        """What the statuses this run recorded come from, for the quiet check (quiet/): the
        answers to NAMESPACE and to the run's one folder LIST (imap/seen.py), where every
        mailbox opened took its status from that LIST (LIST-STATUS), the store wrote nothing
        (the server then holds what they say) and refused no folder.  Else None."""
        namespace = [a for a in self._namespace_seen if a is not None]
        listed = [a for a in self._listed_seen or [] if a is not None]
        if (
            self._server is NO_CAPABILITIES
            or self._lists != 1
            or self._unlisted
            or self._writes
            or self._refused
            or len(namespace) != len(self._namespace_seen)
            or len(listed) != len(self._listed_seen or [])
        ):
            return None
        return {
            "kind": "imap",
            "answers": answers(*self._server, namespace, listed),
        }

    def stamped(self, name: str, stamp: str) -> None:
        """A server's mailboxes have no stamps."""

    def special_uses(self) -> dict[str, str]:
        """The special use of each folder the last ``list_folders`` listed (canonical names),
        and of each it left out by its special use."""
        return {**self._left_out, **self._uses}

    async def special_folder(self, use: str) -> str | None:
        """``LIST (SPECIAL-USE) "" "*"`` where the server has SPECIAL-USE (else a plain LIST,
        whose attributes may carry it); the first folder so marked, by name."""
        client = await self._ready()
        if "SPECIAL-USE" in client.capabilities:
            done = await client.run("LIST", "(SPECIAL-USE)", '""', '"*"')
        else:
            done = await client.run("LIST", '""', '"*"')
        marked = []
        for u in done.untagged:
            if u.kind != "LIST":
                continue
            try:
                info = self.names.folder_of(u)
            except (BadFolderName, ParseError):
                continue
            if info is not None and info.special_use == use:
                marked.append(info.name)
        return min(marked) if marked else None

    def _remember_status(self, u: Untagged) -> None:
        """``* STATUS name (UIDVALIDITY 7 UIDNEXT 9 ...)`` from LIST-STATUS, by canonical name."""
        try:
            raw, values = status_of(u)
            name = self.canonical_name(text_of(raw), None)
        except (ParseError, BadFolderName, ValueError):
            return  # the mailbox will be selected and its status read then
        status = status_from(values)
        if status is not None:
            self._listed[name] = status

    @property
    def refused(self) -> list[tuple[str, str]]:
        return list(self._refused)

    async def create_folder(self, name: str) -> None:
        self._folder_written()
        if self.read_only:
            raise StoreError(f"{self.settings.where} is open read-only (dry run)")
        client = await self._ready()
        for each in [*parents(name), name]:
            if is_inbox(each):
                continue
            done = await client.run("CREATE", quote_astring(self.server_name(each)), check=False)
            if each != name:
                # A parent that exists is refused without ALREADYEXISTS by some servers
                # (Courier: "NO Cannot create this folder."); the folder's own CREATE tells.
                continue
            if not done.ok and done.code != "ALREADYEXISTS" and "exist" not in done.text.lower():
                raise StoreError(f"cannot create folder {each!r}: {done.status} {done.text}")
        log.debug("imap.folder_created", folder=name)

    async def folder_identity(self, name: str, create: bool = False) -> str:
        """The folder's UIDVALIDITY (from the last LIST-STATUS, else asked with STATUS)."""
        listed = self._listed.get(name)
        if listed is not None:
            return listed.validity
        client = await self._ready()
        done = await client.run(
            "STATUS", quote_astring(self.server_name(name)), "(UIDVALIDITY)", check=False
        )
        for u in done.untagged:
            if u.kind == "STATUS":
                with contextlib.suppress(ParseError, ValueError):
                    value = status_of(u)[1].get("UIDVALIDITY")
                    if value is not None:
                        return str(value)
        return ""

    async def rename_folder(self, old: str, new: str) -> None:
        """RENAME (the folders under it go along, RFC 3501 6.3.5), and the subscription of
        each with it (servers differ on whether RENAME carries subscriptions)."""
        self._folder_written()
        if self.read_only:
            raise StoreError(f"{self.settings.where} is open read-only (dry run)")
        if is_inbox(old) or is_inbox(new):
            # RENAME INBOX moves its messages into a new folder and leaves INBOX empty
            raise StoreError("INBOX is never renamed (its mail would move)")
        client = await self._ready()
        source, target = self.server_name(old), self.server_name(new)
        subscribed = await self.subscribed() or set()
        done = await client.run("RENAME", quote_astring(source), quote_astring(target), check=False)
        if not done.ok:
            raise StoreError(f"cannot rename folder {old!r} to {new!r}: {done.status} {done.text}")
        for name in sorted(subscribed):
            if name == old or name.startswith(old + "/"):
                await self.subscribe(new + name[len(old) :])
                await self.subscribe(name, on=False)
        log.debug("imap.folder_renamed", old=old, new=new)

    async def delete_folder(self, name: str) -> None:
        """DELETE, only when STATUS says the folder holds no message."""
        self._folder_written()
        if self.read_only:
            raise StoreError(f"{self.settings.where} is open read-only (dry run)")
        if is_inbox(name):
            raise StoreError("INBOX is never deleted")
        client = await self._ready()
        server_name = quote_astring(self.server_name(name))
        done = await client.run("STATUS", server_name, "(MESSAGES)")
        for u in done.untagged:
            if u.kind == "STATUS" and status_of(u)[1].get("MESSAGES", 1) != 0:
                raise StoreError(f"cannot delete folder {name!r}: it is not empty")
        done = await client.run("DELETE", server_name, check=False)
        if not done.ok:
            raise StoreError(f"cannot delete folder {name!r}: {done.status} {done.text}")
        await self.subscribe(name, on=False)
        self._listed.pop(name, None)
        log.debug("imap.folder_deleted", folder=name)

    async def subscribed(self) -> set[str] | None:
        """The folders LSUB lists (a name that cannot be mapped is left out)."""
        client = await self._ready()
        done = await client.run("LSUB", '""', '"*"')
        names = set()
        for u in done.untagged:
            if u.kind != "LSUB":
                continue
            with contextlib.suppress(BadFolderName, ParseError):
                info = self.names.folder_of(u)
                if info is not None:
                    names.add(info.name)
        return names

    async def subscribe(self, name: str, on: bool = True) -> None:
        """SUBSCRIBE (UNSUBSCRIBE); a refusal is logged, not raised: the mail is not at stake."""
        if self.read_only:
            return
        client = await self._ready()
        command = "SUBSCRIBE" if on else "UNSUBSCRIBE"
        done = await client.run(command, quote_astring(self.server_name(name)), check=False)
        if not done.ok:
            log.info("imap.subscribe_refused", folder=name, command=command, text=done.text)

    async def read_ahead(self, recorded: Mapping[str, str | None]) -> None:
        """Nothing to begin: a mailbox's changes are asked when it is opened."""

    async def open(self, name: str, planned: bool = False) -> ImapMailbox:
        server_name = self.server_name(name)
        given_back = name in self._given_back
        self._given_back.discard(name)
        listed = self._listed.pop(name, None)
        if listed is not None and "CONDSTORE" in self.capabilities and listed.highestmodseq is None:
            listed = None
        kept = self._selection_of(name) if planned else None
        resumed = False
        if kept is None and listed is not None:
            kept = self._resumed(name, listed)
            resumed = kept is not None
        selection = None
        client: ImapClient | None
        # a status not from this run's LIST (a SELECT's, an earlier open's session)
        self._unlisted = self._unlisted or listed is None or kept is not None
        if kept is not None:  # the plan's own session: still selected, no SELECT again
            client, selection = kept
            listed = None
        else:
            # A listed mailbox takes a connection when a command first needs one: a no-change
            # sync of many mailboxes then opens no connection beyond the store's own.
            client = None if listed is not None else await self._take_client()
        mailbox = ImapMailbox(
            client or self._take_client,
            name,
            server_name,
            release=functools.partial(self._give_back, name),
            listed=listed,
            read_only=self.read_only,
            locate=self.server_name,
            special_use=self._uses.get(name),
            on_write=self._written,
            # A pair may run beside another that writes (a MOVE into this mailbox).
            listed_holds=self._given_back_holds if given_back else None,
            gmail_keywords=self.settings.gmail_keywords and self._uses.get(name) == ALL_MAIL,
            server=(client.capabilities, client.enabled) if client else self._server,
            sizes=self._sizes.setdefault(name, KnownSizes()),
            selection=selection,
        )
        if resumed:
            mailbox.resume()
        elif client is not None and selection is None:
            try:
                await mailbox.select()
            except BaseException:
                await client.close()
                raise
        self._open += 1  # a mailbox that fails is never given back: counted open, to be safe
        return mailbox

    async def _take_client(self) -> ImapClient:
        """A connection for a mailbox: one given back (never one that broke while it waited),
        else the store's own, else a new one.  The store's own goes to the mailbox for good:
        a run of one changed mailbox then logs in once (on a 25 ms link a login costs 3 to 4
        round trips), and a folder command after it opens the store another (``_ready``).
        Never shared: a mailbox selected on the store's own connection would get a stale
        status from its LIST-STATUS (RFC 3501 6.3.10; Dovecot answers [CLIENTBUG]).  A store
        whose connections are ``held`` between syncs keeps its own: the next sync's listing
        would open another, at a push's expense (or, for a push, need none: ``pushed``)."""
        while self._idle and not self._idle[-1].usable:
            await self._idle.pop().close()
        if self._idle:
            client = self._idle.pop()
            self._forget_selection(client)  # it is to select another mailbox
            return client
        if not self.held:
            own, self._client = self._client, None
            if own is not None and own.usable:
                return own
            if own is not None:
                await own.close()
        while self._warming:  # its failure is this mailbox's, as if it had opened it
            client = await self._warming.pop(0)
            if client.usable:
                return client
            await client.close()
        return await self._new_client()

    def _forget_selection(self, client: ImapClient) -> None:
        self._selections.pop(id(client), None)
        self._earlier.pop(id(client), None)

    def _idle_selecting(
        self, name: str, table: dict[int, tuple[ImapClient, str, Selection]]
    ) -> int | None:
        """Where in ``_idle`` a connection is that ``table`` says has mailbox ``name``
        selected (the last given back first)."""
        for at in range(len(self._idle) - 1, -1, -1):
            kept = table.get(id(self._idle[at]))
            if kept is not None and kept[0] is self._idle[at] and kept[1] == name:
                return at
        return None

    def _selection_of(self, name: str) -> tuple[ImapClient, Selection] | None:
        """A connection given back with mailbox ``name`` selected, taken with its session."""
        at = self._idle_selecting(name, self._selections)
        if at is None or not self._idle[at].usable:
            return None
        client = self._idle.pop(at)
        return client, self._selections.pop(id(client))[2]

    def _resumed(self, name: str, listed: MailboxStatus) -> tuple[ImapClient, Selection] | None:
        """A connection that an earlier run left with mailbox ``name`` selected, taken with its
        session, where this run's listing shows the same mailbox (its UIDVALIDITY) on a server
        that reports every change to a selected mailbox (QRESYNC: VANISHED, FETCH with
        MODSEQ).  Its status is the listing's, which is newer than the SELECT of long ago; the
        session's own news since (EXISTS, VANISHED) give its message count.  A SELECT of a
        big mailbox costs the server a read of its whole index (0.1 s at 50k messages), which
        a daemon would otherwise pay on every push."""
        at = self._idle_selecting(name, self._earlier)
        if at is None:
            return None
        client = self._idle[at]
        old = self._earlier.pop(id(client))[2]
        if (
            not client.usable
            or "QRESYNC" not in client.enabled
            or listed.validity != str(old.uidvalidity)
            or listed.highestmodseq is None
        ):
            return None  # left idle: the next open of this mailbox selects it
        del self._idle[at]
        return client, Selection(old.uidvalidity, listed.uidnext, listed.highestmodseq, old.exists)

    async def _give_back(
        self,
        name: str,
        client: ImapClient | None,
        listed: MailboxStatus | None,
        selection: Selection | None = None,
    ) -> None:
        # The status is the listing's: it holds only while nothing at all has been written.
        self._open -= 1
        if listed is not None and name not in self._listed and self._unwritten():
            self._listed[name] = listed
            self._given_back.add(name)
        if client is None:
            return
        if client.usable:
            self._idle.append(client)
            self._forget_selection(client)
            if selection is not None:
                self._selections[id(client)] = (client, name, selection)
        else:
            self._forget_selection(client)
            await client.close()

    def _unwritten(self) -> bool:
        """Whether nothing was written since list_folders read the statuses."""
        return self._writes == self._writes_at_list

    def _given_back_holds(self) -> bool:
        """Whether a status given back still holds for the mailbox asking: nothing written,
        and no other mailbox open, whose pair might be about to write into it (a deletion
        moved to Trash) while this one decides it is unchanged."""
        return self._unwritten() and self._open <= 1

    def _written(self) -> None:
        """Mail is about to change on the server: a status given back may no longer hold."""
        self._writes += 1
        self._early_list = None
        for name in self._given_back:
            self._listed.pop(name, None)
        self._given_back.clear()

    def _folder_written(self) -> None:
        """Before a folder command: a folder's status from the listing may no longer hold,
        nor the listing's folders (``pushed`` lists again)."""
        self._written()
        self._last_list = None

    async def keepalive(self) -> None:
        """A NOOP on every connection held between syncs; one that does not answer within the
        timeout is closed (the next sync opens a new one instead of finding it dead)."""
        held = [c for c in [self._client, *self._idle] if c is not None]
        for client in held:
            try:
                await client.run("NOOP")  # times out after the settings' timeout of silence
                continue
            except StoreError as exc:
                log.info("imap.held_connection_dropped", reason=str(exc))
            if client is self._client:
                self._client = None
            else:
                self._idle.remove(client)
                self._forget_selection(client)
            await client.close()

    def _let_go(self) -> list[ImapClient]:
        """Every connection held between syncs, no longer held; those begun ahead and not yet
        taken are stopped (their failures were nobody's: dropped)."""
        held = [c for c in [self._client, *self._idle] if c is not None]
        self._client, self._idle, self._selections, self._earlier = None, [], {}, {}
        warming, self._warming = self._warming, []
        for begun in warming:
            if not begun.done():
                begun.cancel()  # _new_client drops what it had opened
            elif not begun.cancelled() and begun.exception() is None:
                held.append(begun.result())
        return held

    async def close(self, hurry: bool = False) -> None:
        """Log out of every held connection, all at once: a dead one costs its LOGOUT wait
        once, not once per connection (``hurry``: none waits; on a 25 ms link that is a
        round trip off every one-shot sync)."""
        await asyncio.gather(*(c.close(hurry) for c in self._let_go()))

    async def drop(self) -> None:
        """Close every held connection at once, without LOGOUT (after a suspend they are
        presumed dead: waiting for their answers would only delay the next sync)."""
        for client in self._let_go():
            client.drop()


def _answered(responses: tuple[bytes, ...]) -> Done:
    """A command's successful end with ``responses`` (each as ``response_bytes`` gives it) as
    its untagged answers, read as the connection reads them."""
    reader = ResponseReader()
    try:
        raws = reader.feed(b"".join(responses))
        if not reader.idle:
            raise ProtocolError("an answer cut short")
    finally:
        reader.close()
    return Done("OK", "", b"", "", [untagged(raw) for raw in raws])
