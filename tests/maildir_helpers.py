"""Read and change a local Maildir tree directly, independently of mailtide's Maildir store.

Folder names are canonical (Unicode, "/"-separated, "INBOX").  ``layout`` is
"fs" (INBOX at <root>/INBOX, nested directories) or "maildir++" (INBOX at
<root>, folders as <root>/.A.B).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")
LETTERS = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "D": "\\Draft", "T": "\\Deleted"}


@dataclass(frozen=True, slots=True)
class LocalMessage:
    path: Path
    message_id: str
    letters: str  # the :2, info letters (sorted as on disk)
    body: bytes

    @property
    def system_flags(self) -> frozenset[str]:
        return frozenset(LETTERS[c] for c in self.letters if c in LETTERS)


def folder_dir(root: Path, layout: str, folder: str) -> Path:
    if layout == "fs":
        return root / folder
    return root if folder == "INBOX" else root / ("." + folder.replace("/", "."))


def folders(root: Path, layout: str) -> list[str]:
    """Every folder (a directory with cur/ and new/), canonical names."""
    out = []
    if layout == "fs":
        for dirpath, dirnames, _ in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in ("cur", "new", "tmp")]
            p = Path(dirpath)
            if (p / "cur").is_dir() and (p / "new").is_dir() and p != root:
                out.append(p.relative_to(root).as_posix())
    else:
        if (root / "cur").is_dir():
            out.append("INBOX")
        for entry in root.iterdir():
            if entry.name.startswith(".") and (entry / "cur").is_dir():
                out.append(entry.name[1:].replace(".", "/"))
    return sorted(out)


def messages(root: Path, layout: str, folder: str) -> list[LocalMessage]:
    d = folder_dir(root, layout, folder)
    out = []
    for sub in ("new", "cur"):
        for entry in sorted((d / sub).iterdir()):
            if entry.name.startswith("."):
                continue
            body = entry.read_bytes()
            m = _MESSAGE_ID.search(body.split(b"\n\n", 1)[0])
            letters = entry.name.split(":2,", 1)[1] if ":2," in entry.name else ""
            out.append(LocalMessage(entry, m.group(1).decode() if m else "", letters, body))
    return out


def count(root: Path, layout: str, folder: str) -> int:
    """How many messages a folder holds, read from names alone: safe while a client renames."""
    d = folder_dir(root, layout, folder)
    return sum(not n.startswith(".") for sub in ("new", "cur") for n in os.listdir(d / sub))


def by_message_id(root: Path, layout: str, folder: str) -> dict[str, LocalMessage]:
    return {m.message_id: m for m in messages(root, layout, folder)}


_counter = 0


def deliver(root: Path, layout: str, folder: str, body: bytes, letters: str = "") -> Path:
    """Write a message as a mail client would (LF line ends), creating the folder if needed."""
    global _counter
    _counter += 1
    d = folder_dir(root, layout, folder)
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    name = f"{int(time.time())}.T{os.getpid()}_{_counter}.testhost"
    data = body.replace(b"\r\n", b"\n")
    info = "".join(sorted(letters))
    path = d / "cur" / f"{name}:2,{info}" if letters else d / "new" / name
    path.write_bytes(data)
    return path


def set_letters(msg: LocalMessage, letters: str) -> Path:
    """Change a message's flags as a mail client does: rename into cur/ with new info."""
    base = msg.path.name.split(":2,", 1)[0]
    target = msg.path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}"
    os.rename(msg.path, target)
    return target


FORWARDED_LETTER = "P"  # mutt's "passed", which Dovecot and mailtide read as $Forwarded


def keyword_names(root: Path, layout: str, folder: str) -> dict[str, str]:
    """The folder's ``dovecot-keywords`` table as letter -> keyword ("0 Work" gives a -> Work);
    empty when the folder has no such file."""
    path = folder_dir(root, layout, folder) / "dovecot-keywords"
    table: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            index, _, name = line.partition(" ")
            if index.isdigit() and name:
                table[chr(ord("a") + int(index))] = name
    return table


def letter_of_keyword(root: Path, layout: str, folder: str, keyword: str) -> str:
    """The letter the folder's keyword table gives ``keyword`` (it must have one)."""
    for letter, name in keyword_names(root, layout, folder).items():
        if name.lower() == keyword.lower():
            return letter
    raise AssertionError(f"no letter for keyword {keyword!r} in {folder!r}")


def imap_flags(msg: LocalMessage, keywords: dict[str, str]) -> frozenset[str]:
    """The message's flags in IMAP terms: system flags, $Forwarded, and keywords by letter
    (``keywords`` from ``keyword_names``; a letter without a name is shown as "?<letter>")."""
    out = set(msg.system_flags)
    for c in msg.letters:
        if c == FORWARDED_LETTER:
            out.add("$Forwarded")
        elif c.islower():
            out.add(keywords.get(c, "?" + c))
    return frozenset(out)
