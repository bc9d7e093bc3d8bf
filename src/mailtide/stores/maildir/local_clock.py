"""Whether a file system stamps files with this machine's clock, finer than a second.

A local disk file system (ext4 with large inodes, XFS, btrfs, tmpfs) sets a file's times from
the kernel's coarse clock, in nanoseconds, one jiffy coarse: a change after a moment gets a
time no earlier than that clock read then (stamp.py reads it: a stamp a little older than it
is a proof already), where a file system that keeps whole seconds, or one stamped by another
machine's clock (NFS, SMB, FUSE: a skew of a second is common), needs a tick of its own
length to pass.  Read from ``/proc/self/mountinfo`` (the device numbers of each mount and its
type); anywhere it cannot be read, every file system is taken as coarse.
"""

from __future__ import annotations

import os

# Types whose times come from this machine's kernel clock in nanoseconds.
LOCAL = frozenset(
    {"ext4", "xfs", "btrfs", "tmpfs", "f2fs", "bcachefs", "zfs", "jfs", "nilfs2", "overlay"}
)

_types: dict[int, str] | None = None


def stamps_finely(device: int) -> bool:
    """Whether the file system of ``device`` (a ``st_dev``) is a local one of ``LOCAL``."""
    return _mount_types().get(device) in LOCAL


def _mount_types() -> dict[int, str]:
    global _types
    if _types is None:
        _types = _read_mountinfo()
    return _types


def _read_mountinfo(path: str = "/proc/self/mountinfo") -> dict[int, str]:
    """st_dev -> the file system type of each mount (``major:minor`` is field 3; the type
    follows the `` - `` separator)."""
    types: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields, sep, rest = line.partition(" - ")
                parts = fields.split()
                if not sep or len(parts) < 3 or ":" not in parts[2]:
                    continue
                major, _, minor = parts[2].partition(":")
                if not (major.isdigit() and minor.isdigit()):
                    continue
                kind = rest.split(" ", 1)[0]
                device = os.makedev(int(major), int(minor))
                # one device mounted twice with two types cannot be: the first one stands
                types.setdefault(device, kind)
    except OSError:
        return {}
    return types
