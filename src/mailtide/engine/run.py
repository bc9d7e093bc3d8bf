"""The engine's entry point: one run over one account, given its stores, state and policy.

The engine never reads the configuration (``mailtide.wiring`` builds what it is handed), and
never opens or closes the stores and the state it is given: a one-shot sync closes them after
the run, a daemon may keep them (and their connections) open between runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from mailtide.core.folder_filter import FolderFilter
from mailtide.engine.account import AccountReport, AccountSync, Retry
from mailtide.engine.folder_policy import FolderPolicy
from mailtide.engine.pair import Options
from mailtide.engine.restamp import Restamps
from mailtide.state.offloop import OffLoopState
from mailtide.stores.base import Store

log = structlog.get_logger(__name__)


async def sync_stores(
    name: str,
    stores: tuple[Store, Store],
    filters: tuple[FolderFilter, FolderFilter],
    state: OffLoopState,
    options: Options,
    retry: Retry,
    *,
    folders: Sequence[str] | None = None,
    stop: asyncio.Event | None = None,
    progress: Callable[[], None] | None = None,
    folder_policy: FolderPolicy | None = None,
    restamps: Restamps | None = None,
) -> AccountReport:
    """Sync account ``name`` (all its folders, or only ``folders``) between ``stores`` (indexed
    by Side: FAR, NEAR).  An account that has never synced (no known folder, no state moved
    aside) is a first sync: a store may then create its missing root (``Store.connect``)."""
    first_sync = not state.moved_aside and not await state.known_folders()
    if state.moved_aside:
        log.warning("state.moved_aside", account=name, message=state.moved_aside)
    sync = AccountSync(
        name,
        stores,
        filters,
        state,
        options,
        only=folders,
        retry=retry,
        stop=stop,
        first_sync=first_sync,
        progress=progress,
        folder_policy=folder_policy,
        restamps=restamps,
    )
    report = await sync.run()
    if state.moved_aside:
        report.warnings.insert(0, state.moved_aside)
    return report
