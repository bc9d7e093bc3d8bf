"""The folder tree of one account: which server folder pairs with which local folder.

A pairing, once synced, is recorded (``state.db.FolderPair``): the server name (which names
the pair and its mailbox state), the local name and each side's identity (the UIDVALIDITY,
which Dovecot keeps across RENAME; a Maildir folder's ``.mailtide-id``, which a directory
rename carries).  Folders are matched by that record, never again by name alone.  Each run:

1. list both sides;
2. a recorded pair whose local name is no longer what the naming gives for its server name
   (the rules changed) has its local directory renamed; step 3 then records it;
3. **renames**: a recorded folder gone from its name on one side whose identity is now at
   exactly one unrecorded name there was renamed (where the identity did not survive, as on
   Courier, its messages tell: folder_match.py): the other side's folder is renamed to match
   (no message moves: files, UIDs and records stay), then the new names are recorded.  The
   identities are the intent: a crash between the two renames, or before the record, is
   recognised again by the next run.  A rename whose target name is taken on the other side
   is reported and neither folder is touched;
4. **raw names**: a local folder never synced whose name is a server folder's in raw modified
   UTF-7 (as OfflineIMAP and mbsync leave it) is renamed to the Unicode name, then paired as
   any other (folder_adopt.py);
5. **deletions**: a recorded folder gone from one side (not renamed) follows ``folder_delete``
   (see ``FolderPolicy``); what is not deleted is reported and left alone, never re-created;
   a pair gone from both sides is forgotten;
6. a folder on one side only that was never synced is created on the other (subscribed to on
   the server), unless that side holds the name only as a parent.

The result is the list of mailbox pairs to sync, by their server names (``name_on`` gives a
pair's name on each side).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from structlog.typing import FilteringBoundLogger

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderMap
from mailtide.core.model import SIDES, Side
from mailtide.engine.folder_adopt import adopt_raw_names
from mailtide.engine.folder_delete import propagate_deletion
from mailtide.engine.folder_match import match_by_content
from mailtide.engine.folder_policy import FolderNaming, FolderPolicy
from mailtide.engine.pair import SIDE_NAMES, Options
from mailtide.engine.steps import Steps
from mailtide.state.db import FolderPair
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import (
    AuthenticationFailed,
    ConnectionLost,
    FolderInfo,
    Store,
    StoreError,
)

# Rounds of listing and creating folders: one more for each level of parents a side may create.
_FOLDER_ROUNDS = 4


class NoSuchFolder(StoreError):
    """``-f`` named a folder that exists on neither side: a usage mistake, nothing synced."""


class FolderRulesRefused(NoSuchFolder):
    """The folder rules would give two server folders one local name (or a name no folder
    can have) on this run's real lists: a configuration mistake, nothing synced."""


def _order(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


def _with(values: tuple[str, str], side: Side, value: str) -> tuple[str, str]:
    return (value, values[1]) if side is Side.FAR else (values[0], value)


class FolderTree:
    """The folder tree of one run over one account.  ``stores`` and ``filters`` are indexed by
    Side; ``strand`` reports a folder whose mail stays on one side; ``only``: the canonical
    names asked for (``-f``), None for all."""

    def __init__(
        self,
        stores: tuple[Store, Store],
        filters: tuple[FolderFilter, FolderFilter],
        state: OffLoopState,
        options: Options,
        steps: Steps,
        strand: Callable[[str], None],
        only: set[str] | None,
        log: FilteringBoundLogger,
        policy: FolderPolicy | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.stores = stores
        self.filters = filters
        self.state = state
        self.options = options
        self.steps = steps
        self.strand = strand
        self.only = set(only) if only is not None else None  # adoption may respell one
        self.log = log
        self.policy = policy or FolderPolicy()
        self.warn = warn or strand
        self.naming = self.policy.naming  # bound to the server's list when there are rules
        self.folder_map: FolderMap | None = None  # the rules over that list, when there are
        # this run's view: each side's selectable folders and parent-only names, the pairings
        self.listed: list[dict[str, FolderInfo]] = [{}, {}]
        self.parent_only: list[set[str]] = [set(), set()]
        # names a side listed but could not use (stranded when listed): never taken as gone
        self.unreadable: list[set[str]] = [set(), set()]
        self.recorded: dict[str, FolderPair] = {}
        self.chosen: dict[str, FolderPair] = {}
        self.held: set[tuple[Side, str]] = set()  # names a reported conflict leaves alone
        self.subscribed: set[str] | None = None

    def name_on(self, side: Side, name: str) -> str:
        """The name on ``side`` of pair ``name`` (one that ``pairs`` returned)."""
        pair = self.chosen.get(name)
        return pair.names[side] if pair is not None else name

    async def pairs(self) -> list[str]:
        """The mailbox pairs to sync (their server names), after carrying renames and
        deletions and creating folders that are new on one side.

        Creating a nested folder may create its parents on that side too (a server makes
        ``A`` for ``A/B``), so the tree is listed again after a round that created folders,
        and what appeared is carried in the same run."""
        self.chosen = {}
        self.held = set()
        await self._list(set(SIDES), warn=True)
        self._check_rules()
        self.recorded = {p.name: p for p in await self.state.folder_pairs()}
        if self.policy.subscribed_only:
            self.subscribed = await self.stores[Side.FAR].subscribed()
        await self._carry_renames()
        await adopt_raw_names(self)
        await self._place_all()
        if not self.options.dry_run:
            await self._record()
        return sorted(self.chosen, key=_order)

    async def _carry_renames(self) -> None:
        for _ in range(_FOLDER_ROUNDS):  # a renamed parent takes children along: once more
            renamed = await self._follow_naming()
            for by_content in (False, True):  # the cheap way first, on both sides
                for side in SIDES:
                    await self._renames(side, by_content)
            if not renamed:
                break

    async def _place_all(self) -> None:
        """Place every wanted pair (``_place``), in rounds while folders are created."""
        decided: set[str] = set()
        for round_ in range(_FOLDER_ROUNDS):
            wanted = self._wanted()
            if round_ == 0 and self.only:
                self._check_only(wanted)
            changed: set[Side] = set()
            todo = [p for n, p in wanted.items() if n not in decided]
            for pair in sorted(todo, key=self._place_order):
                decided.add(pair.name)
                made = await self._place(pair)
                if made is not None:
                    self.chosen[pair.name] = pair
                    changed |= made
            if not changed or self.options.dry_run:
                break
            await self._list(changed, warn=False)

    def _place_order(self, pair: FolderPair) -> tuple[int, int, tuple[int, str]]:
        # pairs gone from a side first, deepest first (a folder's children before it)
        gone = pair.name in self.recorded and any(
            pair.names[s] not in self.listed[s] for s in SIDES
        )
        return (0, -pair.name.count("/"), _order(pair.name)) if gone else (1, 0, _order(pair.name))

    # --- listing ----------------------------------------------------------------------

    async def _list(self, sides: set[Side], warn: bool) -> None:
        """List the folders of ``sides``: selectable ones and names a side holds only as a
        parent (no messages); a folder a side cannot map is stranded there (once per run)."""
        for side in sorted(sides):
            store = self.stores[side]
            folders = await store.list_folders()
            if warn:
                for raw, why in store.refused:
                    self.strand(
                        f"{SIDE_NAMES[side]} folder {raw!r} is not synced "
                        f"(its mail stays on the {SIDE_NAMES[side]} side): {why}"
                    )
            self.listed[side] = {f.name: f for f in folders if f.selectable}
            self.parent_only[side] = {f.name for f in folders if not f.selectable}
            self.unreadable[side] = {raw for raw, _ in store.refused}
        if Side.FAR in sides:
            self._bind_rules()

    async def relist(self, side: Side) -> None:
        """List ``side`` again after a change made there (nothing stranded a second time)."""
        await self._list({side}, warn=False)

    def _bind_rules(self) -> None:
        """The rules' naming over the server's folders as listed now (special uses and the
        reverse of lower-cased names need the real list)."""
        rules = self.policy.rules
        if rules is None:
            return
        self.folder_map = rules.bind({n: f.special_use for n, f in self.listed[Side.FAR].items()})
        self.naming = FolderNaming(local=self.folder_map.to_local, remote=self.folder_map.to_server)

    def _check_rules(self) -> None:
        """The rules on this run's real folder lists: two server folders that would be one
        local folder refuse the run, with the names (syncing them would mix two folders); a
        local folder with no server name is said, and its mail stays local."""
        folders = self.folder_map  # bound by _list to the server's list of this run
        if folders is None:
            return
        collisions = folders.collisions()
        if collisions:
            raise FolderRulesRefused("folder rules: " + "; ".join(collisions))
        for line in folders.unmapped(self.listed[Side.NEAR]):
            self.warn(f"{line} (its mail stays local)")

    def selects(self, pair: FolderPair) -> bool:
        """The filters, ``-f`` and subscriptions let ``pair`` be synced."""
        if not all(self.filters[s].selects(pair.names[s]) for s in SIDES):
            return False
        if self.only is not None and not set(pair.names) & self.only:
            return False
        far = pair.names[Side.FAR]
        # INBOX always counts: many servers and clients never subscribe to it
        unsubscribed = self.subscribed is not None and far not in self.subscribed | {"INBOX"}
        return not (unsubscribed and far in self.listed[Side.FAR])

    def _wanted(self) -> dict[str, FolderPair]:
        """Every pair to place, by server name: the recorded ones, then each listed folder not
        in one, paired with its name on the other side (naming)."""
        naming = self.naming
        out: dict[str, FolderPair] = {}
        claimed: list[set[str]] = [set(), set()]
        for pair in self.recorded.values():
            if naming.local(pair.name) is None:
                continue  # the rules leave it out now: not synced, and not deleted
            out[pair.name] = pair
            for side in SIDES:
                claimed[side].add(pair.names[side])
        for side in SIDES:
            for name in sorted(self.listed[side]):
                other = naming.on(side.other, name)
                if name in claimed[side] or other is None or other in claimed[side.other]:
                    continue
                names = _with(_with(("", ""), side, name), side.other, other)
                out[names[Side.FAR]] = FolderPair(names)
                claimed[side].add(name)
                claimed[side.other].add(other)
        return {
            n: p
            for n, p in out.items()
            if self.selects(p) and not any((s, p.names[s]) in self.held for s in SIDES)
        }

    def _check_only(self, wanted: dict[str, FolderPair]) -> None:
        """``-f`` names that match no folder are a usage mistake: nothing is synced."""
        asked = {n for p in wanted.values() for n in p.names}
        missing = sorted(self.only - asked) if self.only else []
        if not missing:
            return
        anywhere = set(self.listed[Side.FAR]) | set(self.listed[Side.NEAR])
        known = sorted(n for n in anywhere if all(f.selects(n) for f in self.filters))
        lines = []
        for name in missing:
            if name in anywhere:
                lines.append(f'folder "{name}" is left out by the folders.include/exclude rules')
                continue
            import difflib  # only for a mistake's hint

            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            lines.append(f'no folder "{name}" on either side{hint}')
        raise NoSuchFolder("; ".join(lines))

    # --- renames ----------------------------------------------------------------------

    async def _follow_naming(self) -> bool:
        """A recorded pair whose local name the naming now gives otherwise (the rules changed):
        its local directory is renamed (``_renames`` records it, as any local rename).  True
        when one was."""
        renamed = False
        for pair in sorted(self.recorded.values(), key=lambda p: p.names[Side.NEAR]):
            want = self.naming.local(pair.name)
            old = pair.names[Side.NEAR]
            if want is None or want == old or old not in self.listed[Side.NEAR]:
                continue
            if (Side.NEAR, old) in self.held:
                continue  # reported already
            if pair.name not in self.listed[Side.FAR]:
                continue  # gone or renamed on the server: the rename below carries the name
            if want in self.listed[Side.NEAR] or want in self.parent_only[Side.NEAR]:
                self.held |= {(Side.NEAR, old), (Side.NEAR, want)}
                self.strand(
                    f"local folder {old!r} is now named {want!r}, but a local folder {want!r} "
                    "exists already, so neither is changed: rename or remove one of them"
                )
                continue
            done = await self._rename(Side.NEAR, old, want, why="the folder naming changed")
            renamed |= done and not self.options.dry_run
        return renamed

    async def _renames(self, side: Side, by_content: bool) -> None:
        """Recognise folders renamed on ``side`` by their identity (or, ``by_content``, by
        their messages: folder_match.py) and carry each rename."""
        known = {p.names[side] for p in self.recorded.values()}
        gone = [
            p
            for p in self.recorded.values()
            if p.names[side] not in self.listed[side]
            and (side.other, p.names[side.other]) not in self.held
        ]
        fresh = sorted(n for n in self.listed[side] if n not in known)
        if not gone or not fresh:
            return
        if by_content:
            matched = await match_by_content(self, side, gone, fresh)
        else:
            matched = await self._matched_by_id(side, gone, fresh)
        # parents first: the other side's rename of a parent takes its children along
        for pair in sorted(gone, key=lambda p: p.names[side]):
            if pair.name in matched:
                await self._carry_rename(pair, side, matched[pair.name])

    async def _matched_by_id(
        self, side: Side, gone: list[FolderPair], fresh: list[str]
    ) -> dict[str, str]:
        """Pair name -> the one fresh name on ``side`` that holds its recorded identity."""
        found: dict[str, list[str]] = {}
        for name in fresh:
            identity = self.listed[side][name].identity
            identity = identity or await self.stores[side].folder_identity(name)
            found.setdefault(identity, []).append(name)
        # An id only counts when it is one folder's alone: a server that gives every folder
        # the same UIDVALIDITY (or a copied Maildir folder) must not pair folders by it.
        ids = Counter(p.ids[side] for p in self.recorded.values())
        return {
            p.name: found[p.ids[side]][0]
            for p in gone
            if p.ids[side] and len(found.get(p.ids[side], [])) == 1 and ids[p.ids[side]] == 1
        }

    async def _carry_rename(self, pair: FolderPair, side: Side, new: str) -> None:
        """``pair`` was renamed to ``new`` on ``side``: rename it on the other side to match,
        then record the new names."""
        other = side.other
        target = self.naming.on(other, new)
        old = pair.names[other]
        names = _with(_with(pair.names, side, new), other, target or "")
        if target is None or not self.selects(FolderPair(names)):
            return  # renamed out of what is synced: as gone from that side (folder_delete)
        if target != old and old in self.listed[other]:
            if target in self.listed[other] or target in self.parent_only[other]:
                self.held |= {(side, new), (other, old), (other, target)}
                self.strand(
                    f"folder {pair.names[side]!r} was renamed to {new!r} on the "
                    f"{SIDE_NAMES[side]} side, but the {SIDE_NAMES[other]} side has a folder "
                    f"{target!r} already, so neither is changed: rename one of them and sync "
                    "again"
                )
                return
            if not await self._rename(other, old, target, why=f"renamed {SIDE_NAMES[side]}"):
                self.held |= {(side, new), (other, old)}
                return
        if self.options.dry_run:
            # nothing was renamed: the pair is synced under the names each side has now
            now = _with(names, other, old) if old in self.listed[other] else names
            del self.recorded[pair.name]
            self.recorded[now[Side.FAR]] = FolderPair(now, pair.ids)
            return
        ids = list(pair.ids)
        for s in SIDES:
            info = self.listed[s].get(names[s])
            if info is not None:  # a server may give a renamed folder a new UIDVALIDITY
                ids[s] = info.identity or await self._identity(s, names[s]) or ids[s]
        renamed = FolderPair(names, (ids[0], ids[1]))
        await self.state.rename_folder(pair.name, renamed)
        self.steps.done("record folder rename")
        del self.recorded[pair.name]
        self.recorded[renamed.name] = renamed

    async def _rename(self, side: Side, old: str, new: str, why: str) -> bool:
        """Rename folder ``old`` to ``new`` on ``side`` and list that side again; False (and
        reported) when the store refuses."""
        where = SIDE_NAMES[side]
        if self.options.dry_run:
            self.log.info("folder.would_rename", folder=old, to=new, side=where, why=why)
            return True
        try:
            await self.stores[side].rename_folder(old, new)
        except (ConnectionLost, AuthenticationFailed):
            raise
        except StoreError as exc:
            self.strand(f"folder {old!r} cannot be renamed to {new!r} on the {where} side: {exc}")
            return False
        self.log.info("folder.renamed", folder=old, to=new, side=where, why=why)
        self.steps.done("rename folder")
        await self._list({side}, warn=False)
        return True

    # --- placing ----------------------------------------------------------------------

    async def _place(self, pair: FolderPair) -> set[Side] | None:
        """Make ``pair`` exist on both sides: None when it is not synced (deleted, gone or
        stranded), else the sides a folder was created on."""
        missing = [s for s in SIDES if pair.names[s] not in self.listed[s]]
        if not missing:
            return set()
        if any(pair.names[s] in self.unreadable[s] for s in missing):
            return None  # there, but not usable now (said when listed): not gone
        if pair.name in self.recorded:
            if len(missing) == 2:
                if not self.options.dry_run:
                    await self.state.forget_folder(pair.name)
                    self.log.info("folder.forgotten", folder=pair.name)
                return None
            await self._gone(pair, missing[0])
            return None
        side = missing[0]
        name, other = pair.names[side], SIDE_NAMES[side.other]
        if name in self.parent_only[side]:
            self.strand(
                f"folder {name!r} holds no messages on the {SIDE_NAMES[side]} side (it is only "
                f"a parent there), so the mail in it on the {other} side is not synced"
            )
            return None
        store = self.stores[side]
        try:
            store.check_name(name)
            if self.options.dry_run:
                self.log.info("folder.would_create", folder=name, side=SIDE_NAMES[side])
                return set()
            await store.create_folder(name)
            if side is Side.FAR:
                await store.subscribe(name)
        except (ConnectionLost, AuthenticationFailed):
            raise  # the connection or the login, not the name: for the whole account
        except StoreError as exc:  # a name that side refuses: skip it, not the account
            self.strand(
                f"folder {name!r} cannot be made on the {SIDE_NAMES[side]} side, so its mail "
                f"stays on the {other} side: {exc}"
            )
            return None
        self.listed[side][name] = FolderInfo(name)
        self.log.info("folder.created", folder=name, side=SIDE_NAMES[side])
        self.steps.done("create folder")
        return {side}

    async def _gone(self, pair: FolderPair, side: Side) -> None:
        """``pair`` was synced before and is gone from ``side``: see ``FolderPolicy.delete``."""
        other = SIDE_NAMES[side.other]
        if self.policy.delete != "never":
            why = await propagate_deletion(self, pair, side)
            if why is None:
                return
        else:
            why = 'folder_delete = "never"'
        self.strand(
            f"folder {pair.names[side]!r} is gone from the {SIDE_NAMES[side]} side; it "
            f"was synced before, so it is neither re-created nor deleted on the {other} side "
            f"(its mail stays there): {why}"
        )

    # --- the record -------------------------------------------------------------------

    async def _identity(self, side: Side, name: str) -> str:
        """The folder's identity, made where it has none (a Maildir folder's id file); ""
        when that fails: the mailbox's own sync then fails alone, saying why."""
        try:
            return await self.stores[side].folder_identity(name, create=True)
        except (ConnectionLost, AuthenticationFailed):
            raise
        except StoreError as exc:
            self.log.debug("folder.no_identity", folder=name, error=str(exc))
            return ""

    async def _record(self) -> None:
        """Record every chosen pair with both sides' identities (a Maildir folder without
        an id gets one first), where that changes the record."""
        changed = []
        for name, pair in self.chosen.items():
            ids = list(self.recorded[name].ids if name in self.recorded else pair.ids)
            for side in SIDES:
                info = self.listed[side].get(pair.names[side])
                if info is not None and info.identity:
                    ids[side] = info.identity
                elif not ids[side]:
                    ids[side] = await self._identity(side, pair.names[side])
            recorded = FolderPair(pair.names, (ids[0], ids[1]))
            self.chosen[name] = recorded
            if self.recorded.get(name) != recorded:
                changed.append(recorded)
        if changed:
            await self.state.put_folders(changed)
