"""What an account's folder tree is told: how names map between the sides, what a folder
deleted on one side means, and whether only subscribed server folders count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mailtide.core.folder_rules import FolderRules
from mailtide.core.model import Side

FolderDelete = Literal["propagate-if-empty", "propagate", "never"]
FOLDER_DELETE_MODES: tuple[FolderDelete, ...] = ("propagate-if-empty", "propagate", "never")


def _same(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class FolderNaming:
    """The two name mappings (canonical names): ``local`` gives the local name of a server
    folder (None: that folder is not synced), ``remote`` the server name of a local folder.
    They must round-trip (``remote(local(n)) == n``); the config's rules check that."""

    local: Callable[[str], str | None] = field(default=_same)
    remote: Callable[[str], str | None] = field(default=_same)

    def on(self, side: Side, name: str) -> str | None:
        """The name on ``side`` of the folder called ``name`` on the other side."""
        return self.local(name) if side is Side.NEAR else self.remote(name)


@dataclass(frozen=True, slots=True)
class FolderPolicy:
    """``delete``: a folder deleted on one side is deleted on the other only when it is empty
    there ("propagate-if-empty"), also with its messages ("propagate": those that were synced
    before, within the mass-delete guard), or never; otherwise it is reported and left alone.
    ``subscribed_only``: a server folder not subscribed to is left out (never deleted).
    ``rules``: the account's folder rules; when given, the naming is theirs, bound to the
    server's folder list of each run (``naming`` is for tests that give the two functions)."""

    naming: FolderNaming = field(default_factory=FolderNaming)
    rules: FolderRules | None = None
    delete: FolderDelete = "propagate-if-empty"
    subscribed_only: bool = False
