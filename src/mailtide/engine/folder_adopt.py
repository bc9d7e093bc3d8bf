"""A local folder that OfflineIMAP or mbsync left under its raw modified UTF-7 name, adopted.

Both tools keep a server folder's name as IMAP sends it (mbsync without ``Utf8Mailboxes``,
OfflineIMAP without ``utf8foldernames``): the server's ``Entwürfe`` is ``Entw&APw-rfe`` on disk.
mailtide's local names are Unicode, so without this that directory is a second folder, made on
the server beside ``Entwürfe`` with all its mail uploaded again.

A local folder is adopted when its name is raw modified UTF-7 (``mutf7.raw_name``: at least one
encoded run), no recorded pair holds it, its decoded name is (after the folder rules) a synced
server folder that no recorded pair holds either and that is not the raw name's own server
folder, and the decoded name does not exist locally.  Its directory is renamed to the decoded
name (one ``rename(2)``: files, inodes and subfolders kept), and from there it pairs with the
server folder like any folder of the first sync, message by message by content.  The rename is
a durable step and its own intent: after a crash the decoded name is simply there, and a raw
folder left (a maildir++ parent whose children were renamed first) is adopted again.

Where the decoded name exists locally as well, nothing is merged or deleted: the raw folder is
reported with both paths and left out of the sync until the user decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailtide.core import mutf7
from mailtide.core.model import Side
from mailtide.state.db import FolderPair
from mailtide.stores.base import (
    AuthenticationFailed,
    ConnectionLost,
    Store,
    StoreError,
    UnsafeFolderName,
)

if TYPE_CHECKING:
    from mailtide.engine.folders import FolderTree

WHY = "a raw modified UTF-7 name, as OfflineIMAP and mbsync write it"


async def adopt_raw_names(tree: FolderTree) -> None:
    """Adopt every local folder of ``tree`` under a raw modified UTF-7 name (see above); in a
    dry run, say so and sync it under its raw name instead (nothing is renamed or recorded)."""
    for raw in sorted(tree.listed[Side.NEAR]):  # parents first: a rename takes children along
        if raw not in tree.listed[Side.NEAR]:
            continue  # went with its parent
        target = _target(tree, raw)
        if target is None:
            continue
        decoded, server = target
        if decoded in tree.listed[Side.NEAR] or decoded in tree.parent_only[Side.NEAR]:
            _both_exist(tree, raw, decoded)  # also once the Unicode one is synced (recorded)
        elif server in tree.recorded:
            continue  # its pair lost its local folder: not taken for this one (folder_delete)
        elif tree.options.dry_run:
            tree.log.info("folder.would_rename", folder=raw, to=decoded, side="local", why=WHY)
            tree.recorded[server] = FolderPair((server, raw))  # synced as it is, in this run
        else:
            await _rename(tree, raw, decoded)


def _target(tree: FolderTree, raw: str) -> tuple[str, str] | None:
    """(decoded local name, server name) when local folder ``raw`` spells a synced server
    folder in raw modified UTF-7 and was never synced itself."""
    decoded = mutf7.raw_name(raw)
    if decoded is None or (Side.NEAR, raw) in tree.held:
        return None
    if any(p.names[Side.NEAR] == raw for p in tree.recorded.values()):
        return None  # synced under this name before: an ordinary folder
    server = tree.naming.on(Side.FAR, decoded)
    if server is None or server not in tree.listed[Side.FAR]:
        return None
    if tree.naming.on(Side.FAR, raw) in tree.listed[Side.FAR]:
        return None  # the server has a folder of the raw name itself: they pair as they are
    try:
        tree.stores[Side.NEAR].check_name(decoded)
    except UnsafeFolderName:
        return None  # a name the local side cannot hold: left as it is
    if not _selected(tree, FolderPair((server, decoded)), raw):
        return None
    return decoded, server


def _selected(tree: FolderTree, pair: FolderPair, raw: str) -> bool:
    """``pair`` (under the Unicode name) is synced this run; ``-f`` may name it by ``raw``."""
    only, decoded = tree.only, pair.names[Side.NEAR]
    if only is None or raw not in only or decoded in only:
        return tree.selects(pair)
    only.add(decoded)
    try:
        return tree.selects(pair)
    finally:
        only.discard(decoded)


def _both_exist(tree: FolderTree, raw: str, decoded: str) -> None:
    """Both spellings are local folders: neither is touched, the raw one is not synced."""
    store = tree.stores[Side.NEAR]
    tree.held.add((Side.NEAR, raw))
    tree.strand(
        f"local folder {_where(store, raw)} is the raw modified UTF-7 name of "
        f"{_where(store, decoded)}, which exists too, so neither is changed and {raw!r} is "
        f"not synced (its mail stays local): move its messages into {decoded!r} with a mail "
        f"client, or remove the one you do not want, then sync again"
    )


async def _rename(tree: FolderTree, raw: str, decoded: str) -> None:
    """Rename local folder ``raw`` to ``decoded`` (durable) and list the local side again; a
    refusal is reported and the raw folder left out of this run."""
    store = tree.stores[Side.NEAR]
    try:
        await store.rename_folder(raw, decoded)
    except (ConnectionLost, AuthenticationFailed):
        raise
    except StoreError as exc:
        tree.held.add((Side.NEAR, raw))
        tree.strand(
            f"local folder {raw!r} (a raw modified UTF-7 name) cannot be renamed to "
            f"{decoded!r}, so it is not synced (its mail stays local): {exc}"
        )
        return
    tree.log.info("folder.adopted", folder=raw, to=decoded, side="local", why=WHY)
    if tree.only is not None and raw in tree.only:  # -f by the old name: the same folder
        tree.only.discard(raw)
        tree.only.add(decoded)
    tree.steps.done("rename folder")
    await tree.relist(Side.NEAR)


def _where(store: Store, name: str) -> str:
    """``name`` and its directory, where the store can say it."""
    locate = getattr(store, "folder_path", None)
    try:
        return f"{name!r} ({locate(name)})" if callable(locate) else repr(name)
    except StoreError:
        return repr(name)
