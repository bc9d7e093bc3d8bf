"""The folder tree of one account: which server folder pairs with which local folder.

A folder on one side only is created on the other, unless the state says it was synced
before (then it was deleted on one side: it is reported and left alone, never re-created
and never deleted wholesale).  The result is the list of mailbox pairs to sync.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from structlog.typing import FilteringBoundLogger

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.model import SIDES, Side
from mailtide.engine.pair import SIDE_NAMES, Options
from mailtide.engine.steps import Steps
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import AuthenticationFailed, ConnectionLost, Store, StoreError

# Rounds of listing and creating folders: one more for each level of parents a side may create.
_FOLDER_ROUNDS = 4


class NoSuchFolder(StoreError):
    """``-f`` named a folder that exists on neither side: a usage mistake, nothing synced."""


def _order(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


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
    ) -> None:
        self.stores = stores
        self.filters = filters
        self.state = state
        self.options = options
        self.steps = steps
        self.strand = strand
        self.only = only
        self.log = log

    async def pairs(self) -> list[str]:
        """The mailbox pairs to sync, after creating folders that are new on one side.

        Creating a nested folder may create its parents on that side too (a server makes
        ``A`` for ``A/B``), so the tree is listed again after a round that created folders,
        and what appeared is carried in the same run."""
        chosen: list[str] = []
        decided: set[str] = set()
        present: list[set[str]] = [set(), set()]
        parent_only: set[str] = set()
        changed = set(SIDES)
        for round_ in range(_FOLDER_ROUNDS):
            await self._list(changed, present, parent_only, warn=round_ == 0)
            wanted = {
                n
                for n in present[Side.FAR] | present[Side.NEAR]
                if all(f.selects(n) for f in self.filters) and (self.only is None or n in self.only)
            }
            if round_ == 0 and self.only:
                self._check_only(wanted, present)
            changed = set()
            for name in sorted(wanted - decided, key=_order):
                decided.add(name)
                made = await self._place(name, present, parent_only)
                if made is not None:
                    chosen.append(name)
                    changed |= made
            if not changed or self.options.dry_run:
                break
        chosen.sort(key=_order)
        if not self.options.dry_run:
            await self.state.add_folders(chosen)
        return chosen

    async def _list(
        self, sides: set[Side], present: list[set[str]], parent_only: set[str], warn: bool
    ) -> None:
        """List the folders of ``sides`` into ``present`` (selectable, by Side) and
        ``parent_only`` (names a side holds only as a parent, no messages); a folder a side
        cannot map is stranded there (said once per run)."""
        for side in sorted(sides):
            store = self.stores[side]
            folders = await store.list_folders()
            if warn:
                for raw, why in store.refused:
                    self.strand(
                        f"{SIDE_NAMES[side]} folder {raw!r} is not synced "
                        f"(its mail stays on the {SIDE_NAMES[side]} side): {why}"
                    )
            present[side] = {f.name for f in folders if f.selectable}
            parent_only |= {f.name for f in folders if not f.selectable}

    def _check_only(self, wanted: set[str], present: list[set[str]]) -> None:
        """``-f`` names that match no folder are a usage mistake: nothing is synced."""
        missing = sorted(self.only - wanted) if self.only else []
        if not missing:
            return
        anywhere = present[Side.FAR] | present[Side.NEAR]
        known = sorted(n for n in anywhere if all(f.selects(n) for f in self.filters))
        lines = []
        for name in missing:
            if name in anywhere:
                lines.append(f'folder "{name}" is left out by the folders.include/exclude rules')
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            lines.append(f'no folder "{name}" on either side{hint}')
        raise NoSuchFolder("; ".join(lines))

    async def _place(
        self, name: str, present: list[set[str]], parent_only: set[str]
    ) -> set[Side] | None:
        """Make ``name`` exist on both sides: None when it cannot be synced (stranded), else
        the sides a folder was created on."""
        missing = [s for s in SIDES if name not in present[s]]
        if not missing:
            return set()
        side = missing[0]
        other = SIDE_NAMES[side.other]
        if name in await self.state.known_folders():
            self.strand(
                f"folder {name!r} is gone from the {SIDE_NAMES[side]} side; it was synced "
                f"before, so it is neither re-created nor deleted on the {other} side "
                f"(its mail stays there)"
            )
            return None
        if name in parent_only:
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
        except (ConnectionLost, AuthenticationFailed):
            raise  # the connection or the login, not the name: for the whole account
        except StoreError as exc:  # a name that side refuses: skip it, not the account
            self.strand(
                f"folder {name!r} cannot be made on the {SIDE_NAMES[side]} side, so its mail "
                f"stays on the {other} side: {exc}"
            )
            return None
        present[side].add(name)
        self.log.info("folder.created", folder=name, side=SIDE_NAMES[side])
        self.steps.done("create folder")
        return {side}
