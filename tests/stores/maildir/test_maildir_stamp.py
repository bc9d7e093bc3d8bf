"""What a Maildir folder costs to look at: the status lists nothing and gives a stamp that
changes with every change a listing could see, and is withheld while a change could still
leave it as it is; a listing reads sizes from the names.

The stamps are taken with a moment given (``now_ns``), so the seconds are the test's own."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailtide.stores.base import MailboxError
from mailtide.stores.maildir import MaildirMailbox, MaildirStore, local_clock
from mailtide.stores.maildir.read_ahead import STILL
from mailtide.stores.maildir.stamp import SECOND, folder_stamp
from stores.maildir.listing_spy import record_listings
from stores.maildir.mdstore_helpers import incoming, message

LATER = 2**62  # ns: a moment (in 2116) long after any time the test makes: every stamp is given


@pytest.fixture
async def box(store: MaildirStore) -> MaildirMailbox:
    await store.create_folder("Archive/2024")
    return await store.open("Archive/2024")


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The new/ and cur/ directories read while the test runs."""
    return record_listings(monkeypatch)


async def test_the_status_lists_no_message_directory(
    box: MaildirMailbox, listed: list[str]
) -> None:
    await box.append([incoming(message(i)) for i in range(3)])
    listed.clear()
    status = await box.status()
    assert listed == []
    assert status.count is None  # it would cost a listing
    time.sleep(STILL * 2)  # a folder that changed just now is listed again until it is still
    assert len(await box.snapshot()) == 3
    assert sorted(os.path.basename(p) for p in listed) == ["cur", "new"]  # one listing


async def test_a_listing_takes_sizes_from_the_names_and_stats_only_a_file_without_one(
    box: MaildirMailbox,
) -> None:
    """A name's ``,S=`` is believed (here it says 5 for a longer file: no stat was made for
    it); a name without one gets its file's size."""
    Path(box.path, "cur", "1700000000.M1P1Q1.host,S=5:2,S").write_bytes(b"x" * 100)
    Path(box.path, "new", "1700000000.M2P1Q2.host").write_bytes(b"y" * 42)
    Path(box.path, "cur", "1700000000.M3P1Q3.host:2,").write_bytes(b"z" * 7)
    sizes = {m.id: m.size for m in await box.snapshot()}
    assert sizes == {
        "1700000000.M1P1Q1.host,S=5": 5,
        "1700000000.M2P1Q2.host": 42,
        "1700000000.M3P1Q3.host": 7,
    }


def _newest_second(folder: str) -> int:
    """The second of the newest time a stamp of ``folder`` holds."""
    times = [
        t
        for sub in ("new", "cur")
        for st in [os.stat(os.path.join(folder, sub))]
        for t in (st.st_mtime_ns, st.st_ctime_ns)
    ]
    return max(times) // SECOND


async def test_a_stamp_is_given_only_once_its_times_lie_in_an_earlier_second(
    box: MaildirMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system whose tick is a second (one not known to keep this machine's clock
    finely: test_maildir_local_clock.py has the other kind)."""
    monkeypatch.setattr(local_clock, "_types", {})
    await box.append([incoming(message(1))])
    newest = _newest_second(box.path)
    assert folder_stamp(box.path, now_ns=newest * SECOND + SECOND // 2) is None  # same second
    # the next second, but within the slack for the kernel's coarse clock
    assert folder_stamp(box.path, now_ns=(newest + 1) * SECOND + SECOND // 20) is None
    assert folder_stamp(box.path, now_ns=(newest + 1) * SECOND + SECOND // 5) is not None


async def test_a_time_in_whole_seconds_is_taken_for_a_two_second_tick(
    box: MaildirMailbox,
) -> None:
    """FAT keeps two-second times: a time with no fraction waits for the tick after next."""
    even = (_newest_second(box.path) // 2 + 5) * 2  # in the future, so it is the newest time
    os.utime(os.path.join(box.path, "cur"), ns=(even * SECOND, even * SECOND))
    assert folder_stamp(box.path, now_ns=(even + 1) * SECOND + SECOND // 2) is None
    assert folder_stamp(box.path, now_ns=(even + 2) * SECOND + SECOND // 2) is not None


def _deliver(folder: str) -> None:
    Path(folder, "new", "1700000000.M9P9Q9.host,S=3").write_bytes(b"new")


def _flag(folder: str) -> None:
    (name,) = os.listdir(os.path.join(folder, "cur"))
    os.rename(os.path.join(folder, "cur", name), os.path.join(folder, "cur", name + "F"))


def _read_new(folder: str) -> None:
    """A mail reader moves a new message to cur/, its flags unchanged."""
    (name,) = os.listdir(os.path.join(folder, "new"))
    os.rename(os.path.join(folder, "new", name), os.path.join(folder, "cur", name + ":2,"))


def _delete(folder: str) -> None:
    (name,) = os.listdir(os.path.join(folder, "cur"))
    os.unlink(os.path.join(folder, "cur", name))


def _added_behind_an_mtime_put_back(folder: str) -> None:
    cur = os.path.join(folder, "cur")
    before = os.stat(cur)
    Path(cur, "1700000000.M8P8Q8.host,S=3:2,S").write_bytes(b"add")
    os.utime(cur, ns=(before.st_atime_ns, before.st_mtime_ns))


def _replaced_directory(folder: str) -> None:
    """cur/ swapped for a copy of itself (times copied too) holding one more message."""
    cur = os.path.join(folder, "cur")
    shutil.copytree(cur, cur + ".copy")
    Path(cur + ".copy", "1700000000.M7P7Q7.host,S=3:2,S").write_bytes(b"add")
    shutil.copystat(cur, cur + ".copy")
    os.rename(cur, cur + ".old")
    os.rename(cur + ".copy", cur)
    shutil.rmtree(cur + ".old")


def _keywords_replaced(folder: str) -> None:
    Path(folder, "dovecot-keywords.tmp").write_text("0 Work\n")
    os.replace(Path(folder, "dovecot-keywords.tmp"), Path(folder, "dovecot-keywords"))


def _keywords_edited_in_place(folder: str) -> None:
    with open(os.path.join(folder, "dovecot-keywords"), "a") as f:
        f.write("1 Home\n")


CHANGES: dict[str, Callable[[str], None]] = {
    "delivered": _deliver,
    "flag renamed": _flag,
    "read by a mail reader": _read_new,
    "deleted": _delete,
    "mtime put back": _added_behind_an_mtime_put_back,
    "cur/ replaced": _replaced_directory,
    "keywords replaced": _keywords_replaced,
    "keywords edited": _keywords_edited_in_place,
}


@pytest.mark.parametrize("change", CHANGES)
async def test_every_change_a_listing_can_see_changes_the_stamp(
    change: str, box: MaildirMailbox
) -> None:
    Path(box.path, "cur", "1700000000.M1P1Q1.host,S=3:2,S").write_bytes(b"one")
    Path(box.path, "new", "1700000000.M2P1Q2.host,S=3").write_bytes(b"two")
    Path(box.path, "dovecot-keywords").write_text("0 Work\n")
    before = folder_stamp(box.path, now_ns=LATER)
    # what a sync does without changing the listing leaves it as it was
    assert len(await box.snapshot()) == 2
    await box.status()
    Path(box.path, "tmp", "1700000000.M3P1Q3.host").write_bytes(b"being written")
    assert folder_stamp(box.path, now_ns=LATER) == before is not None
    CHANGES[change](box.path)
    assert folder_stamp(box.path, now_ns=LATER) != before


async def test_a_folder_whose_cur_is_gone_has_no_stamp_but_an_error(box: MaildirMailbox) -> None:
    shutil.rmtree(os.path.join(box.path, "cur"))
    with pytest.raises(MailboxError, match="cannot be read"):
        folder_stamp(box.path, now_ns=LATER)
    with pytest.raises(MailboxError, match="cannot be read"):
        await box.status()
