"""The trash folder of a side, where deletions there go instead of being expunged.

An account sets a folder by name, or asks for the folder the server marks ``\\Trash`` (RFC 6154
special use); the latter is looked up once per run, here.
"""

from __future__ import annotations

import dataclasses

import structlog

from mailtide.core.model import SIDES, TRASH_SPECIAL_USE
from mailtide.engine.pair import Options
from mailtide.stores.base import Store

log = structlog.get_logger(__name__)


async def resolve_trash(stores: tuple[Store, Store], options: Options) -> Options:
    """``options`` with each side's ``TRASH_SPECIAL_USE`` trash replaced by the folder that side
    marks ``\\Trash``; where no folder is so marked it stays, and a deletion there fails its
    mailbox with what to do (never an expunge the user did not want)."""
    trash = list(options.trash)
    for side in SIDES:
        if trash[side] != TRASH_SPECIAL_USE:
            continue
        found = await stores[side].special_folder(TRASH_SPECIAL_USE)
        if found is not None:
            trash[side] = found
            log.debug("trash.found", folder=found)
    if trash == list(options.trash):
        return options
    return dataclasses.replace(options, trash=(trash[0], trash[1]))
