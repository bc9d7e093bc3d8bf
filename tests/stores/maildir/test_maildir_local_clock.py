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
from mailtide.stores.maildir.stamp import CLOCK_SLACK, EVENT_MARGIN, SECOND, folder_stamp

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
def test_a_stamp_a_few_jiffies_old_proves_only_on_a_local_clock(
    monkeypatch: pytest.MonkeyPatch, kind: str | None, proves: bool
) -> None:
    changed = 1_790_000_000 * SECOND + 300_000_000  # the last change: 0.3 s into a second
    monkeypatch.setattr(local_clock, "_types", {} if kind is None else {7: kind})
    monkeypatch.setattr(stamp.os, "stat", lambda path: Times(changed, changed))

    def no_keywords(path: str) -> None:
        raise FileNotFoundError(path)

    monkeypatch.setattr(stamp.os, "lstat", no_keywords)
    assert (folder_stamp("INBOX", changed + 2 * EVENT_MARGIN) is not None) is proves
    assert (folder_stamp("INBOX", changed + 3 * CLOCK_SLACK) is not None) is proves
    assert folder_stamp("INBOX", changed + SECOND + CLOCK_SLACK) is not None  # any clock
    assert folder_stamp("INBOX", changed + EVENT_MARGIN // 2) is None  # too recent for any
    assert folder_stamp("INBOX", changed + EVENT_MARGIN) is None


def test_a_change_is_never_stamped_before_the_coarse_clock_read_ahead_of_it(
    tmp_path: Path,
) -> None:
    """What the local clock rule stands on, checked on this machine's file system: a change
    after the coarse clock was read gets a time no earlier than that reading."""
    for sub in ("new", "cur"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "m").write_bytes(b"x")
    for i in range(500):
        _, coarse = stamp._now()
        here, there = ("new", "cur") if i % 2 == 0 else ("cur", "new")
        os.rename(tmp_path / here / "m", tmp_path / there / "m")
        assert os.stat(tmp_path / there).st_mtime_ns >= coarse
        assert os.stat(tmp_path / here).st_ctime_ns >= coarse


def test_own_writes_settle_the_margin_and_a_worst_case_jiffy_after_and_then_prove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for a sync's own writes is the margin plus a jiffy at its coarsest (HZ=100),
    not the coarse clock's step the kernel reports (4 ms at HZ=250): that clock was seen to
    lag the real time by 4.8 ms there.  A stamp read once the wait is over proves the folder,
    every time."""
    for sub in ("new", "cur"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "m").write_bytes(b"x")
    monkeypatch.setattr(local_clock, "_types", None)  # this machine's own mounts, read again
    if not local_clock.stamps_finely(os.stat(tmp_path).st_dev):
        pytest.skip("this file system keeps whole seconds or another machine's clock")
    for i in range(20):
        here, there = ("new", "cur") if i % 2 == 0 else ("cur", "new")
        os.rename(tmp_path / here / "m", tmp_path / there / "m")
        latest = max(os.stat(tmp_path / d).st_ctime_ns for d in ("new", "cur"))
        at = stamp.settled_after(str(tmp_path))
        assert at == latest + EVENT_MARGIN + stamp.JIFFY + 1
        while stamp.time.time_ns() < at:
            pass
        assert folder_stamp(str(tmp_path)) is not None
