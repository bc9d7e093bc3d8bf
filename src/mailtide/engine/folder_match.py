"""A renamed folder whose identity did not survive the rename, found again by its messages.

Some servers give a renamed folder a new UIDVALIDITY (Courier does, and gives folders made in
the same second the same one, so its UIDVALIDITY names no folder at all).  There a folder gone
from its recorded name is matched with a new, unrecorded folder of the same side by content:
the content identities (Message-ID and header digest) the records hold for the gone pair, and
those of the new folder's messages (headers and the start of each body: the cost of
re-pairing, never a download).  A match needs most messages in common both ways, and to be
the only one either way; an empty folder matches nothing (nothing tells it apart).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from mailtide.core.model import Identity, Side
from mailtide.state.db import FolderPair

if TYPE_CHECKING:
    from mailtide.engine.folders import FolderTree

_SHARE = 0.5  # of each side's messages that must be in common


def _key(identity: Identity) -> tuple[str, str]:
    return (identity.message_id, identity.header_digest)


async def _recorded(tree: FolderTree, pair: FolderPair) -> Counter[tuple[str, str]]:
    mailbox = await tree.state.mailbox(pair.name, create=False)
    return Counter(_key(r.identity) for r in await tree.state.records(mailbox) if r.identity)


async def _held(
    tree: FolderTree, side: Side, name: str, sizes: list[int]
) -> Counter[tuple[str, str]]:
    """The identities of what folder ``name`` holds, read only when it holds about as many
    messages as one of the gone pairs recorded (``sizes``): else nothing."""
    box = await tree.stores[side].open(name)
    try:
        ids = [m.id for m in await box.snapshot()]
        if not any(_close(len(ids), n) for n in sizes):
            return Counter()
        return Counter(_key(i) for i in (await box.identify(ids)).values())
    finally:
        await box.close()


def _close(a: int, b: int) -> bool:
    return a > 0 and b > 0 and a >= _SHARE * b and b >= _SHARE * a


def _alike(a: Counter[tuple[str, str]], b: Counter[tuple[str, str]]) -> bool:
    common = (a & b).total()
    return common > 0 and common >= _SHARE * a.total() and common >= _SHARE * b.total()


async def match_by_content(
    tree: FolderTree, side: Side, gone: list[FolderPair], fresh: list[str]
) -> dict[str, str]:
    """For pairs ``gone`` from ``side``: the one folder among ``fresh`` (unrecorded names on
    that side) each was renamed to, by content; pair name -> new name."""
    if not gone or not fresh:
        return {}
    recorded = {p.name: await _recorded(tree, p) for p in gone}
    sizes = [c.total() for c in recorded.values() if c]
    if not sizes:
        return {}
    held = {name: await _held(tree, side, name, sizes) for name in fresh}
    matches = {
        p: [n for n in fresh if _alike(recorded[p], held[n])] for p in recorded if recorded[p]
    }
    claimed = Counter(n for found in matches.values() for n in found)
    return {p: f[0] for p, f in matches.items() if len(f) == 1 and claimed[f[0]] == 1}
