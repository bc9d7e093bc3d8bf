"""The folder rules of one account: which folders take part, and each one's name on the
other side.

Names on both sides are canonical (Unicode, "/"-separated, "INBOX" for the inbox); the
*server* side is the account's remote repository, the *local* side its local one.

From a server name to a local name, the first of these that applies:

1. ``map_special``: a folder the server marks ``\\Sent``, ``\\Drafts``, ``\\Trash``,
   ``\\Junk`` or ``\\Archive`` (RFC 6154) is ``Sent``, ``Drafts``, ``Trash``, ``Junk`` or
   ``Archive`` locally, whatever the server calls it;
2. the first rename rule whose ``from`` matches the whole server name (``RenameRule``);
3. the same name.

The inbox stays ``INBOX`` on both sides.  A folder takes part when every filter selects
it: ``server_filters`` (the account's and the remote repository's ``folders.include`` /
``folders.exclude``) on its server name, ``local_filters`` (the local repository's) on its
local name.

The reverse, local name -> server name, is derived, never configured: the server folder
whose local name it is, else (a folder new locally) the first candidate a rename rule's
reverse or the name itself gives that the forward rules turn back into the same local
name.  So every name either round-trips or has no counterpart, and ``check`` names every
folder of the real lists that does not: two server folders with one local name, a local
name that cannot be a folder, a local folder without a server name (one the server
filters leave out, or one no rule can make).

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mailtide.core.folder_filter import FolderFilter
from mailtide.core.names import BadFolderName, canonical, check_name
from mailtide.core.rename_rule import RenameRule

# RFC 6154 attributes mapped by map_special, and the local name each gets.
SPECIAL_NAMES: dict[str, str] = {
    "\\Sent": "Sent",
    "\\Drafts": "Drafts",
    "\\Trash": "Trash",
    "\\Junk": "Junk",
    "\\Archive": "Archive",
}

ServerFolders = Mapping[str, str | None]
"""The server's folders: canonical name -> its special-use attribute (``\\Sent``) or None."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a server folder goes: ``local`` None when it is left out; ``why`` says which
    rule named it (``folders.rename[2]``) or left it out, for a person."""

    local: str | None
    why: str


def _shown(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class FolderRules:
    """An account's folder rules; see the module docstring.  The default keeps every
    folder under its own name."""

    server_filters: tuple[FolderFilter, ...] = ()
    local_filters: tuple[FolderFilter, ...] = ()
    renames: tuple[RenameRule, ...] = ()
    map_special: bool = False

    # -- server -> local ---------------------------------------------------------------

    def named(self, server: str, special_use: str | None = None) -> Placement:
        """The local name the rules give ``server``, before any filter."""
        server = canonical(server)
        if server == "INBOX":
            return Placement("INBOX", "the inbox")
        if self.map_special and special_use in SPECIAL_NAMES:
            return Placement(SPECIAL_NAMES[special_use], f"map_special ({special_use})")
        for number, rule in enumerate(self.renames, 1):
            local = rule.local_name(server)
            if local is not None:
                return Placement(canonical(local), f"folders.rename[{number}]")
        return Placement(server, "same name")

    def place(self, server: str, special_use: str | None = None) -> Placement:
        """The local name of ``server``, or None (with the filter that leaves it out)."""
        for f in self.server_filters:
            why = f.left_out_by(canonical(server))
            if why is not None:
                return Placement(None, f"left out by {why}")
        named = self.named(server, special_use)
        assert named.local is not None
        for f in self.local_filters:
            why = f.left_out_by(named.local)
            if why is not None:
                return Placement(None, f"local name {_shown(named.local)} left out by {why}")
        return named

    def to_local(self, server: str, special_use: str | None = None) -> str | None:
        """The local name of server folder ``server``; None when it is left out."""
        return self.place(server, special_use).local

    # -- local -> server ---------------------------------------------------------------

    def candidates(self, local: str) -> list[str]:
        """Server names that may turn into ``local``, by rule order, then the name itself
        (not yet checked against the forward rules)."""
        found = [s for rule in self.renames if (s := rule.server_name(local)) is not None]
        return [canonical(s) for s in dict.fromkeys([*found, local])]

    def to_server(self, local: str, server_folders: ServerFolders | None = None) -> str | None:
        """The server name of local folder ``local``; None when it has none (left out, or
        not mappable).  ``server_folders``: the server's real folders, which the reverse of
        ``map_special`` and of a lower-cased group needs."""
        return self.bind(server_folders or {}).to_server(local)

    def bind(self, server_folders: ServerFolders) -> FolderMap:
        """The two directions as plain functions, over the server's real folder list."""
        return FolderMap(self, dict(server_folders))

    # -- the check ---------------------------------------------------------------------

    def check(self, server_folders: ServerFolders, local_folders: Iterable[str]) -> list[str]:
        """One line for each folder of the two real lists whose name does not round-trip
        (each line names the folders and the rules involved); empty when all do."""
        return self.bind(server_folders).problems(local_folders)


@dataclass(frozen=True, slots=True)
class FolderMap:
    """``FolderRules`` over one server folder list: ``to_local`` and ``to_server``."""

    rules: FolderRules
    server_folders: dict[str, str | None]
    # local name -> the server folders (with why) that the rules give it
    _owners: dict[str, list[tuple[str, str]]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        owners: dict[str, list[tuple[str, str]]] = {}
        for server, use in sorted(self.server_folders.items()):
            placed = self.rules.place(server, use)
            if placed.local is not None:
                owners.setdefault(placed.local, []).append((canonical(server), placed.why))
        object.__setattr__(self, "_owners", owners)

    def to_local(self, server: str) -> str | None:
        """The local name of server folder ``server`` (its special use from the list)."""
        return self.rules.to_local(server, self.server_folders.get(server))

    def to_server(self, local: str) -> str | None:
        """The server name of local folder ``local``; None when it has none."""
        local = canonical(local)
        if any(f.left_out_by(local) for f in self.rules.local_filters):
            return None
        owners = self._owners.get(local, [])
        if owners:
            return owners[0][0] if len(owners) == 1 else None
        for server in self.rules.candidates(local):
            if server not in self.server_folders and self.rules.to_local(server) == local:
                return server
        return None

    def problems(self, local_folders: Iterable[str]) -> list[str]:
        """See ``FolderRules.check``."""
        return self.collisions() + self.unmapped(local_folders)

    def collisions(self) -> list[str]:
        """One line for each server folder the rules give a local name that another server
        folder has too, or that cannot be a folder: syncing those would mix two folders."""
        lines: list[str] = []
        for local, owners in sorted(self._owners.items()):
            lines += self._owner_problems(local, owners)
        return lines

    def unmapped(self, local_folders: Iterable[str]) -> list[str]:
        """One line for each of ``local_folders`` that has no server name (and that the local
        filters do not leave out): its mail stays local."""
        lines: list[str] = []
        for local in sorted({canonical(n) for n in local_folders}):
            if local in self._owners or self.to_server(local) is not None:
                continue
            if any(f.left_out_by(local) for f in self.rules.local_filters):
                continue
            lines.append(self._unmapped(local))
        return lines

    def _owner_problems(self, local: str, owners: list[tuple[str, str]]) -> list[str]:
        try:
            check_name(local)
        except BadFolderName as e:
            return [
                f"server folder {_shown(s)} would be local folder {_shown(local)} ({why}),"
                f" which cannot be a folder: {e}"
                for s, why in owners
            ]
        if len(owners) < 2:
            return []
        both = " and ".join(f"{_shown(s)} ({why})" for s, why in owners)
        return [
            f"server folders {both} would all be local folder {_shown(local)}: change"
            " folders.rename or exclude all but one of them"
        ]

    def _unmapped(self, local: str) -> str:
        """Why local folder ``local`` has no server name."""
        for server in self.rules.candidates(local):
            named = self.rules.named(server)
            if named.local != local:
                continue
            placed = self.rules.place(server, self.server_folders.get(server))
            if placed.local is not None:
                return (
                    f"local folder {_shown(local)} would be server folder {_shown(server)}, but"
                    f" that one is local folder {_shown(placed.local)} ({placed.why}): change"
                    " folders.rename"
                )
            return (
                f"local folder {_shown(local)} would be server folder {_shown(server)}, which"
                f" is {placed.why}: add {_shown(local)} to the local repository's"
                " folders.exclude to leave it out, or change the rules"
            )
        return (
            f"local folder {_shown(local)} has no server name: no folders.rename rule makes it"
            " from a server name, and the same name on the server would be local folder"
            f" {_shown(self.rules.named(local).local or '?')}: change folders.rename"
        )
