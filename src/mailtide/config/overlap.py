"""What must stay apart: the Maildir trees of accounts, and their state files.

Two accounts on one Maildir tree (the same directory, or one inside the other) upload each
other's mail to their servers; an account whose two sides are overlapping Maildirs syncs a tree
into itself; a state directory inside a Maildir tree gets its own database synced as mail.  And
two accounts whose state files are one file on a case-insensitive file system share one state.
Each is refused when the config is loaded, before anything is synced.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailtide.config.lines import KeyPath
from mailtide.config.model import MaildirRepository
from mailtide.config.places import Place, place_of

# The longest name the state files add to an account's name
# ("<account>.sqlite.corrupt-20260101T000000Z.99-wal"), and the usual file name limit.
_STATE_FILE_EXTRA = len(".sqlite.corrupt-20260101T000000Z.99-wal")
_NAME_MAX = 255
MAX_ACCOUNT_NAME_BYTES = _NAME_MAX - _STATE_FILE_EXTRA


@dataclass(frozen=True, slots=True)
class Clash:
    """One problem: the key it is reported at and what is wrong."""

    key: KeyPath
    message: str


@dataclass(frozen=True, slots=True)
class MaildirSide:
    """One side of one account that is a Maildir tree."""

    account: str
    side: str  # "local" or "remote"
    repository: MaildirRepository


@dataclass(frozen=True, slots=True)
class _MaildirUse:
    account: str
    side: str
    repository: MaildirRepository
    place: Place


def _show(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _uses(sides: Iterable[MaildirSide]) -> Iterator[_MaildirUse]:
    places: dict[str, Place] = {}  # per repository: a table used twice is resolved once
    for s in sides:
        if s.repository.name not in places:
            places[s.repository.name] = place_of(s.repository.path)
        yield _MaildirUse(s.account, s.side, s.repository, places[s.repository.name])


def _relation(place: Place, other: Place) -> str:
    """How ``place`` stands to ``other``, which it overlaps: "is also the Maildir",
    "holds the Maildir OTHER" or "is inside the Maildir OTHER"."""
    if place.holds(other) and other.holds(place):
        return "is also the Maildir"
    verb = "holds" if place.holds(other) else "is inside"
    return f"{verb} the Maildir {other.shown}"


def _clash_of(use: _MaildirUse, earlier: _MaildirUse) -> Clash | None:
    if not use.place.overlaps(earlier.place):
        return None
    same_account = use.account == earlier.account
    if same_account and use.repository.name == earlier.repository.name:
        return None  # "must not be the same repository as local" says it already
    owner = f"the {earlier.side} side" if same_account else f"account {_show(earlier.account)}"
    why = (
        "the two sides of an account would sync the tree into itself; give each side its own"
        " directory, side by side"
        if same_account
        else "two accounts on one Maildir tree mix their mail (each would upload the other's to"
        " its server); give each account its own directory, side by side"
    )
    return Clash(
        ("account", use.account, use.side),
        f"Maildir {use.place.shown} (repository {_show(use.repository.name)})"
        f" {_relation(use.place, earlier.place)} of {owner}"
        f" (repository {_show(earlier.repository.name)}): {why}",
    )


def maildir_clashes(
    sides: Iterable[MaildirSide], state_dir: Path | None, state_dir_key: KeyPath | None
) -> list[Clash]:
    """Every Maildir side that overlaps an earlier one (of any account, its own other side
    included), each reported once; and the first Maildir tree that holds the state directory
    (any other that does overlaps it, so is reported already).

    ``state_dir_key`` is where the config sets the state directory, None for the default;
    ``state_dir`` None (a mistake reported already) is not checked."""
    uses = list(_uses(sides))
    clashes: list[Clash] = []
    for i, use in enumerate(uses):
        found = (_clash_of(use, earlier) for earlier in uses[:i])
        clash = next((c for c in found if c is not None), None)
        if clash is not None:
            clashes.append(clash)
    if state_dir is None:
        return clashes
    state = place_of(state_dir)
    holder = next((use for use in uses if use.place.holds(state)), None)
    if holder is not None:
        clashes.append(_state_dir_clash(holder, state, state_dir_key))
    return clashes


def _state_dir_clash(use: _MaildirUse, state: Place, key: KeyPath | None) -> Clash:
    where = (
        f"the state directory {state.shown}"
        if key is not None
        else f"the state directory {state.shown} (the default; set general.state_dir)"
    )
    return Clash(
        key if key is not None else ("repository", use.repository.name, "path"),
        f"{where} {_relation(state, use.place)} of account"
        f" {_show(use.account)} (repository {_show(use.repository.name)}): mailtide would sync"
        " its own state database as mail; keep the state directory outside every Maildir",
    )


def _file_name_key(name: str) -> str:
    """Names that are one file where the file system ignores case and Unicode normalisation
    (macOS, Windows shares, vfat) have one key (Unicode's canonical caseless match)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def state_file_clashes(names: Iterable[str]) -> list[Clash]:
    """Account names whose state files (``<state_dir>/<name>.sqlite``, see
    ``StateDB.for_account``) would be one file, or whose file names would be too long."""
    clashes: list[Clash] = []
    seen: dict[str, str] = {}
    for name in names:
        size = len(name.encode())
        if size > MAX_ACCOUNT_NAME_BYTES:
            clashes.append(
                Clash(
                    ("account", name),
                    f"account name is {size} bytes long; at most {MAX_ACCOUNT_NAME_BYTES} (UTF-8),"
                    " since it names the account's state file",
                )
            )
        earlier = seen.setdefault(_file_name_key(name), name)
        if earlier != name:
            clashes.append(
                Clash(
                    ("account", name),
                    f"account {_show(name)} and account {_show(earlier)} differ only in case"
                    f" (or accents' encoding): their state files {name}.sqlite and"
                    f" {earlier}.sqlite are one file where the file system ignores case;"
                    " rename one of them",
                )
            )
    return clashes
