"""``mailtide folders``: every folder of an account on both sides, what the folder rules make
of it, and how many messages each side holds (OfflineIMAP's ``--info``, readable).

It only reads: both stores are opened read-only (a Maildir gets no ids, no tmp/ clean-up),
nothing is created, the state is not touched.  A local root that does not exist yet (before
the first sync) is shown as an empty side, so the rules can be tried before any mail moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from mailtide.config.model import Account
from mailtide.core import mutf7
from mailtide.core.folder_rules import FolderMap
from mailtide.stores.base import FolderInfo, Store, StoreError
from mailtide.wiring import open_store


@dataclass(frozen=True, slots=True)
class FolderRow:
    """One folder pair as the rules see it.  ``server`` / ``local`` None: no name on that
    side; a message count None: the folder does not exist on that side (yet)."""

    server: str | None
    special_use: str | None
    local: str | None
    synced: bool
    rule: str
    server_messages: int | None
    local_messages: int | None


@dataclass(frozen=True, slots=True)
class AccountFolders:
    """What ``mailtide folders`` shows for one account: its rows, the rules' problems (each
    names the folders involved) and notes (a side that could not be listed)."""

    account: str
    remote: str
    local: str
    rows: tuple[FolderRow, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()


async def _counts(store: Store, names: Sequence[str]) -> dict[str, int | None]:
    """Messages per folder (None where the count could not be read)."""
    counts: dict[str, int | None] = {}
    for name in names:
        try:
            mailbox = await store.open(name)
        except StoreError:
            counts[name] = None
            continue
        try:
            count = (await mailbox.status()).count
            # a Maildir folder's status lists nothing: its count is its listing's length
            counts[name] = count if count is not None else len(await mailbox.snapshot())
        except StoreError:
            counts[name] = None
        finally:
            await mailbox.close()
    return counts


async def _listed(store: Store, notes: list[str], side: str) -> list[FolderInfo]:
    """The selectable folders of one side; a side that cannot be listed is a note, and
    empty (a Maildir root that the first sync will create)."""
    try:
        await store.connect()
        folders = [f for f in await store.list_folders() if f.selectable]
    except StoreError as exc:
        if side == "remote":
            raise
        notes.append(f"local: {exc}")
        return []
    for raw, why in store.refused:
        notes.append(f"{side} folder {raw!r} cannot be synced: {why}")
    return folders


async def account_folders(account: Account) -> AccountFolders:
    """List both sides of ``account`` read-only and apply its folder rules (StoreError when
    the server cannot be listed)."""
    remote = await open_store(account.remote, read_only=True)
    local = await open_store(account.local, read_only=True)
    notes: list[str] = []
    try:
        server_folders = await _listed(remote, notes, "remote")
        local_folders = await _listed(local, notes, "local")
        server_counts = await _counts(remote, [f.name for f in server_folders])
        local_counts = await _counts(local, [f.name for f in local_folders])
    finally:
        await remote.close()
        await local.close()
    specials = {f.name: f.special_use for f in server_folders}
    mapping = account.folders.bind(specials)
    local_names = [f.name for f in local_folders]
    rows = _rows(mapping, server_folders, local_names, server_counts, local_counts)
    return AccountFolders(
        account.name,
        account.remote.name,
        account.local.name,
        tuple(rows),
        tuple(mapping.problems(local_names)),
        tuple(notes),
    )


def _rows(
    mapping: FolderMap,
    server_folders: Sequence[FolderInfo],
    local_names: Sequence[str],
    server_counts: dict[str, int | None],
    local_counts: dict[str, int | None],
) -> list[FolderRow]:
    rows: list[FolderRow] = []
    paired: set[str] = set()
    for folder in server_folders:
        placed = mapping.rules.place(folder.name, folder.special_use)
        local = placed.local
        if local is not None:
            paired.add(local)
        rows.append(
            FolderRow(
                folder.name,
                folder.special_use,
                local,
                local is not None,
                placed.why,
                server_counts.get(folder.name),
                local_counts.get(local) if local is not None else None,
            )
        )
    servers = {f.name for f in server_folders}
    for name in local_names:
        if name in paired:
            continue
        server = mapping.to_server(name)
        raw_of = _raw_of(mapping, name, servers, server)
        synced = server is not None
        if raw_of is not None:
            unicode, server = json.dumps(raw_of[0], ensure_ascii=False), raw_of[1]
            # beside its Unicode name, mailtide sync reports it and leaves both alone
            synced = raw_of[0] not in local_names
            rule = (
                f"raw modified UTF-7: renamed to {unicode} by the next sync"
                if synced
                else f"raw modified UTF-7 of {unicode}, which exists too"
            )
        elif server is not None:
            rule = f"local only: made on the server as {json.dumps(server, ensure_ascii=False)}"
        else:
            left_out = [why for f in mapping.rules.local_filters if (why := f.left_out_by(name))]
            rule = f"left out by {left_out[0]}" if left_out else "no server name (see below)"
        rows.append(FolderRow(server, None, name, synced, rule, None, local_counts.get(name)))
    return rows


def _raw_of(
    mapping: FolderMap, name: str, servers: set[str], server: str | None
) -> tuple[str, str] | None:
    """(Unicode local name, its server folder) when local folder ``name`` is that folder's
    name in raw modified UTF-7 (as OfflineIMAP and mbsync write it), which ``mailtide sync``
    renames (engine/folder_adopt.py; a folder synced before under the raw name is not, but
    this command reads no state)."""
    decoded = mutf7.raw_name(name)
    target = mapping.to_server(decoded) if decoded is not None else None
    if decoded is None or target is None or target not in servers or server in servers:
        return None
    return decoded, target


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(shown: AccountFolders) -> list[str]:
    """The lines ``mailtide folders`` prints for one account."""
    head = ("server folder", "special", "local folder", "server", "local", "rule")
    cells = [
        (
            row.server or "-",
            row.special_use or "",
            row.local or "-",
            _count(row.server_messages),
            _count(row.local_messages),
            row.rule if row.synced else f"not synced: {row.rule}",
        )
        for row in shown.rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(5)]
    lines = [f"account {shown.account} (server {shown.remote}, local {shown.local})"]
    for c in [head, *cells]:
        lines.append(
            f"  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}"
            f"  {c[3]:>{widths[3]}}  {c[4]:>{widths[4]}}  {c[5]}".rstrip()
        )
    synced = sum(1 for row in shown.rows if row.synced)
    lines.append(
        f"  {synced} of {len(shown.rows)} folders synced; messages: -  the folder is not"
        " on that side (yet)"
    )
    lines += [f"  note: {note}" for note in shown.notes]
    return lines


def as_json(shown: Sequence[AccountFolders]) -> str:
    """``mailtide folders --json``: one document, ``{"accounts": [...]}``."""
    accounts = [
        {
            "account": a.account,
            "remote": a.remote,
            "local": a.local,
            "folders": [asdict(row) for row in a.rows],
            "problems": list(a.problems),
            "notes": list(a.notes),
        }
        for a in shown
    ]
    return json.dumps({"accounts": accounts}, indent=2, ensure_ascii=False)


async def _each(accounts: Sequence[Account]) -> list[AccountFolders | str]:
    """Each account's folders, or the line saying why its server could not be listed."""
    found: list[AccountFolders | str] = []
    for account in accounts:
        try:
            found.append(await account_folders(account))
        except StoreError as exc:
            found.append(f"account {account.name}: {exc}")
    return found


def show_folders(accounts: Sequence[Account], json_out: bool, error: Callable[[str], None]) -> int:
    """Print the accounts' folders (stdout) and every problem and failure (``error``, one
    line each); the exit status: 2 when the rules have problems, else 1 when a server could
    not be listed, else 0."""
    found = asyncio.run(_each(accounts))
    shown = [f for f in found if isinstance(f, AccountFolders)]
    if json_out:
        print(as_json(shown))
    else:
        for number, each in enumerate(shown):
            if number:
                print()
            print("\n".join(render(each)))
    failures = [f for f in found if isinstance(f, str)]
    problems = [f"account {a.account}: {p}" for a in shown for p in a.problems]
    for line in failures + problems:
        error(line)
    return 2 if problems else 1 if failures else 0
