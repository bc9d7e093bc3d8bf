"""One Maildir folder as a ``Mailbox``.

Ids are the unique part of the file name (before ``:2,``), stable across
flag renames and new/ -> cur/ moves; a file's info letters are its flags in
new/ as in cur/.  What a listing holds is read in listing.py (what is no
message file is skipped with a warning, once per run); distinct files that
share an id are given ids of their own (duplicates.py).  We keep an index id -> (subdir, file
name) from the last scan (not of what ``append`` delivered since: a first sync's whole
mailbox would stay in memory to its end; a delivered message is found by a scan when it is
asked for); another mail client may rename or delete files at
any moment, so every file operation tolerates FileNotFoundError for the
message concerned: rescan and find it by its id under its new name (a few
times per message), and only when a fresh scan no longer lists it is it
skipped as vanished.  A vanished message is never an error for the mailbox; a
vanished *folder* is (an empty listing must never be mistaken for "everything
was deleted").

A scan must not miss a message another client renames while we list the
directory (readdir may then return neither name, and a recorded message
missing from a listing reads as deleted, which the sync would carry to the
server).  So a listing counts only if new/ and cur/ did not change while it
ran; otherwise it is repeated, and every pass's messages are kept (a file
deleted meanwhile then looks present for this run, which is harmless: it is
skipped as vanished, and its deletion is seen next run).

Sizes in ``snapshot`` come from ``,S=<size>`` in the file name (our own
files and Dovecot's carry it); only a file whose name has none is stat-ed (a
stat per file would make a 10k-message scan cost 10k syscalls).  They are LF
sizes: the exact CRLF size is what ``identify`` / ``fetch`` give.

``status`` lists nothing: it gives the folder's stamp (stamp.py), with which the
engine skips a folder that has not changed since its last complete sync.

All disk work runs in worker threads, one ``asyncio.to_thread`` per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, TypeVar

import structlog

from mailtide.core.identity import BODY_PREFIX, header_section, identity_of
from mailtide.core.model import Flags, Identity, Listing, MessageInfo
from mailtide.stores.base import (
    BODY_PIECE,
    Body,
    BytesBody,
    Delta,
    Fetched,
    FlagChange,
    Incoming,
    Link,
    MailboxError,
    MailboxStatus,
    Moved,
    Unwritten,
    WrittenStamp,
)
from mailtide.stores.maildir import links as links_mod
from mailtide.stores.maildir.crlf import CrlfToLf, LfToCrlf, bare_lf_count
from mailtide.stores.maildir.delivery import (
    DEFAULT_DURABILITY,
    Delivery,
    Durability,
    Parts,
    Staged,
)
from mailtide.stores.maildir.duplicates import give_fresh_names
from mailtide.stores.maildir.durability import fsync_dirs
from mailtide.stores.maildir.filenames import (
    INFO,
    full_name,
    new_unique,
    split_name,
)
from mailtide.stores.maildir.flags import (
    Keywords,
    ensure_keywords,
    flags_of_letters,
    is_keyword,
    letters_of_flags,
    read_keywords,
    unnamed_letters,
    unstorable,
)
from mailtide.stores.maildir.folder_id import folder_id
from mailtide.stores.maildir.journal import FileChange, WriteJournal
from mailtide.stores.maildir.leftovers import clear_tmp
from mailtide.stores.maildir.listing import (
    Clash,
    Entry,
    ListedSizes,
    find_by_names,
    find_files,
    list_folder,
    open_regular,
)
from mailtide.stores.maildir.read_ahead import ReadAhead, dir_times, still
from mailtide.stores.maildir.stamp import folder_stamp
from mailtide.stores.maildir.witness import Witness

log = structlog.get_logger("mailtide.stores.maildir")

T = TypeVar("T")
SMALL_BODY = 256 << 10  # bodies up to this size are gathered in memory and written in batches
BATCH_BYTES = 8 << 20  # ... at most this much of them at a time
META_BATCH = 64  # messages per worker-thread call in fetch


class DeliveryError(MailboxError):
    """An append failed part-way.

    ``delivered`` holds the ids of the messages that were stored durably, in
    order: ``delivered[i]`` belongs to ``messages[i]``; the rest were not
    stored (no file of theirs is left in tmp/, cur/ or new/).
    """

    def __init__(self, message: str, delivered: list[str | None]) -> None:
        super().__init__(message)
        self.delivered = delivered


SCAN_PASSES = 5  # listings at most per scan while another client keeps changing the folder
FILE_TRIES = 4  # times a message is looked for under a new name when its file moved


@dataclass(slots=True)
class _Attempt:
    """One batch operation: the scan generation it started from.  A message missing from the
    index is rescanned for only if no scan ran since (then a fresh scan did not list it)."""

    generation: int


class MaildirMailbox:
    """A Maildir folder: ``path`` holds cur/, new/ and tmp/."""

    def __init__(
        self,
        name: str,
        path: str,
        durability: Durability = DEFAULT_DURABILITY,
        read_only: bool = False,
        journal: WriteJournal | None = None,
        locate: Callable[[str], str] | None = None,
        on_status: Callable[[str, MailboxStatus], None] | None = None,
        read_ahead: ReadAhead | None = None,
        on_write: Callable[[str], None] | None = None,
    ) -> None:
        """``locate``: the directory of another folder of the tree, by canonical name.
        ``on_status``: told of each status read (the folder's directory, the status).
        ``read_ahead``: where a listing of the folder may have been made already.
        ``on_write``: told of the folder's directory before this open's first write (from
        a worker thread)."""
        self.name = name
        self._read_ahead = read_ahead
        self._locate = locate
        self._on_status = on_status
        self._on_write = on_write
        self.journal = journal or WriteJournal(keep=False)
        # this open's own writes (not a duplicate's new name, made while listing), told to
        # the witness of its writes
        self._own = self.journal.observed(self._saw_own)
        self._witness: Witness | None = None
        self._start: str | None = None  # the stamp the caller's plan was made from
        self._wrote = False  # a write began: the witness was started, or could not be
        self.read_only = read_only  # a dry run: every write refused, no id file made
        self.path = path
        self.durability: Durability = durability
        self._index: dict[str, Entry] = {}
        self._sizes: dict[str, int] = {}  # id -> file size, for names without ,S= (last scan)
        self._generation = 0  # scans so far (see _Attempt)
        self._twins: dict[str, list[Entry]] = {}  # further names of indexed files
        self._warned: set[str] = set()  # paths skipped with a warning this run (once each)
        self._orphans: frozenset[str] = frozenset()  # keyword letters the table does not name
        self._snapshotted = False  # whether _orphans is known: a snapshot ran this run
        self._status_seen: MailboxStatus | None = None  # what the last status gave

    # -- scanning ------------------------------------------------------------------------

    def _scan(self) -> dict[str, Entry]:
        """List new/ then cur/ until a listing ran while neither changed (see the module
        docstring); every pass's messages are kept, the latest name of each winning."""
        index: dict[str, Entry] = {}
        sizes: dict[str, int] = {}
        ahead = self._read_ahead.take(self.path) if self._read_ahead is not None else None
        if ahead is not None:  # quiet when it was made, and the folder unchanged since
            listing, quiet = ahead, True
            index.update(listing.index)
            sizes.update(listing.sizes)
        for _ in range(0 if ahead is not None else SCAN_PASSES):
            before = self._stamps()
            listing = list_folder(self.path)
            after = self._stamps()
            index.update(listing.index)
            sizes.update(listing.sizes)
            if quiet := still(before, after):
                break
        for path, why in listing.skipped:
            self._warn_once(path, "maildir.file_skipped", reason=why)
        twins = listing.twins
        if listing.clashes:
            separated = self._separate(listing.clashes, quiet)
            index.update((msg_id, names[0]) for msg_id, names in separated.items())
            twins |= {msg_id: names[1:] for msg_id, names in separated.items() if names[1:]}
        self._index = index
        self._sizes = sizes
        self._twins = twins
        self._generation += 1
        return index

    def _separate(self, clashes: list[Clash], quiet: bool) -> dict[str, list[Entry]]:
        """Give the files that share an id with another file ids of their own (see
        duplicates.py): only after a quiet listing, where all their names existed at once, and
        never in a dry run.  Until then they are left out, with a warning."""
        if quiet and not self.read_only:
            return give_fresh_names(self.path, clashes, self.journal, self.name)
        for clash in clashes:
            for sub, filename in clash.entries:
                self._warn_once(
                    os.path.join(self.path, sub, filename),
                    "maildir.duplicate_name",
                    reason=f"another file in this folder has the same unique name {clash.id}; "
                    "left out of this sync, a later one gives it a name of its own",
                )
        return {}

    def _warn_once(self, path: str, event: str, **details: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            log.warning(event, path=path, **details)

    def _stamps(self) -> tuple[float, ...]:
        """The modification and change times of new/ and cur/ (a rename in or out sets both)."""
        try:
            return dir_times(self.path)
        except OSError as err:
            raise MailboxError(f"Maildir folder {self.path} cannot be read: {err}") from err

    def _attempt(
        self, ids: Iterable[str] = (), expected: Mapping[str, Sequence[Entry]] | None = None
    ) -> _Attempt:
        """A batch operation on the messages ``ids`` begins.  In a folder not listed since
        this open (its plan was made by an earlier open in the run, or from its stamp), their
        files are looked up by name first, not by a listing of the whole folder: under the
        names ``expected`` of them (``find_by_names``), then by one readdir (``find_files``);
        a message not found so is looked for by a full scan, as always (``_with_file``)."""
        if not self._generation:
            wanted = {i for i in ids if i not in self._index}
            if wanted and expected:
                found_by_name = find_by_names(
                    self.path, {i: expected[i] for i in wanted if i in expected}
                )
                self._index.update(found_by_name)
                wanted -= found_by_name.keys()
            if wanted:
                found = find_files(self.path, wanted)
                if found is None:
                    self._scan()  # an id with two names: the listing sorts them out
                else:
                    self._index.update(found)
        return _Attempt(self._generation)

    def _with_file(self, msg_id: str, op: Callable[[Entry], T], attempt: _Attempt) -> T | None:
        """Run ``op`` on the message's current file; None when the message vanished (a scan
        since ``attempt`` began does not list it) or kept moving away (still in the index)."""
        for _ in range(FILE_TRIES):
            entry = self._index.get(msg_id)
            if entry is None:
                if self._generation != attempt.generation:
                    break  # a scan since this operation began does not list it: gone
                self._scan()
                continue
            try:
                return op(entry)
            except FileNotFoundError:
                self._scan()  # renamed (flags, new/ -> cur/) or deleted: look again by its id
        log.info("maildir.message_vanished", folder=self.path, id=msg_id)
        self._spoil()
        return None

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run disk work in a worker thread; an OS error becomes this mailbox's MailboxError."""
        try:
            return await asyncio.to_thread(fn, *args)
        except MailboxError:
            raise
        except OSError as err:
            raise MailboxError(f"Maildir folder {self.name} ({self.path}): {err}") from err

    def _letters(self, entry: Entry) -> str:
        """The info letters of a file, in cur/ or in new/ (some MDAs and clients write
        ``new/X:2,S``: its flags count all the same)."""
        return split_name(entry[1])[1] or ""

    def _writable(self) -> None:
        if self.read_only:
            raise MailboxError(f"Maildir folder {self.path} is open read-only (dry run)")

    def _file(self, entry: Entry) -> str:
        return os.path.join(self.path, *entry)

    # -- Mailbox protocol ----------------------------------------------------------------

    @property
    def unselected(self) -> bool:
        return False  # a folder is read as it is: nothing to select

    async def status(self) -> MailboxStatus:
        return await self._run(self._status)

    def _status(self) -> MailboxStatus:
        if not os.path.isdir(self.path):
            raise MailboxError(f"Maildir folder {self.path} has vanished")
        if not self.read_only and os.statvfs(self.path).f_flag & os.ST_RDONLY:
            # Refused before either side changes: a file system that turned read-only (as ext4
            # does after an I/O error) may be failing, so what it lists must not carry
            # deletions or flag changes to the server, and half a pair's work is no help.
            raise MailboxError(
                f"Maildir folder {self.name} ({self.path}) is on a read-only file system: "
                "not synced in either direction until it is writable again"
            )
        if not self.read_only:
            self._clear_tmp()
        validity = folder_id(self.path, create=not self.read_only)
        # No listing here: the stamp says whether one is needed (the count is left unknown).
        self._status_seen = MailboxStatus(validity=validity, stamp=folder_stamp(self.path))
        if self._on_status is not None:
            self._on_status(self.path, self._status_seen)
        return self._status_seen

    def _clear_tmp(self) -> None:
        """At the start of each sync of this folder, where its tmp/ is about to be written (a
        folder not synced is not touched): see leftovers.py."""
        cleared = clear_tmp(self.path)
        if cleared.total:
            log.info(
                "maildir.tmp_cleared",
                folder=self.path,
                removed=cleared.total,
                of_dead_runs=cleared.own,
                stale=cleared.stale,
            )

    async def snapshot(self) -> list[MessageInfo]:
        return (await self.listing()).messages()

    async def listing(self) -> Listing:
        return await self._run(self._listing)

    def _listing(self) -> Listing:
        """One scan, kept as names: each id's info letters are its flags' key (the flags of
        each distinct set of letters read once), its size read from the name when asked."""
        keywords = read_keywords(self.path)
        index = self._scan()
        # an indexed name is the id, or the id, ":2," and the letters (filenames.full_name)
        cut = len(INFO)
        keys = {msg_id: name[len(msg_id) + cut :] for msg_id, (_, name) in index.items()}
        flags: dict[str, Flags] = {}
        orphans: set[str] = set()
        for letters in set(keys.values()):
            flags[letters] = flags_of_letters(letters, keywords)
            orphans |= unnamed_letters(letters, keywords)
        if orphans and not self._orphans:
            log.warning(
                "maildir.keyword_letters_unnamed",
                folder=self.path,
                letters="".join(sorted(orphans)),
                detail="dovecot-keywords lost or damaged: this folder's keywords are left as "
                "they were on the other side, and these letters are not given out again",
            )
        self._orphans = frozenset(orphans)
        self._snapshotted = True
        return Listing(keys, flags, ListedSizes(keys, self._sizes))

    def _orphan_letters(self) -> frozenset[str]:
        """The keyword letters the files carry and the table does not name, the folder listed
        first if this open has not (taken as recorded by its stamp, or opened to carry out a
        plan made earlier in the run)."""
        if not self._snapshotted:
            self._listing()
        return self._orphans

    def _reserved(self, flags: Iterable[str]) -> frozenset[str]:
        """The letters a new keyword must not take (``_orphans``).  A folder not listed this
        run (the engine took it as recorded, by its stamp) is listed first, but only when
        ``flags`` hold a keyword the table has no letter for: else no letter is given out."""
        if not self._snapshotted:
            table = read_keywords(self.path)
            if any(is_keyword(f) and table.letter_of(f) is None for f in flags):
                self._listing()
        return self._orphans

    async def cannot_hold(self, flags: Flags) -> Flags:
        """Keywords beyond the table's 26; and, while files carry letters the table no longer
        names, every keyword (what those letters meant is unknown, so nothing read here can
        say a keyword was removed)."""
        table = read_keywords(self.path)
        keywords = frozenset(f for f in flags if is_keyword(f))
        # only keywords depend on the orphan letters: a folder not listed is listed for them
        if keywords and await self._run(self._orphan_letters):
            return keywords
        return unstorable(flags, table)

    async def changes_since(self, since: MailboxStatus) -> Delta | None:
        """Nothing, when the last ``status`` gave the validity and the stamp ``since`` holds:
        the folder lists as it did then (stamp.py).  Otherwise None: a file rename leaves no
        change counter to ask, so only a listing can tell."""
        now = self._status_seen
        if now is None or since.stamp is None:
            return None
        if (now.validity, now.stamp) != (since.validity, since.stamp):
            return None
        return Delta([])

    async def identify(self, ids: Sequence[str]) -> dict[str, Identity]:
        return await self._run(self._identify, list(ids))

    def _identify(self, ids: list[str]) -> dict[str, Identity]:
        attempt = self._attempt(ids)
        out: dict[str, Identity] = {}
        for msg_id in ids:
            found = self._with_file(msg_id, lambda e: read_identity(self._file(e)), attempt)
            if found is not None:
                out[msg_id] = found[0]
        return out

    async def fetch(
        self, ids: Sequence[str], budget: int | None = None
    ) -> AsyncGenerator[Fetched, None]:
        # ``budget`` does not apply: a batch holds small messages and the others' open files
        ids = list(ids)
        await self._run(self._attempt, ids)  # every file found at once, not once per batch
        for start in range(0, len(ids), META_BATCH):
            batch = await self._run(self._fetch_meta, ids[start : start + META_BATCH])
            for fetched in batch:
                yield fetched

    def _fetch_meta(self, ids: list[str]) -> list[Fetched]:
        """Each message's flags, date and identity, its file already opened: a message another
        client renames or deletes before its body is sent is still read whole (a small one is
        held in memory, a bigger one by its open file), instead of failing the copy."""
        attempt = self._attempt(ids)
        keywords = read_keywords(self.path)
        out: list[Fetched] = []
        for msg_id in ids:

            def meta(
                entry: Entry, msg_id: str = msg_id
            ) -> tuple[Entry, Identity, float, MaildirBody]:
                f, st = open_regular(self._file(entry))  # handed to the body
                try:
                    if st.st_size <= SMALL_BODY:
                        data = f.read()
                        f.close()
                        identity = identity_of_stream(io.BytesIO(data))
                        body = MaildirBody(self, msg_id, identity.size + identity.marks, data=data)
                    else:
                        identity = identity_of_stream(f)
                        body = MaildirBody(self, msg_id, identity.size + identity.marks, file=f)
                except BaseException:
                    f.close()
                    raise
                return entry, identity, st.st_mtime, body

            found = self._with_file(msg_id, meta, attempt)
            if found is None:
                continue
            entry, identity, mtime, body = found
            out.append(
                Fetched(
                    id=msg_id,
                    flags=flags_of_letters(self._letters(entry), keywords),
                    internaldate=datetime.fromtimestamp(mtime, tz=UTC),
                    identity=identity,
                    body=body,
                    origin=self._file(entry),
                )
            )
        return out

    def _open_again(self, msg_id: str) -> BinaryIO:
        def reopen(entry: Entry) -> BinaryIO:
            return open_regular(self._file(entry))[0]

        found = self._with_file(msg_id, reopen, self._attempt())
        if found is None:
            raise MailboxError(f"message {msg_id} vanished from {self.path} while being read")
        return found

    async def append(self, messages: Sequence[Incoming]) -> list[str | None]:
        """Deliver the messages; returns their ids in order, all durable.

        Raises ``DeliveryError`` (a ``MailboxError``) carrying the ids already
        delivered when one message fails (its body iterator raised, or the disk
        is full); the messages before it are delivered, it and the rest are not.
        """
        self._writable()
        if not messages:
            return []
        delivery = Delivery(self.path, self.durability, self._own, self.name)
        keywords = await self._run(self._prepare_delivery, delivery, messages)
        pending: list[tuple[Staged, Parts]] = []  # small bodies not yet written
        pending_bytes = 0
        try:
            for message in messages:
                staged = self._staged(delivery, message, keywords)
                parts = _held(message.body)
                if parts is not None:
                    staged.crlf = True  # converted by the worker as it writes
                else:
                    parts = await self._receive(delivery, staged, message, pending)
                if parts is None:  # streamed; the pending ones were written before it
                    pending_bytes = 0
                    continue
                pending.append((staged, parts))
                pending_bytes += sum(map(len, parts))
                if pending_bytes >= BATCH_BYTES:
                    # taken out of `pending` first: after a failure, what is left there is
                    # complete and unwritten (see _commit_after_failure)
                    batch, pending, pending_bytes = pending, [], 0
                    await _settled(delivery.write_whole, batch)
            batch, pending = pending, []
            stop = threading.Event()  # a cancellation while it writes: no commit
            ids = await _settled(_write_and_commit, delivery, batch, stop, on_cancel=stop.set)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            delivery.discard()
            raise
        except _CommitFailed as failed:
            ids_done: list[str | None] = list(delivery.delivered)
            raise DeliveryError(
                self._failed(len(ids_done), len(messages), failed.error), ids_done
            ) from failed.error
        except BaseException as err:
            done = await self._commit_after_failure(delivery, pending)
            raise DeliveryError(self._failed(len(done), len(messages), err), done) from err
        return list(ids)

    async def _receive(
        self,
        delivery: Delivery,
        staged: Staged,
        message: Incoming,
        pending: list[tuple[Staged, Parts]],
    ) -> Parts | None:
        """Read one body, converting to LF.

        A small body is returned whole, to be written with others in one worker
        call.  A body that grows past SMALL_BODY is streamed to its tmp/ file
        (after the pending small ones, so files are staged in message order) and
        None is returned.  Only one converted chunk of it is in memory at a time.
        """
        to_lf = CrlfToLf()
        parts: list[bytes] = []  # converted, not yet written
        size = 0  # bytes in parts
        stream: BinaryIO | None = None
        opening = False  # its tmp/ file may exist from here on
        try:
            async for chunk in message.body.chunks():
                data = to_lf.feed(chunk)
                parts.append(data)
                size += len(data)
                if stream is None and size > SMALL_BODY:
                    if pending:
                        batch = list(pending)
                        pending.clear()
                        await _settled(delivery.write_whole, batch)
                    opening = True
                    stream = await _settled(delivery.open, staged)
                if stream is not None and size >= BODY_PIECE:
                    # written in pieces of about BODY_PIECE, whatever size the source's chunks are
                    gathered, parts, size = b"".join(parts), [], 0
                    await _settled(delivery.write, staged, stream, gathered)
                    del gathered
            parts.append(to_lf.end())
            if stream is None:
                return parts
            await _settled(delivery.write, staged, stream, b"".join(parts))
            await _settled(delivery.finish, staged, stream)
            stream = None
            return None
        except BaseException:
            # Also without a stream: a cancellation that came while the worker was creating
            # the file leaves ``stream`` unset, the file made (its name is ours alone).
            if stream is not None or opening:
                delivery.abandon(staged, stream)
            raise

    def _prepare_delivery(self, delivery: Delivery, messages: Sequence[Incoming]) -> Keywords:
        if not os.path.isdir(self.path):
            raise MailboxError(f"Maildir folder {self.path} has vanished")
        self._arm()
        delivery.prepare()
        flags = {f for m in messages for f in m.flags}
        return ensure_keywords(self.path, flags, self._reserved(flags), self._saw_keywords)

    def _staged(self, delivery: Delivery, message: Incoming, keywords: Keywords) -> Staged:
        unique = new_unique(message.hint)
        letters = letters_of_flags(message.flags, keywords) or None
        mtime = None
        if message.internaldate is not None:
            date = message.internaldate
            if date.tzinfo is None:  # a naive INTERNALDATE is taken as UTC
                date = date.replace(tzinfo=UTC)
            mtime = date.timestamp()
        return Staged(unique, letters, mtime, delivery.tmp_path(unique))

    def _failed(self, done: int, wanted: int, err: BaseException) -> str:
        return (
            f"delivery to Maildir folder {self.name} ({self.path}) failed after {done} of "
            f"{wanted} messages: {err}"
        )

    async def _commit_after_failure(
        self, delivery: Delivery, pending: list[tuple[Staged, Parts]]
    ) -> list[str | None]:
        """Deliver what was complete before the failure; the partial message is already gone."""
        try:
            if pending:  # complete small messages still in memory
                await _settled(delivery.write_whole, pending)
        except OSError as err:  # (a full disk) what was staged before is still delivered
            log.error("maildir.write_failed", folder=self.path, error=str(err))
        try:
            await _settled(delivery.commit)  # removes from tmp/ whatever it does not deliver
        except OSError as err:
            log.error("maildir.commit_failed", folder=self.path, error=str(err))
        return list(delivery.delivered)

    async def set_flags(self, changes: Sequence[FlagChange]) -> None:
        """Rename each message into cur/ with its new info; vanished messages are skipped.

        A message still listed whose file kept moving away under another client's renames
        raises MailboxError (after the others are done): skipping it silently would let the
        caller record flags the file does not carry, and the next sync would take the
        difference for a change made here."""
        self._writable()
        if changes:
            await self._run(self._set_flags, list(changes))

    def _set_flags(self, changes: list[FlagChange]) -> None:
        self._arm()
        full: OSError | None = None
        added = {f for c in changes for f in c.add}
        reserved = self._reserved(added)
        try:
            keywords = ensure_keywords(self.path, added, reserved, self._saw_keywords)
        except OSError as err:
            # The keyword table cannot grow (a full disk): the table on disk is intact (it is
            # replaced by rename), and the changes that need no new letter are renames, which
            # take no space, so they still go; the others wait for the next sync.
            full = err
            keywords = read_keywords(self.path)
        attempt = self._attempt((c.id for c in changes), _names_of(changes, keywords))
        touched: set[str] = set()
        missed: list[str] = []
        waiting = 0
        for change in changes:
            if full is not None and any(
                is_keyword(f) and keywords.letter_of(f) is None for f in change.add
            ):
                waiting += 1
                continue

            def rename(entry: Entry, change: FlagChange = change) -> bool:
                sub, filename = entry
                letters = self._letters(entry)
                flags = (flags_of_letters(letters, keywords) | change.add) - change.remove
                new_letters = letters_of_flags(flags, keywords, keep=letters)
                if sub == "new" and not new_letters and split_name(filename)[1] is None:
                    return True  # still unflagged: leave it in new/ for the mail reader
                target = full_name(change.id, new_letters)
                if sub == "cur" and target == filename:
                    return True
                dest = os.path.join(self.path, "cur", target)
                if os.path.lexists(dest):
                    log.warning("maildir.rename_target_exists", folder=self.path, file=target)
                    self._spoil()  # the file keeps flags the records will not
                    return True
                source = self._file(entry)
                self._own.before(source, dest)
                os.rename(source, dest)
                self._own.done(FileChange("renamed", self.name, dest, source))
                self._index[change.id] = ("cur", target)
                touched.update((sub, "cur"))
                return True

            if not self._with_file(change.id, rename, attempt) and change.id in self._index:
                missed.append(change.id)
        fsync_dirs(os.path.join(self.path, d) for d in sorted(touched))
        if full is not None:
            raise MailboxError(
                f"Maildir folder {self.name} ({self.path}): the keyword table cannot grow: "
                f"{full}; {waiting} flag change(s) wait for the next sync"
            )
        if missed:
            raise MailboxError(
                f"Maildir folder {self.name} ({self.path}): {len(missed)} message(s) kept being "
                f"renamed by another client while their flags were set (first {missed[0]}); "
                "the next sync sets them"
            )

    async def delete(self, ids: Sequence[str]) -> set[str]:
        """Unlink exactly these messages; returns those gone now (vanished ones count as gone;
        one still listed whose file kept moving away under another client's renames does
        not, so the caller keeps its record and asks again next time)."""
        self._writable()
        if not ids:
            return set()
        return await self._run(self._delete, list(ids))

    def _delete(self, ids: list[str]) -> set[str]:
        self._arm()
        attempt = self._attempt(ids)
        touched: set[str] = set()
        gone: set[str] = set()
        for msg_id in ids:

            def unlink(entry: Entry, msg_id: str = msg_id) -> bool:
                self._unlink(self._file(entry))
                self._index.pop(msg_id, None)
                touched.add(entry[0])
                for twin in self._twins.pop(msg_id, []):  # a copy left in new/ by a crash
                    with contextlib.suppress(FileNotFoundError):
                        self._unlink(self._file(twin))
                        touched.add(twin[0])
                return True

            if self._with_file(msg_id, unlink, attempt) or msg_id not in self._index:
                gone.add(msg_id)
        fsync_dirs(os.path.join(self.path, d) for d in sorted(touched))
        return gone

    async def move(self, ids: Sequence[str], target: str) -> Moved:
        """``rename(2)`` each file into the target folder under its unique name (mutt and
        notmuch keep their index), its flags kept (keyword letters re-spelled by the target's
        keyword table); then the target's directories are made durable, then the source's."""
        self._writable()
        if not ids:
            return Moved({})
        if self._locate is None:
            raise MailboxError(f"Maildir folder {self.name}: no way to name another folder")
        dest = await self._run(self._locate, target)
        return Moved(await self._run(self._move, list(ids), dest, target))

    def _move(self, ids: list[str], dest: str, target: str) -> dict[str, str | None]:
        self._arm()
        if not os.path.isdir(os.path.join(dest, "cur")):
            raise MailboxError(f"Maildir folder {dest} has vanished")
        keywords = read_keywords(self.path)
        self._attempt(ids)  # their files found by name, in a folder not listed this open
        index = self._index
        if not all(i in index for i in ids):  # e.g. delivered by this open: not indexed
            index = self._scan()
        wanted = {
            f
            for i in ids
            if i in index
            for f in flags_of_letters(self._letters(index[i]), keywords)
        }
        table = ensure_keywords(dest, wanted)
        taken = set(list_folder(dest).index)  # unique names the target holds already
        attempt = self._attempt()
        touched: set[str] = set()
        moved: dict[str, str | None] = {}
        for msg_id in ids:

            def rename(entry: Entry, msg_id: str = msg_id) -> bool:
                sub, filename = entry
                letters = self._letters(entry)
                flags = flags_of_letters(letters, keywords)
                # letters we do not understand survive, but not another table's keyword letters
                keep = "".join(c for c in letters if not "a" <= c <= "z")
                new_letters = letters_of_flags(flags, table, keep=keep)
                if sub == "new" and not new_letters and split_name(filename)[1] is None:
                    to = os.path.join(dest, "new", filename)
                else:
                    to = os.path.join(dest, "cur", full_name(msg_id, new_letters))
                if msg_id in taken or os.path.lexists(to):  # another file of that name
                    log.warning("maildir.move_target_exists", folder=dest, file=to)
                    self._spoil()  # it stays here, though the records will not have it
                    return False
                source = self._file(entry)
                self._own.before(source, to)
                os.rename(source, to)
                self._own.done(FileChange("moved", target, to, source))
                self._index.pop(msg_id, None)
                touched.update((os.path.dirname(to), os.path.dirname(source)))
                # other names of the same file (a crash between new/ and cur/): left here they
                # would be the message again
                for twin in self._twins.pop(msg_id, []):
                    with contextlib.suppress(FileNotFoundError):
                        self._unlink(self._file(twin))
                        touched.add(os.path.join(self.path, twin[0]))
                moved[msg_id] = msg_id
                return True

            self._with_file(msg_id, rename, attempt)
        # the new names durable before the old ones are known gone
        arrived = {os.path.join(dest, "cur"), os.path.join(dest, "new")}
        fsync_dirs(sorted(touched & arrived))
        fsync_dirs(sorted(touched - arrived))
        return moved

    async def link(self, links: Sequence[Link]) -> list[str | None]:
        """Give each message a name here that is a hard link of a file of another folder of
        the tree (links.py): the first of its ``sources`` that exists and whose content identity
        is the link's (a file changed since is never linked).  Returns each new id in order,
        None where no source fits (the caller copies that message instead); the names are
        durable when this returns."""
        self._writable()
        if not links:
            return []
        if self._locate is None:
            raise MailboxError(f"Maildir folder {self.name}: no way to name another folder")
        return await self._run(self._link, list(links), self._locate)

    def _link(self, links: list[Link], locate: Callable[[str], str]) -> list[str | None]:
        self._arm()
        if not os.path.isdir(os.path.join(self.path, "cur")):
            raise MailboxError(f"Maildir folder {self.path} has vanished")
        wanted = {f for k in links for f in k.flags}
        keywords = ensure_keywords(self.path, wanted, self._reserved(wanted), self._saw_keywords)
        seen: links_mod.Listings = {}
        out: list[str | None] = []
        touched: list[str] = []
        for link in links:

            def fits(path: str, link: Link = link) -> bool:
                return read_identity(path)[0] == link.identity

            source = links_mod.source_path(link.sources, locate, fits, seen)
            if source is None:
                out.append(None)
                continue
            try:
                msg_id, entry = links_mod.make_link(
                    self.path, self.name, source, link, keywords, self._own
                )
            except OSError as err:  # another file system (EXDEV), too many links (EMLINK)
                log.warning("maildir.link_failed", folder=self.path, source=source, error=str(err))
                out.append(None)
                continue
            self._index[msg_id] = entry
            out.append(msg_id)
            touched.append(os.path.join(self.path, entry[0]))
        links_mod.make_durable(touched)
        return out

    async def holding(self, files: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of ``files`` ((canonical folder name, id) anywhere in the tree) that exist; a
        folder that cannot be listed counts as holding all of its files."""
        if not files:
            return set()
        if self._locate is None:
            raise MailboxError(f"Maildir folder {self.name}: no way to name another folder")
        return await self._run(links_mod.held, list(files), self._locate)

    def _unlink(self, path: str) -> None:
        self._own.before(path)
        os.unlink(path)
        self._own.done(FileChange("removed", self.name, path))

    # -- the stamp after this open's writes (witness.py) ---------------------------------

    def _arm(self) -> None:
        """Before this open's first write (in its worker thread): watch the folder, when it
        is still as the last status found it."""
        if self._wrote:
            return
        self._wrote = True
        if self._on_write is not None:
            self._on_write(self.path)
        self._witness = Witness.start(self.path, self._start)

    def _saw_own(self, change: FileChange) -> None:
        if self._witness is None:
            return
        if change.old_path is not None:
            self._witness.own(change.old_path, arrived=False)
        self._witness.own(change.path, arrived=change.kind != "removed")

    def _saw_keywords(self, path: str) -> None:
        if self._witness is not None:
            self._witness.own(path, arrived=True)

    def _spoil(self) -> None:
        if self._witness is not None:
            self._witness.spoil()

    def expect(self, since: MailboxStatus | None) -> None:
        """Nothing to ask ahead: a Maildir's status and changes cost no round trip."""

    def begin_writes(self, status: MailboxStatus) -> None:
        """The writes from here on are weighed against ``status``'s stamp (witness.py)."""
        self._start = status.stamp
        self._wrote = False

    def written(self) -> WrittenStamp | None:
        """What may prove, once the writes since ``begin_writes`` are done, that the folder
        lists as the caller's records now say: that stamp when nothing was written, else the
        ``Witness`` of the writes (handed over: the caller closes it).  None when nothing can
        (no stamp to begin from, the folder changed before the first write, no inotify)."""
        witness, self._witness = self._witness, None
        if self._start is None or self.read_only:
            if witness is not None:
                witness.close()
            return None
        if not self._wrote:
            return Unwritten(self._start)
        return witness

    def after_writes(self) -> None:
        """Nothing: a folder's proof is its stamp (``written``)."""
        return None

    async def close(self) -> None:
        self._index = {}
        witness, self._witness = self._witness, None
        if witness is not None:
            witness.close()


def _names_of(changes: Iterable[FlagChange], keywords: Keywords) -> dict[str, list[Entry]]:
    """The names each message's file has if it carries the flags its change says it has
    (``FlagChange.was``): the info letters in order, in cur/ or (no letters) in new/."""
    out: dict[str, list[Entry]] = {}
    for change in changes:
        if change.was is None:
            continue
        letters = letters_of_flags(change.was, keywords)
        named = [("cur", full_name(change.id, letters)), ("new", full_name(change.id, letters))]
        if not letters:
            named.insert(0, ("new", change.id))
        out[change.id] = named
    return out


def _held(body: Body) -> Parts | None:
    """The body as one part in CRLF form when it is already in memory (a server's small
    message), without a copy; None when it has to be read."""
    if not isinstance(body, BytesBody):
        return None
    data = body.data
    return [bytes(data) if isinstance(data, memoryview) else data]


class _CommitFailed(Exception):
    """The messages were written, their commit failed (``error``)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_and_commit(
    delivery: Delivery, batch: list[tuple[Staged, Parts]], stop: threading.Event
) -> list[str]:
    """The last messages written, then all of them committed (one trip off the loop for
    both), unless ``stop`` was set meanwhile (the append was cancelled: its caller discards
    them).  A failure to write is raised as it is (the staged messages are then committed
    as after any failure), one to commit as ``_CommitFailed``."""
    delivery.write_whole(batch)
    if stop.is_set():
        return []
    try:
        return delivery.commit()
    except OSError as err:
        raise _CommitFailed(err) from err


async def _settled(
    fn: Callable[..., T], *args: object, on_cancel: Callable[[], object] | None = None
) -> T:
    """``asyncio.to_thread``, but a cancellation waits for the thread's step to end (after
    calling ``on_cancel``, which may cut that step short).

    Otherwise a cancelled append would clean tmp/ while the worker is still
    creating a file there, and leave that file behind.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if on_cancel is not None:
            on_cancel()
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: the cancellation is what the caller sees
        raise


class MaildirBody:
    """A message file read back in CRLF form: held in memory (``data``, a small message) or
    read from its file opened when it was listed (``file``), in chunks of about 1 MiB.  The
    file is closed once read to the end; a second reading opens the message again by its id
    (and fails with MailboxError if it is gone by then)."""

    __slots__ = ("_data", "_file", "crlf_size", "id", "mailbox")

    def __init__(
        self,
        mailbox: MaildirMailbox,
        id: str,
        crlf_size: int,
        data: bytes | None = None,
        file: BinaryIO | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.id = id
        self.crlf_size = crlf_size
        self._data = data
        self._file = file

    @property
    def size(self) -> int:
        return self.crlf_size

    async def chunks(self) -> AsyncIterator[bytes]:
        to_crlf = LfToCrlf()
        if self._data is not None:
            view = memoryview(self._data)
            for start in range(0, len(view), BODY_PIECE):
                yield to_crlf.feed(bytes(view[start : start + BODY_PIECE]))
            return
        f = self._file
        if f is None or f.closed:
            f = await self.mailbox._run(self.mailbox._open_again, self.id)
        try:
            await asyncio.to_thread(f.seek, 0)
            while data := await asyncio.to_thread(f.read, BODY_PIECE):
                yield to_crlf.feed(data)
        finally:
            f.close()


def read_identity(path: str) -> tuple[Identity, float]:
    """The content identity of a message file (one streaming pass) and its mtime."""
    f, st = open_regular(path)
    with f:
        return identity_of_stream(f), st.st_mtime


def identity_of_stream(f: BinaryIO | io.BytesIO) -> Identity:
    """The content identity of a message read from ``f`` to its end (LF or CRLF form).

    The header section is gathered until the first empty line; the CRLF size
    is the file length plus the LFs not preceded by CR.  A file without an
    empty line is all header (as an IMAP server would say), so only then is
    the whole file held.
    """
    header = bytearray()
    found: bytes | None = None
    body = bytearray()  # the body's first BODY_PREFIX bytes (LF form is never longer than CRLF)
    size = extra = 0
    after_cr = False
    while data := f.read(BODY_PIECE):
        size += len(data)
        extra += bare_lf_count(data, after_cr)
        after_cr = data.endswith(b"\r")
        if found is None:
            start = max(0, len(header) - 3)
            header += data
            if header.find(b"\n\n", start) >= 0 or header.find(b"\r\n\r\n", start) >= 0:
                found = header_section(header)
                body += header[len(found) : len(found) + BODY_PREFIX]
                header = bytearray()
        elif len(body) < BODY_PREFIX:
            body += data[: BODY_PREFIX - len(body)]
    # LF -> CRLF is local (an LF's fate depends only on the byte before it), so converting
    # the first N bytes gives exactly the start of the converted whole.
    prefix = LfToCrlf().feed(bytes(body))
    head = found if found is not None else bytes(header)
    return identity_of(head, size + extra, prefix)
