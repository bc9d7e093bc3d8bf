"""The local Maildir tree as a mail client changes it: flag renames, deletions, moves between
folders, deliveries (tmp/ then rename into new/, as an MDA does), and what arrived in new/.

Folders are the bench's flat ASCII ones (INBOX, Receipts, Travel), which sit at
``root/NAME`` in mailtide's ``fs`` layout and in OfflineIMAP's alike."""

from __future__ import annotations

import os
import random
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

_UID = re.compile(r",U=(\d+)")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")


@dataclass(frozen=True, slots=True)
class LocalMessage:
    """A message file the server has (its name carries the server UID, ``,U=``)."""

    path: Path
    uid: int
    message_id: str


def message_id_of(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            head = f.read(16384).split(b"\n\n", 1)[0]
    except FileNotFoundError:
        return None
    m = _MESSAGE_ID.search(head)
    return m.group(1).decode() if m else None


class LocalTree:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self._delivered = 0

    def folder(self, name: str) -> Path:
        return self.root / name

    def unflagged(self, folder: str) -> list[LocalMessage]:
        """The messages of ``folder``'s cur/ that the server has and that are not flagged,
        shuffled: each event takes one, so no two events touch the same message."""
        found = []
        for entry in os.scandir(self.folder(folder) / "cur"):
            base, _, letters = entry.name.partition(":2,")
            m = _UID.search(base)
            if m is None or "F" in letters:
                continue
            mid = message_id_of(Path(entry.path))
            if mid is not None:
                found.append(LocalMessage(Path(entry.path), int(m.group(1)), mid))
        self.rng.shuffle(found)
        return found

    def names_in_new(self, folder: str) -> set[str]:
        return set(os.listdir(self.folder(folder) / "new"))

    # --- a mail client's changes ------------------------------------------------------

    @staticmethod
    def add_flag(message: LocalMessage, letter: str = "F") -> None:
        base, _, letters = message.path.name.partition(":2,")
        target = message.path.parent / f"{base}:2,{''.join(sorted(letters + letter))}"
        os.rename(message.path, target)

    @staticmethod
    def delete(message: LocalMessage) -> None:
        os.unlink(message.path)

    def move(self, message: LocalMessage, folder: str) -> None:
        """As mutt or notmuch move a message: a rename into the other folder's cur/."""
        os.rename(message.path, self.folder(folder) / "cur" / message.path.name)

    def deliver(self, folder: str, message: bytes) -> None:
        """Write to tmp/, then rename into new/ (LF line ends, as on disk)."""
        self._delivered += 1
        name = f"{int(time.time())}.B{os.getpid()}_{self._delivered}.{socket.gethostname()}"
        tmp = self.folder(folder) / "tmp" / name
        tmp.write_bytes(message.replace(b"\r\n", b"\n"))
        os.rename(tmp, self.folder(folder) / "new" / name)

    def count(self) -> int:
        """Message files in the whole tree."""
        total = 0
        for path, dirs, files in os.walk(self.root):
            if os.path.basename(path) in ("cur", "new"):
                total += len(files)
                dirs.clear()
        return total
