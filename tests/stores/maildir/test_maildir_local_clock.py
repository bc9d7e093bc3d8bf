"""A local file system with sub-second times proves a stamp a fraction of a second after its
last change; one that keeps whole seconds, or another machine's clock (NFS, SMB, FUSE), only
once its tick is over (stores/maildir/local_clock.py, stamp.py)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailtide.stores.maildir import local_clock, stamp
from mailtide.stores.maildir.stamp import CLOCK_SLACK, SECOND, folder_stamp

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 27 0:45 / /home/me/Mail rw,relatime - nfs4 server:/mail rw,vers=4.2
32 27 0:46 / /mnt/a\\040b rw - fuse.sshfs me@host: rw
this line is not one
33 27 x:y / /odd rw - ext4 /dev/sdb rw
"""


def test_mountinfo_names_each_devices_type(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    types = local_clock._read_mountinfo(str(info))
    assert types == {
        os.makedev(0, 21): "proc",
        os.makedev(8, 1): "ext4",
        os.makedev(0, 45): "nfs4",
        os.makedev(0, 46): "fuse.sshfs",
    }
    assert local_clock._read_mountinfo(str(tmp_path / "none")) == {}


@dataclass(frozen=True)
class Times:
    """What ``os.stat`` says of new/ and cur/ in these tests: times the test chooses."""

    st_mtime_ns: int
    st_ctime_ns: int
    st_dev: int = 7
    st_ino: int = 1
    st_mode: int = stat.S_IFDIR | 0o700


@pytest.mark.parametrize(("kind", "proves"), [("ext4", True), ("nfs4", False), (None, False)])
def test_a_stamp_a_fifth_of_a_second_old_proves_only_on_a_local_clock(
    monkeypatch: pytest.MonkeyPatch, kind: str | None, proves: bool
) -> None:
    changed = 1_790_000_000 * SECOND + 300_000_000  # the last change: 0.3 s into a second
    monkeypatch.setattr(local_clock, "_types", {} if kind is None else {7: kind})
    monkeypatch.setattr(stamp.os, "stat", lambda path: Times(changed, changed))

    def no_keywords(path: str) -> None:
        raise FileNotFoundError(path)

    monkeypatch.setattr(stamp.os, "lstat", no_keywords)
    assert (folder_stamp("INBOX", changed + 3 * CLOCK_SLACK) is not None) is proves
    assert folder_stamp("INBOX", changed + SECOND + CLOCK_SLACK) is not None  # any clock
    assert folder_stamp("INBOX", changed + CLOCK_SLACK // 2) is None  # too recent for any
