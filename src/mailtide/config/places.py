"""Where a configured path leads on this machine, whatever its spelling.

Two spellings of one directory (a symlink, ``..``, a trailing slash, a bind mount) must compare
equal, and so must two paths that do not exist yet but will be one directory once created.  So
a path is taken apart into its nearest existing directory, known by device and inode together
with its ancestors, and the names below it that do not exist yet, compared as written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

Inode = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class Place:
    """A path as the file system sees it.

    ``lineage`` holds the inodes of the nearest existing directory and of each of its
    ancestors up to ``/``, innermost first; ``missing`` the names below it that do not exist.
    """

    shown: Path  # symlinks and ".." resolved: what a message shows
    lineage: tuple[Inode, ...]
    missing: tuple[str, ...]

    def holds(self, other: Place) -> bool:
        """True when ``other`` is this place or lies inside it."""
        if not self.missing:
            return self.lineage[0] in other.lineage
        # Below a name that does not exist yet, only the same names lead inside.
        depth = len(self.missing)
        return other.lineage[0] == self.lineage[0] and other.missing[:depth] == self.missing

    def overlaps(self, other: Place) -> bool:
        """True when one of the two is the other or lies inside it."""
        return self.holds(other) or other.holds(self)


def place_of(path: Path) -> Place:
    """Where the absolute ``path`` leads: symlinks and ``..`` resolved as far as the path
    exists (the rest appended as written), then identified by inode."""
    real = Path(os.path.realpath(path))
    existing = real
    missing: list[str] = []
    while True:
        try:
            status = os.stat(existing)
            break
        except OSError:  # missing, or not searchable: compare it by name
            if existing.parent == existing:
                raise
            missing.insert(0, existing.name)
            existing = existing.parent
    lineage = [(status.st_dev, status.st_ino)]
    for parent in existing.parents:
        status = os.stat(parent)
        lineage.append((status.st_dev, status.st_ino))
    return Place(shown=real, lineage=tuple(lineage), missing=tuple(missing))
