"""What a Maildir store says it read (``MaildirStore.seen``, for the quiet check's proof) for
a folder the run wrote to: the stamp the run recorded after its writes (``stamped``), never the
one its status gave before them, and nothing at all where no stamp was recorded."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mailtide.stores.maildir import MaildirSettings, MaildirStore
from mailtide.stores.maildir.stamp import folder_stamp
from stores.maildir.mdstore_helpers import incoming, message


def settled(folder: Path) -> str:
    deadline = time.monotonic() + 5
    while (stamp := folder_stamp(str(folder))) is None:
        assert time.monotonic() < deadline, "the folder's times never settled"
        time.sleep(0.02)
    return stamp


async def test_a_folder_written_is_seen_with_the_stamp_recorded_after_the_writes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Mail"
    for name in ("INBOX", "Archive"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(root / name / sub)
    for name in ("INBOX", "Archive"):
        settled(root / name)
    store = MaildirStore(MaildirSettings(str(root), "fs"))
    await store.connect()
    await store.list_folders()
    boxes = {name: await store.open(name) for name in ("INBOX", "Archive")}
    read = {name: await box.status() for name, box in boxes.items()}
    before = store.seen()
    assert before is not None
    assert {stamp for _, _, stamp in before["opened"]} == {s.stamp for s in read.values()}

    await boxes["INBOX"].append([incoming(message(1))])
    for box in boxes.values():
        await box.close()
    assert store.seen() is None  # written, and no stamp recorded for it

    after = settled(root / "INBOX")
    assert after != read["INBOX"].stamp
    store.stamped("INBOX", after)
    facts = store.seen()
    assert facts is not None
    opened = {path: (validity, stamp) for path, validity, stamp in facts["opened"]}
    assert opened[str(root / "INBOX")] == (read["INBOX"].validity, after)
    assert opened[str(root / "Archive")] == (read["Archive"].validity, read["Archive"].stamp)
