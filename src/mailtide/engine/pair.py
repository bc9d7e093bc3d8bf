"""Sync one mailbox pair: snapshot both sides, reconcile, carry out the plan.

The only place that joins stores, state and core for a mailbox.  Order of work:
void ids (validity changed) -> forget -> flag edits and new pairs -> deletes
-> copies.  Every copy's intent (a half record) is committed before the copy;
every batch of results is committed after it.  Each commit and each finished
side effect is one ``Steps.done``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import structlog

from mailtide.core.model import (
    SIDES,
    TRASH_SPECIAL_USE,
    Flags,
    Listing,
    MessageInfo,
    PendingFlags,
    Record,
    Side,
    pair_ids,
)
from mailtide.core.moves import Move, without_moves
from mailtide.core.reconcile import (
    Copy,
    NeedIdentities,
    Plan,
    SideChanges,
    changed_view,
    listing_changes,
    mass_deletes,
    reconcile,
    restore_deleted,
    settle_pending,
)
from mailtide.engine.gmail_labels import LabelLinks
from mailtide.engine.steps import Steps
from mailtide.state.db import Cursor, MailboxState, flags_text
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import (
    Delta,
    Fetched,
    FlagChange,
    Incoming,
    Mailbox,
    MailboxError,
    MailboxStatus,
    MessageRefused,
    Unwritten,
    WrittenStamp,
)

log = structlog.get_logger(__name__)

SIDE_NAMES = ("remote", "local")  # by Side: in an account, FAR is the remote repository


# Bodies a sync holds at once while copying, its mailboxes together.  8 MiB: the 10k initial
# sync peaks at 55 MB RSS instead of 63, with no measurable cost in time (a syncfs per
# about 100 messages instead of 200).
BATCH_BYTES = 8 << 20
# Messages a copy asks its source for at once (see ``PairSync._copy``)
COPY_CHUNK = 2000
# Ids a server's VANISHED may name for the records to be looked up one by one; a larger
# expunge (a mailbox emptied) reconciles every record instead.
MAX_VANISHED_LOOKUPS = 20_000


# What a complete sync records of the sides that matched the records: their listings' digests
# and their stamps, each by Side (``Prepared.digests`` and ``stamps``); ``NO_MARKS``: none
Marks = tuple[tuple[str | None, str | None], tuple[str | None, str | None]]
NO_MARKS: Marks = ((None, None), (None, None))


@dataclass(frozen=True, slots=True)
class Options:
    """``mode``: "quick" asks a side that can tell (IMAP with QRESYNC) only for what changed
    since the last complete sync of the pair; "full" lists every message on both sides."""

    mode: Literal["full", "quick"] = "quick"
    dry_run: bool = False
    allow_mass_delete: bool = False
    restore_deleted: bool = False  # copy back what one side deleted instead of deleting it
    mass_delete_share: float = 0.5
    mass_delete_floor: int = 10
    # Bodies held at once while copying, by all the pairs synced at once (``PairSync.budget``)
    batch_bytes: int = BATCH_BYTES
    batch_count: int = 1000  # messages per durable batch
    # By Side: the folder a deletion on that side moves the message to instead (None: expunge)
    trash: tuple[str | None, str | None] = (None, None)
    # mbsync's TrashNewOnly: only a message never recorded on both sides goes to the trash
    # (``never_synced``); one synced before is expunged.
    trash_new_only: bool = False
    # A dry run's moves across the account (engine/moves.py): reported as moves, not as a
    # deletion and a copy, so the report and the mass-delete guard are the real run's.
    dry_moves: tuple[Move, ...] = ()
    # Mailbox pairs synced at once, each on a connection of its own (engine/account.py)
    parallel: int = 1
    # Gmail's labels mode (engine/gmail_labels.py): one file per message, a hard link per label
    gmail_labels: bool = False
    # Seconds the run may wait at its end for the stamps of the sides it wrote to to settle
    # (engine/restamp.py): on a local file system with sub-second times a stamp settles
    # within 0.2 s of the last write (stamp.py), so the next run need not list the folder;
    # on one of whole seconds it would take up to 1.2 s, which a run does not wait: that
    # folder is listed next time.
    stamp_wait: float = 0.2


@dataclass(slots=True)
class PairReport:
    """What happened to one mailbox pair (counts indexed by Side: the side changed)."""

    name: str
    copied: list[int] = field(default_factory=lambda: [0, 0])
    flagged: list[int] = field(default_factory=lambda: [0, 0])
    deleted: list[int] = field(default_factory=lambda: [0, 0])
    paired: int = 0
    error: str | None = None
    refused: list[str] = field(default_factory=list)  # messages a store would not take
    # Of ``copied``, those carried without a body in Gmail's labels mode (a hard link on the
    # local side, a label added on the server), by Side: the side changed.
    linked: list[int] = field(default_factory=lambda: [0, 0])
    # Left as the next run, given the same statuses, finds it unchanged from them alone: found
    # so (``Prepared.quiet``), or synced with nothing to carry (the quiet check, quiet/)
    quiet: bool = False
    # Left so once the sides it wrote are stamped (``PairSync.written``, engine/restamp.py;
    # the stores' ``seen`` says whether they were): quiet, or its plan carried out whole with
    # every other side's cursor telling.
    provable: bool = False

    def summary(self) -> dict[str, int]:
        return {
            "new_remote": self.copied[Side.FAR],
            "new_local": self.copied[Side.NEAR],
            "flags_remote": self.flagged[Side.FAR],
            "flags_local": self.flagged[Side.NEAR],
            "deleted_remote": self.deleted[Side.FAR],
            "deleted_local": self.deleted[Side.NEAR],
            "paired": self.paired,
        }


@dataclass(frozen=True, slots=True)
class Prepared:
    """A pair planned, not yet carried out.  ``unchanged``: both sides are provably as the
    last complete sync left them, so there is nothing to do (the plan is empty)."""

    mailbox: MailboxState
    statuses: Sequence[MailboxStatus | None]
    void: bool  # a side's validity changed
    plan: Plan
    # Messages each side holds: what the mass-delete guard weighs (0 on a side where the plan
    # deletes no more than the guard's floor: not counted, as the guard does not weigh it)
    held: tuple[int, int]
    # By Side: the digest of the side's full listing when it was listed in full and the plan
    # is empty (what lets the next quick sync skip the pair); else None.  With it, the stamp
    # the side had before that listing (a Maildir's: what lets the next run not list it).
    digests: tuple[str | None, str | None] = (None, None)
    stamps: tuple[str | None, str | None] = (None, None)
    unchanged: bool = False
    # Unchanged, and each side's cursor (restamped where it was listed) lets a later run
    # given the same statuses decide the same from them alone (quiet/).
    quiet: bool = False


def _texts() -> Callable[[Flags], str]:
    """``flags_text``, once per distinct set of flags (a listing shares a few among all)."""
    cache: dict[Flags, str] = {}

    def text(flags: Flags) -> str:
        found = cache.get(flags)
        if found is None:
            found = cache[flags] = flags_text(flags)
        return found

    return text


class MassDeleteRefused(MailboxError):
    pass


def never_synced(plan: Plan) -> set[Record]:
    """The records of ``plan``'s deletions whose message no sync recorded on both sides: a
    half record (a copy whose result was never recorded) that this plan completes by content
    identity, or one still half.  What mbsync calls "not yet propagated"."""
    completed = {u.new for u in plan.updates if u.old is not None and not all(u.old.ids)}
    return {d.record for d in plan.deletes if d.record in completed or not all(d.record.ids)}


class PairSync:
    """One run over one mailbox pair.  ``boxes`` is indexed by Side; None = does not exist yet
    (dry run only), or not needed (a ``planned`` plan that is empty)."""

    def __init__(
        self,
        name: str,
        boxes: tuple[Mailbox | None, Mailbox | None],
        state: OffLoopState,
        steps: Steps,
        options: Options,
        planned: Prepared | None = None,
        labels: LabelLinks | None = None,
        at_once: Callable[[], int] | None = None,
    ) -> None:
        """``planned``: this pair's ``prepare()`` made earlier in this run (by the move pass)
        and still true; ``run`` carries it out instead of planning again.  ``labels``: Gmail's
        labels mode for this pair (engine/gmail_labels.py).  ``at_once``: how many pairs
        sync at once now, sharing ``options.batch_bytes`` (None: this one alone)."""
        self.name = name
        self.planned = planned
        self.boxes = boxes
        self.state = state
        self.steps = steps
        self.options = options
        self.report = PairReport(name)
        self.log = log.bind(mailbox=name)
        # What each side said this run, asked at most once: its delta since the last complete
        # sync (quick mode, where it can tell) and its full listing.
        self._deltas: dict[Side, Delta | None] = {}
        self._listings: dict[Side, Listing] = {}
        self.labels = labels
        self._at_once = at_once
        # By side, once the plan is carried out whole: what may prove the side lists as the
        # records say (engine/restamp.py), for the account to record at the run's end
        self.written: list[tuple[Side, WrittenStamp]] = []
        # Records that side effects already carried out leave, (old, new) in order, not yet
        # written: they go with the run's next write (an intent, the cursors) in one
        # transaction instead of a commit each.  A run killed first loses nothing: its
        # intents and its flag journal lead the next run to the same records.
        self._results: list[tuple[list[Record], list[Record]]] = []
        # The cursors that say "this plan is under way" (validities only, no progress
        # markers), not yet written: they go with the run's first write (the flag journal, an
        # intent) in its transaction, or alone before the first side effect (``_clear``).
        self._clearing: tuple[Cursor, Cursor] | None = None

    def box(self, side: Side) -> Mailbox:
        box = self.boxes[side]
        assert box is not None, "only a dry run syncs a mailbox missing on one side"
        return box

    async def prepare(self) -> Prepared:
        """Everything up to the plan (with the durable steps planning takes: void ids, settled
        flag updates); ``Prepared.unchanged`` when both sides are provably unchanged."""
        # Read, not created, before the statuses: a side whose status fails leaves no state.
        mailbox = await self.state.mailbox(self.name, create=False)
        for side, box in enumerate(self.boxes):
            if box is not None:
                box.expect(self._since(mailbox.cursors[side]))  # asked with its status
        statuses = [await b.status() if b else None for b in self.boxes]
        if not mailbox.id and not self.options.dry_run:
            mailbox = await self.state.mailbox(self.name)
        void = [
            side
            for side in SIDES
            if (status := statuses[side]) is not None
            and mailbox.cursors[side].validity not in (None, status.validity)
        ]
        if not void and (quiet := await self._unchanged(mailbox, statuses)) is not None:
            self.log.debug("mailbox.unchanged")
            return Prepared(mailbox, statuses, False, Plan(), (0, 0), unchanged=True, quiet=quiet)
        changes = None if void else await self._changes(mailbox)
        if changes is not None:
            records, snapshots = await self._changed_only(mailbox, changes)
        else:
            records, snapshots = await self._everything(mailbox, void)
        records = await self._settle(mailbox, records, snapshots)
        plan = await self._plan(records, snapshots)
        held = await self._held(mailbox, plan, records, snapshots, changes)
        marks = [self._marks(plan, mailbox, statuses, side) for side in SIDES]
        digests = (marks[0][0], marks[1][0])
        stamps = (marks[0][1], marks[1][1])
        return Prepared(mailbox, statuses, bool(void), plan, held, digests, stamps)

    async def _everything(
        self, mailbox: MailboxState, void: list[Side]
    ) -> tuple[list[Record], list[list[MessageInfo]]]:
        """Every record, and every message of each side (from the records and the side's delta
        where it has one): what ``--full``, a changed validity and a first sync reconcile."""
        records = await self.state.records(mailbox)
        if void:
            records = await self._void_ids(mailbox, records, void)
            # The records changed: no side's stamp vouches for them now, so every side is listed.
            cursors = [dataclasses.replace(c, stamp=None) for c in mailbox.cursors]
            mailbox = dataclasses.replace(mailbox, cursors=(cursors[0], cursors[1]))
        recorded = frozenset().union(*(r.flags for r in records))
        snapshots = [
            await self._held_as_recorded(
                side, await self._snapshot(side, mailbox, records), records, recorded
            )
            for side in SIDES
        ]
        return records, snapshots

    async def _changes(self, mailbox: MailboxState) -> list[SideChanges] | None:
        """Quick mode: what each side holds that may differ from the records (its delta, else
        its listing compared with the ids and flags recorded); None where only reconciling
        everything will do (a side never synced or missing, expunges too many to look up)."""
        if self.options.mode != "quick":
            return None
        out = []
        for side in SIDES:
            cursor = mailbox.cursors[side]
            if self.boxes[side] is None or cursor.validity is None:
                return None
            delta = await self._delta(side, cursor)
            if delta is None:
                listing = await self._listing(side)
                recorded = await self.state.recorded_flags(mailbox, side)
                out.append(listing_changes(listing, recorded, _texts()))
                continue
            if sum(hi - lo + 1 for lo, hi in delta.vanished) > MAX_VANISHED_LOOKUPS:
                return None
            gone = frozenset(str(n) for lo, hi in delta.vanished for n in range(lo, hi + 1))
            out.append(SideChanges({m.id: m for m in delta.changed}, gone))
        return out

    async def _changed_only(
        self, mailbox: MailboxState, changes: list[SideChanges]
    ) -> tuple[list[Record], list[list[MessageInfo]]]:
        """The records ``changes`` touch, looked up by key, and each side's messages as
        ``changed_view`` makes them."""
        named = ([*c.changed, *c.gone] for c in changes)
        touched = await self.state.touched_records(mailbox, (next(named), next(named)))
        records, far, near = changed_view(touched, changes)
        for side, c in zip(SIDES, changes, strict=True):
            self.log.debug(
                "mailbox.changes", side=SIDE_NAMES[side], changed=len(c.changed), gone=len(c.gone)
            )
        flags = await self.state.recorded_flag_names(mailbox)
        snapshots = [
            await self._held_as_recorded(side, messages, records, flags)
            for side, messages in zip(SIDES, (far, near), strict=True)
        ]
        return records, snapshots

    async def _held(
        self,
        mailbox: MailboxState,
        plan: Plan,
        records: list[Record],
        snapshots: list[list[MessageInfo]],
        changes: list[SideChanges] | None,
    ) -> tuple[int, int]:
        """The messages each side holds, for the mass-delete guard: a side listed in full, its
        listing; else counted from the records and the changes, only where the plan deletes
        more than the guard's floor there (the guard weighs no other side: 0)."""
        held = []
        for side in SIDES:
            if changes is None:
                held.append(len(snapshots[side]))
            elif side in self._listings and self._deltas.get(side) is None:
                # its full listing: ``snapshots`` hold only what the changes name
                held.append(len(self._listings[side]))
            elif plan.deletes_on(side) <= self.options.mass_delete_floor:
                held.append(0)
            else:
                ids = {r.ids[side] for r in records if r.ids[side]}
                gone = sum(1 for id in ids if changes[side].gone_now(id))
                new = sum(1 for id in changes[side].changed if id not in ids)
                recorded = await self.state.recorded_count(mailbox, side)
                held.append(recorded - gone + new)
        return (held[0], held[1])

    def _marks(
        self,
        plan: Plan,
        mailbox: MailboxState,
        statuses: Sequence[MailboxStatus | None],
        side: Side,
    ) -> tuple[str | None, str | None]:
        """The digest and stamp a complete sync may record for ``side``, when the plan is
        empty (the side then matches the records): a side listed in full, its listing's
        digest and the stamp taken before it; a side not listed because its stamp was the
        recorded one, the recorded digest and stamp."""
        status = statuses[side]
        if not plan.empty or status is None:
            return (None, None)
        if self._deltas.get(side) is None and side in self._listings:
            return (self._listings[side].digest(), status.stamp)
        recorded = mailbox.cursors[side]
        if status.stamp is not None and status.stamp == recorded.stamp:
            return (recorded.digest, status.stamp)
        return (None, None)

    async def run(self) -> PairReport:
        if self.labels is not None and not self.options.dry_run:
            await self.labels.catch_up(await self.state.mailbox(self.name))
        prepared = self.planned if self.planned is not None else await self.prepare()
        self.planned = None  # a plan is carried out once: a retry plans again
        # The plan holds what carrying it out needs: a side's listing (a first sync's whole
        # mailbox, as objects) is not kept while the copies run.
        self._listings.clear()
        self._deltas.clear()
        if prepared.unchanged:
            self.report.quiet = self.report.provable = prepared.quiet
            return self.report
        mailbox, statuses, void, plan = (
            prepared.mailbox,
            prepared.statuses,
            prepared.void,
            prepared.plan,
        )
        if self.options.restore_deleted:
            plan = restore_deleted(plan)
        if self.options.dry_run and self.options.dry_moves:
            plan = without_moves(plan, self.name, self.options.dry_moves)
        self._guard(plan, prepared.held)
        if self.options.dry_run:
            if self.labels is not None:  # links and labels carried without a body
                carried = await self.labels.would_carry(mailbox, plan.copies)
                self.report.linked = list(carried)
            self._report_dry(plan)
            return self.report
        if not plan.empty or void or any(c.validity is None for c in mailbox.cursors):
            # Until this plan is carried out, the next run must not skip anything: durable
            # with the first write of the plan, and before its first side effect.
            self._clearing = self._cursors(statuses)
        for box, status in zip(self.boxes, statuses, strict=True):
            if box is not None and status is not None:
                box.begin_writes(status)
        try:
            await self._apply(mailbox, plan)
        except BaseException:
            await self._flush(mailbox)  # what was carried out is recorded, as ever
            raise
        if self.labels is not None and (plan.deletes or plan.forgets or void):
            await self.labels.forget_gone(mailbox)
        marks = (prepared.digests, prepared.stamps) if plan.empty else NO_MARKS
        if not plan.empty and not self.report.refused:
            statuses = self._after_writes(statuses)
        cursors = await self._save_cursors(mailbox, statuses, complete=True, marks=marks)
        # Nothing was carried, and the next run given these statuses finds each side's delta
        # empty from its status alone: as quiet for the next run as an unchanged pair.
        self.report.quiet = plan.empty and not void and all(c.tells for c in cursors)
        if not plan.empty and not self.report.refused:
            self.written = [
                (side, proof)
                for side in SIDES
                if (proof := self._proof(side, statuses[side])) is not None
            ]
        stamping = {side for side, _ in self.written}
        self.report.provable = self.report.quiet or (
            not void
            and not self.report.refused
            and all(c.tells or side in stamping for side, c in zip(SIDES, cursors, strict=True))
        )
        summary = self.report.summary()
        (self.log.info if any(summary.values()) else self.log.debug)(
            "mailbox.synced", **summary, **self._linked()
        )
        return self.report

    def _after_writes(self, statuses: Sequence[MailboxStatus | None]) -> list[MailboxStatus | None]:
        """Each side's status for its cursor: the one after the plan's writes where the side
        proves they alone changed it (``Mailbox.after_writes``: the next run need not read
        them back), else the one the plan was made from."""
        out = list(statuses)
        for side in SIDES:
            box = self.boxes[side]
            if box is not None and out[side] is not None:
                out[side] = box.after_writes() or out[side]
        return out

    def _proof(self, side: Side, status: MailboxStatus | None) -> WrittenStamp | None:
        """What may prove ``side`` lists as the records now say (``Mailbox.written``).  A
        side the plan left alone was not opened for it (a plan of the move pass's): the
        stamp read before its listing, which the records now match, still proves it."""
        box = self.boxes[side]
        if box is not None:
            return box.written()
        if status is None or status.stamp is None:
            return None
        return Unwritten(status.stamp)

    # --- planning ---------------------------------------------------------------------

    async def _void_ids(
        self, mailbox: MailboxState, records: list[Record], void: list[Side]
    ) -> list[Record]:
        """A side's validity changed: its ids mean nothing now.  Keep the records as half
        records so reconcile re-pairs them by identity (nothing deleted, nothing copied twice)."""
        for side in void:
            self.log.warning(
                "mailbox.validity_changed",
                side=SIDE_NAMES[side],
                was=mailbox.cursors[side].validity,
                records=len(records),
            )
        kept = []
        for r in records:
            ids = list(r.ids)
            for side in void:
                ids[side] = ""
            if any(ids) and r.identity is not None:
                kept.append(Record((ids[0], ids[1]), r.flags, r.identity))
        if not self.options.dry_run:
            await self.state.replace_all(mailbox, kept)
            self.steps.done("void ids")
        return kept

    async def _delta(self, side: Side, cursor: Cursor) -> Delta | None:
        """Quick mode: what changed on ``side`` since the last complete sync, where it can tell."""
        if side not in self._deltas:
            box = self.boxes[side]
            since = self._since(cursor)
            delta = None
            if box is not None and since is not None:
                delta = await box.changes_since(since)
            self._deltas[side] = delta
        return self._deltas[side]

    def _since(self, cursor: Cursor) -> MailboxStatus | None:
        """Quick mode: the status a side's changes are asked since (``_delta``), where the
        last complete sync left one."""
        if (
            self.options.mode != "quick"
            or cursor.validity is None
            or (cursor.modseq is None and cursor.stamp is None)
        ):
            return None
        return MailboxStatus(
            cursor.validity, cursor.uidnext, cursor.modseq, cursor.count, cursor.stamp
        )

    async def _listing(self, side: Side) -> Listing:
        if side not in self._listings:
            box = self.boxes[side]
            self._listings[side] = await box.listing() if box is not None else Listing({}, {})
        return self._listings[side]

    async def _unchanged(
        self, mailbox: MailboxState, statuses: Sequence[MailboxStatus | None]
    ) -> bool | None:
        """Quick mode: both sides provably as the last complete sync left them, so the plan is
        empty without loading a record.  A side that can tell says so with an empty delta (a
        Maildir: by the stamp it had when its listing last matched the records); any other
        side's full listing must hash as it did then (and its stamp now is recorded, so the
        next run need not list it).  None when not unchanged; else whether it is quiet: each
        side's cursor, restamped, lets the next run tell from its status alone
        (``Prepared.quiet``)."""
        if self.options.mode != "quick":
            return None
        restamped = list(mailbox.cursors)
        for side in SIDES:
            cursor = mailbox.cursors[side]
            status = statuses[side]
            if self.boxes[side] is None or status is None or cursor.validity is None:
                return None
            delta = await self._delta(side, cursor)
            if delta is not None:
                if delta.changed or delta.vanished:
                    return None
                continue
            if cursor.digest is None or (await self._listing(side)).digest() != cursor.digest:
                return None
            if status.stamp is not None:
                restamped[side] = dataclasses.replace(cursor, stamp=status.stamp)
        if restamped != list(mailbox.cursors) and not self.options.dry_run:
            # Not a durable step of the run: whether a stamp can be taken depends on the clock
            # (the same-second rule), and a crash on either side of this write costs only a
            # listing next time; so the steps a run counts stay the same from run to run.
            await self.state.set_cursors(mailbox, (restamped[0], restamped[1]))
        # Quiet when every side's cursor (restamped where a side was listed) lets the next run
        # tell from its status alone (``Prepared.quiet``).
        return all(c.tells for c in restamped)

    async def _snapshot(
        self, side: Side, mailbox: MailboxState, records: list[Record]
    ) -> list[MessageInfo]:
        """Every message on ``side``: from the records plus what changed since the last complete
        sync when the side can tell (quick mode), else listed in full."""
        # A side whose validity changed has no delta: its store compares validities.
        delta = await self._delta(side, mailbox.cursors[side])
        if delta is None:
            return (await self._listing(side)).messages()
        known = {
            r.ids[side]: MessageInfo(r.ids[side], r.flags, r.identity.size if r.identity else 0)
            for r in records
            if r.ids[side] and not delta.gone(r.ids[side])
        }
        known.update((m.id, m) for m in delta.changed)
        self.log.debug("mailbox.delta", side=SIDE_NAMES[side], changed=len(delta.changed))
        return list(known.values())

    async def _held_as_recorded(
        self, side: Side, messages: list[MessageInfo], records: list[Record], recorded: Flags
    ) -> list[MessageInfo]:
        """Flags a side cannot store are taken to be as the record has them on that side.
        ``recorded``: every flag of the mailbox's records (also of those not in ``records``:
        which keywords a Maildir cannot hold depends on all of them).  A side whose delta is
        empty is not asked: its messages are the records' (a Maildir skipped by its stamp would
        otherwise be listed for its keyword letters)."""
        delta = self._deltas.get(side)
        if delta is not None and not delta.changed and not delta.vanished:
            return messages
        box = self.boxes[side]
        unheld = await box.cannot_hold(recorded) if box is not None and recorded else frozenset()
        if not unheld:
            return messages
        by_id = {r.ids[side]: r.flags & unheld for r in records if r.ids[side]}
        return [
            dataclasses.replace(m, flags=m.flags | by_id[m.id]) if by_id.get(m.id) else m
            for m in messages
        ]

    async def _settle(
        self, mailbox: MailboxState, records: list[Record], snapshots: list[list[MessageInfo]]
    ) -> list[Record]:
        """Records whose flag update a killed run was carrying get the base that update left
        (``settle_pending``), made durable so the journal entry is used once."""
        if not any(r.pending for r in records):
            return records
        held = [{m.id: m.flags for m in snapshot} for snapshot in snapshots]
        out, old, new = [], [], []
        for r in records:
            if r.pending is not None:
                now = [held[side].get(r.ids[side]) if r.ids[side] else None for side in SIDES]
                settled = settle_pending(r, now)
                old.append(r)
                new.append(settled)
                r = settled
            out.append(r)
        if not self.options.dry_run:
            await self.state.replace(mailbox, old, new)
            self.steps.done("settle flags")
        return out

    async def _plan(self, records: list[Record], snapshots: list[list[MessageInfo]]) -> Plan:
        lists = [list(s) for s in snapshots]
        for _ in range(4):
            result = reconcile(records, lists[Side.FAR], lists[Side.NEAR])
            if isinstance(result, Plan):
                return result
            lists = [await self._identify(side, lists[side], result) for side in SIDES]
        raise MailboxError(f"{self.name}: could not settle message identities")

    async def _identify(
        self, side: Side, messages: list[MessageInfo], need: NeedIdentities
    ) -> list[MessageInfo]:
        wanted = need.ids[side]
        if not wanted:
            return messages
        found = await self.box(side).identify(sorted(wanted))
        self.log.debug("mailbox.identified", side=SIDE_NAMES[side], count=len(found))
        out = []
        for m in messages:
            if m.id in wanted:
                # Unrecorded and vanished meanwhile: leave it out of this run.
                ident = found.get(m.id)
                if ident is None:
                    continue
                m = dataclasses.replace(m, identity=ident)
            out.append(m)
        return out

    def _guard(self, plan: Plan, held: tuple[int, int]) -> None:
        tripped = mass_deletes(
            plan, held, self.options.mass_delete_share, self.options.mass_delete_floor
        )
        if tripped and not self.options.allow_mass_delete:
            why = "; ".join(f"{t} (gone from the {SIDE_NAMES[t.side.other]} side)" for t in tripped)
            where = " and ".join(SIDE_NAMES[t.side.other] for t in tripped)
            source = SIDE_NAMES[tripped[0].side]
            raise MassDeleteRefused(
                f"{self.name}: refused: {why}. If that is intended, sync again with "
                f"--allow-mass-delete. If it was a mistake, put the messages back on the {where} "
                f"side (the same files, e.g. from a backup) and sync again, or sync with "
                f"--restore-deleted to copy them back from the {source} side"
            )

    def _report_dry(self, plan: Plan) -> None:
        r = self.report
        for c in plan.copies:
            r.copied[c.source.other] += 1
        for u in plan.updates:
            for e in u.edits:
                r.flagged[e.side] += 1
            r.paired += u.old is None
        for d in plan.deletes:
            r.deleted[d.side] += 1
        self.log.info("mailbox.would_sync", **r.summary(), **self._linked())

    def _linked(self) -> dict[str, int]:
        """Gmail's labels mode: of the copies, those carried without a body (a hard link
        here, a label added there), for the log line."""
        if self.labels is None:
            return {}
        r = self.report
        return {"linked_local": r.linked[Side.NEAR], "labelled_remote": r.linked[Side.FAR]}

    async def _save_cursors(
        self,
        mailbox: MailboxState,
        statuses: Sequence[MailboxStatus | None],
        complete: bool = False,
        marks: Marks = NO_MARKS,
    ) -> tuple[Cursor, Cursor]:
        """Validities as soon as records depend on them; the progress markers (which let the
        next quick sync skip what came before) only once the whole plan is carried out, with
        the ``marks`` (digests, stamps: ``Prepared.digests`` and ``stamps``) of sides that
        matched the records.  The cursors written."""
        cursors = self._cursors(statuses, complete, marks)
        self._clearing = None  # the complete cursors say more: they replace it
        if complete and self._results:
            await self._flush(mailbox, cursors=cursors)
        else:
            await self.state.set_cursors(mailbox, cursors)
        self.steps.done("cursors")
        return cursors

    def _cursors(
        self,
        statuses: Sequence[MailboxStatus | None],
        complete: bool = False,
        marks: Marks = NO_MARKS,
    ) -> tuple[Cursor, Cursor]:
        """The cursors ``_save_cursors`` writes."""
        cursors = []
        for side in SIDES:
            s = statuses[side]
            if s is None:
                cursors.append(Cursor())
            elif not complete:
                cursors.append(Cursor(s.validity))
            else:
                digests, stamps = marks
                cursors.append(
                    Cursor(
                        s.validity, s.uidnext, s.highestmodseq, s.count, digests[side], stamps[side]
                    )
                )
        return (cursors[0], cursors[1])

    def _take_clearing(self) -> tuple[Cursor, Cursor] | None:
        """The cursors still to be cleared (``_clearing``), for a write to carry; taken once."""
        clearing, self._clearing = self._clearing, None
        return clearing

    async def _clear(self, mailbox: MailboxState) -> None:
        """Before a side effect: the plan's cursors cleared, if no write carried them yet."""
        clearing = self._take_clearing()
        if clearing is not None:
            await self.state.set_cursors(mailbox, clearing)
            self.steps.done("cursors")

    def _carried(self, mailbox: MailboxState, old: list[Record], new: list[Record]) -> bool:
        """Keep the records a carried side effect leaves for the next write (``_results``);
        False in Gmail's labels mode, whose own tables follow the records at once."""
        if self.labels is not None:
            return False
        self._results.append((old, new))
        return True

    async def _flush(
        self,
        mailbox: MailboxState,
        intents: list[Record] | None = None,
        cursors: tuple[Cursor, Cursor] | None = None,
    ) -> None:
        """Write the kept results, then ``intents`` and ``cursors`` (else the cursors still to
        be cleared), in one transaction."""
        changes = [(mailbox, old, new) for old, new in self._results]
        if intents:
            changes.append((mailbox, [], intents))
        if not changes and cursors is None:
            return
        cursors = cursors or self._take_clearing()
        await self.state.rewrite(changes, None if cursors is None else (mailbox, cursors))
        self._results = []

    # --- carrying out -----------------------------------------------------------------

    async def _apply(self, mailbox: MailboxState, plan: Plan) -> None:
        if plan.forgets:
            await self._clear(mailbox)
            await self.state.drop(mailbox, [f.record for f in plan.forgets])
            self.steps.done("forget")
        await self._apply_updates(mailbox, plan)
        await self._apply_deletes(mailbox, plan)
        for side in SIDES:
            copies = [c for c in plan.copies if c.source is side]
            if copies:
                await self._copy(mailbox, side, copies)

    async def _apply_updates(self, mailbox: MailboxState, plan: Plan) -> None:
        # The journal: a run killed after carrying a flag but before recording it must not
        # leave the old flags as the base (see ``settle_pending``).
        journal = [
            (u.old, PendingFlags(u.new.flags, frozenset(e.side for e in u.edits)))
            for u in plan.updates
            if u.old is not None and u.edits and u.old.ids == u.new.ids
        ]
        if journal:
            await self.state.set_pending(mailbox, journal, self._take_clearing())
            self.steps.done("flag intent")
        for side in SIDES:
            changes = [
                FlagChange(e.id, e.add, e.remove, u.old.flags if u.old is not None else None)
                for u in plan.updates
                for e in u.edits
                if e.side is side
            ]
            if changes:
                await self._clear(mailbox)
                await self.box(side).set_flags(changes)
                self.report.flagged[side] += len(changes)
                self.steps.done(f"flags {SIDE_NAMES[side]}")
        if plan.updates:
            old = [u.old for u in plan.updates if u.old is not None]
            new = [u.new for u in plan.updates]
            if not self._carried(mailbox, old, new):
                await self._clear(mailbox)
                await self.state.replace(mailbox, old, new)
                self.steps.done("records")
            self.report.paired += sum(1 for u in plan.updates if u.old is None)
        paired = [u.new.ids[Side.FAR] for u in plan.updates if u.old is None]
        if self.labels is not None and paired:
            await self._clear(mailbox)
            await self.labels.remember(mailbox, paired)

    async def _apply_deletes(self, mailbox: MailboxState, plan: Plan) -> None:
        fresh = never_synced(plan)
        for side in SIDES:
            deletes = [d for d in plan.deletes if d.side is side]
            if not deletes:
                continue
            await self._clear(mailbox)
            gone = await self._remove(
                mailbox,
                side,
                [d.id for d in deletes],
                {d.id for d in deletes if d.record in fresh},
            )
            self.steps.done(f"delete {SIDE_NAMES[side]}")
            done = [d for d in deletes if d.id in gone]
            if len(done) < len(deletes):
                # Only marked deleted (no UIDPLUS): the record stays, so the message is not
                # copied back, and the deletion is asked for again next time.
                self.log.warning(
                    "mailbox.delete_pending", side=SIDE_NAMES[side], count=len(deletes) - len(done)
                )
            self.report.deleted[side] += len(done)
            if done and not self._carried(mailbox, [d.record for d in done], []):
                await self.state.drop(mailbox, [d.record for d in done])
                self.steps.done("forget deleted")

    async def _remove(
        self, mailbox: MailboxState, side: Side, ids: list[str], fresh: set[str]
    ) -> set[str]:
        """Delete, or move to the side's trash folder where one is set (not from the trash
        itself; with ``trash_new_only``, only the ``fresh`` ids: never synced); the ids gone
        from this mailbox now.  In Gmail's labels mode only a message deleted from every
        local folder goes to the trash; from the others this label goes (never an expunge,
        which Gmail may make final)."""
        trash = self.options.trash[side]
        if trash is None or trash == self.name:
            return await self.box(side).delete(ids)
        if self.labels is not None and side is Side.FAR:
            last = await self.labels.last_copies(mailbox, ids)
            others = [i for i in ids if i not in last]
            gone = await self.labels.remove_label(others) if others else set()
            return gone | (await self._to_trash(side, [i for i in ids if i in last], trash))
        gone = set()
        if self.options.trash_new_only:
            expunged = [i for i in ids if i not in fresh]
            ids = [i for i in ids if i in fresh]
            if expunged:
                gone = await self.box(side).delete(expunged)
        return gone | (await self._to_trash(side, ids, trash))

    async def _to_trash(self, side: Side, ids: list[str], trash: str) -> set[str]:
        """Move ``ids`` to the side's trash folder ``trash``; the ids gone from here now."""
        if not ids:
            return set()
        if trash == TRASH_SPECIAL_USE:  # no folder was found marked so (engine/trash.py)
            raise MailboxError(
                f"{self.name}: deleted messages are to go to the trash, but the "
                f"{SIDE_NAMES[side]} side marks no folder \\Trash; set the account's trash to "
                "a folder name"
            )
        try:
            moved = await self.box(side).move(ids, trash)
        except MailboxError as exc:
            raise MailboxError(
                f"{self.name}: deleted messages cannot be moved to the trash folder {trash!r} "
                f"on the {SIDE_NAMES[side]} side ({exc}); create that folder, or change the "
                "account's trash setting"
            ) from None
        # not moved: gone already (the one case the stores leave out here for IMAP)
        return set(ids) - moved.kept

    async def _copy(self, mailbox: MailboxState, source: Side, copies: list[Copy]) -> None:
        """Copy in batches bounded by bytes and count: intent, append, result.  The source is
        asked for ``COPY_CHUNK`` messages at a time, so what it and this keep per message
        (ids, sizes, lookups) is bounded by that, not by the mailbox.  A message the source
        cannot read is skipped (the source says so when a chunk ends): the others are still
        copied, and the first such failure is raised at the end."""
        if self.labels is not None:
            await self._clear(mailbox)
            carry = self.labels.link if source is Side.FAR else self.labels.label
            copies, carried = await carry(mailbox, copies)
            self.report.copied[source.other] += carried
            self.report.linked[source.other] += carried
        unread: MailboxError | None = None
        for start in range(0, len(copies), COPY_CHUNK):
            failed = await self._copy_chunk(mailbox, source, copies[start : start + COPY_CHUNK])
            unread = unread or failed
        if unread is not None:
            raise unread

    async def _copy_chunk(
        self, mailbox: MailboxState, source: Side, copies: list[Copy]
    ) -> MailboxError | None:
        """Copy ``copies``; the source's failure to read some of them, if it failed (a failure
        of the destination is raised, after what it stored is recorded)."""
        by_id = {c.id: c for c in copies}
        batch: list[tuple[Copy, Fetched]] = []
        held = 0
        unread: MailboxError | None = None
        budget = self.budget()
        async with contextlib.aclosing(self.box(source).fetch(list(by_id), budget)) as fetching:
            while True:
                try:
                    fetched = await anext(fetching)
                except StopAsyncIteration:
                    break
                except MailboxError as exc:  # what was read before it is still delivered
                    unread = exc
                    break
                copy = by_id.get(fetched.id)
                if copy is None:
                    continue
                batch.append((copy, fetched))
                held += fetched.body.size
                if held >= budget or len(batch) >= self.options.batch_count:
                    await self._deliver(mailbox, source, batch)
                    batch, held = [], 0
        if batch:
            await self._deliver(mailbox, source, batch)
        return unread

    def budget(self) -> int:
        """The bodies this pair may hold now: its share of ``options.batch_bytes`` with the
        pairs synced at once.  Those only ever become fewer while they run (the workers of
        ``AccountSync._mailboxes`` end as the mailboxes run out), so the shares taken as
        each chunk of copies begins never add up to more than the budget, and the last
        mailbox of a run, or the one of a one-folder account, reads with all of it."""
        pairs = self._at_once() if self._at_once is not None else 1
        return max(1, self.options.batch_bytes // max(1, pairs))

    async def _deliver(
        self, mailbox: MailboxState, source: Side, batch: list[tuple[Copy, Fetched]]
    ) -> None:
        dest = source.other
        intents = [
            c.record or Record(pair_ids(source, f.id, ""), f.flags, f.identity) for c, f in batch
        ]
        fresh = [i for (c, _), i in zip(batch, intents, strict=True) if c.record is None]
        if fresh:
            await self._flush(mailbox, intents=fresh)
            self.steps.done("intent")
        await self._clear(mailbox)
        while batch:
            incoming = [
                Incoming(f.flags, f.internaldate, f.identity, f.body, hint=f.id) for _, f in batch
            ]
            try:
                new_ids: Sequence[str | None] = await self.box(dest).append(incoming)
            except MessageRefused as exc:
                # One message the store will not take: record those before it, report it (its
                # intent stays, so every run tries it again), go on with the rest.
                done = len(exc.delivered)
                await self._record_copies(
                    mailbox, source, batch[:done], intents[:done], exc.delivered
                )
                why = self._refusal(source, batch[done][1], exc)
                self.report.refused.append(why)
                self.log.warning("mailbox.message_refused", side=SIDE_NAMES[dest], error=why)
                batch, intents = batch[done + 1 :], intents[done + 1 :]
                continue
            except MailboxError as exc:
                delivered = getattr(exc, "delivered", None) or []
                await self._record_copies(
                    mailbox, source, batch[: len(delivered)], intents, delivered
                )
                raise
            self.steps.done(f"append {SIDE_NAMES[dest]}")
            await self._record_copies(mailbox, source, batch, intents, new_ids)
            return

    def _refusal(self, source: Side, message: Fetched, exc: MessageRefused) -> str:
        """One line naming the folder, the message (where it is, its Message-ID) and why."""
        origin = message.origin or f"id {message.id}"
        mid = message.identity.message_id or "no Message-ID"
        return (
            f"folder {self.name!r}: the {SIDE_NAMES[source.other]} side refused the "
            f"{SIDE_NAMES[source]} message {origin} ({mid}), so it stays on the "
            f"{SIDE_NAMES[source]} side only: {exc.reason}"
        )

    async def _record_copies(
        self,
        mailbox: MailboxState,
        source: Side,
        batch: list[tuple[Copy, Fetched]],
        intents: list[Record],
        new_ids: Sequence[str | None],
    ) -> None:
        old, new = [], []
        for (_, f), intent, new_id in zip(batch, intents, new_ids, strict=False):
            if new_id is None:
                continue  # no id from the store (no UIDPLUS): the next run pairs it by identity
            old.append(intent)
            new.append(Record(pair_ids(source, f.id, new_id), f.flags, f.identity))
        self.report.copied[source.other] += len(new_ids)
        if new and not self._carried(mailbox, old, new):
            await self.state.replace(mailbox, old, new)
            self.steps.done("records")
