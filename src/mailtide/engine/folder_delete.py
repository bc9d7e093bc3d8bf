"""A folder synced before and deleted on one side: deleting it on the other side too.

``folder_delete = "propagate-if-empty"`` deletes it only when it holds no message there;
``"propagate"`` first deletes its messages, but only those synced before (a message that
arrived since was never seen on the side that deleted the folder: the folder is left alone)
and within the mass-delete guard, as any deletion.  Each deletion is a durable step; the
pairing is forgotten last, so a crash in between is carried on by the next run, which finds
the folder still gone from the one side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailtide.core.model import Side
from mailtide.engine.pair import SIDE_NAMES
from mailtide.state.db import FolderPair
from mailtide.stores.base import AuthenticationFailed, ConnectionLost, StoreError

if TYPE_CHECKING:
    from mailtide.engine.folders import FolderTree


async def propagate_deletion(tree: FolderTree, pair: FolderPair, gone: Side) -> str | None:
    """Delete ``pair``'s folder on the side other than ``gone`` as the policy allows; None
    when it is deleted (or would be, in a dry run), else why it is left alone."""
    side = gone.other
    name, where = pair.names[side], SIDE_NAMES[side]
    try:
        why = await _empty(tree, pair, side)
        if why is not None:
            return why
        if tree.options.dry_run:
            tree.log.info("folder.would_delete", folder=name, side=where)
            return None
        await tree.stores[side].delete_folder(name)
    except (ConnectionLost, AuthenticationFailed):
        raise
    except StoreError as exc:
        return str(exc)
    tree.log.info("folder.deleted", folder=name, side=where)
    tree.steps.done("delete folder")
    await tree.state.forget_folder(pair.name)
    tree.steps.done("forget folder")
    return None


async def _empty(tree: FolderTree, pair: FolderPair, side: Side) -> str | None:
    """Make the folder on ``side`` empty where the policy allows: None when it is, else why
    it is not."""
    box = await tree.stores[side].open(pair.names[side])
    try:
        held = await box.snapshot()
        if not held:
            return None
        n = len(held)
        if tree.policy.delete != "propagate":
            return (
                f"it holds {n} message{'s' * (n != 1)} (folder_delete = "
                '"propagate" deletes them too)'
            )
        records = await tree.state.records(await tree.state.mailbox(pair.name, create=False))
        synced = {r.ids[side] for r in records}
        new = sum(1 for m in held if m.id not in synced)
        if new:
            return f"{new} message{'s' * (new != 1)} in it arrived since the last sync"
        options = tree.options
        if (
            n > options.mass_delete_floor
            and n > options.mass_delete_share * n
            and not (options.allow_mass_delete)
        ):
            return (
                f"deleting its {n} messages is a mass deletion: sync with "
                "--allow-mass-delete if that is intended"
            )
        if options.dry_run:
            tree.log.info("folder.would_delete_messages", folder=pair.names[side], count=n)
            return None
        deleted = await box.delete([m.id for m in held])
        tree.steps.done(f"delete {SIDE_NAMES[side]}")
        if len(deleted) < n:
            return f"{n - len(deleted)} of its messages could not be deleted"
        return None
    finally:
        await box.close()
