"""IMAP flags <-> Maildir info letters, and the folder's Dovecot keyword table.

System flags have fixed uppercase letters (P is mutt's "passed", which we
map to ``$Forwarded``).  Other keywords get lowercase letters a..z through
the ``dovecot-keywords`` file in the folder directory ("<index> <keyword>"
per line, index 0 = 'a'), so mutt, Dovecot and we agree on them.  Letters in
the info are always sorted in ASCII order (uppercase before lowercase).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from mailtide.core.model import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, Flags, fold_flag
from mailtide.private import create_file
from mailtide.stores.maildir.filenames import temp_path
from mailtide.stores.maildir.listing import read_regular

log = structlog.get_logger("mailtide.stores.maildir")

FORWARDED = "$Forwarded"
KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26

LETTER_OF_FLAG: dict[str, str] = {
    SEEN: "S",
    ANSWERED: "R",
    FLAGGED: "F",
    DRAFT: "D",
    DELETED: "T",
    FORWARDED: "P",
}
FLAG_OF_LETTER: dict[str, str] = {v: k for k, v in LETTER_OF_FLAG.items()}
_LETTER_OF_FLAG_FOLDED = {fold_flag(k): v for k, v in LETTER_OF_FLAG.items()}


def _storable(keyword: str) -> bool:
    # the keyword file is line- and space-separated; IMAP atoms cannot hold these anyway
    return bool(keyword) and not keyword.startswith("\\") and not any(c.isspace() for c in keyword)


@dataclass(frozen=True, slots=True)
class Keywords:
    """A folder's keyword table: ``names[i]`` is the keyword of letter chr(ord('a') + i)."""

    names: tuple[str | None, ...] = ()

    def keyword_of(self, letter: str) -> str | None:
        i = ord(letter) - ord("a")
        return self.names[i] if 0 <= i < len(self.names) else None

    def letter_of(self, keyword: str) -> str | None:
        folded = fold_flag(keyword)
        for i, name in enumerate(self.names):
            if name is not None and fold_flag(name) == folded:
                return chr(ord("a") + i)
        return None

    def extended(
        self, keywords: Iterable[str], reserved: Iterable[str] = ()
    ) -> tuple[Keywords, list[str]]:
        """This table with letters for ``keywords`` added; also the keywords that did not fit.
        ``reserved`` letters (carried by files though the table does not name them) are never
        given to a new keyword."""
        names = list(self.names)
        for letter in reserved:
            i = ord(letter) - ord("a")
            names.extend([None] * (i + 1 - len(names)))
        held = {ord(letter) - ord("a") for letter in reserved}
        dropped: list[str] = []
        for kw in sorted(set(keywords)):
            if fold_flag(kw) in _LETTER_OF_FLAG_FOLDED or not _storable(kw):
                continue
            if any(n is not None and fold_flag(n) == fold_flag(kw) for n in names):
                continue
            free = next((i for i, n in enumerate(names) if n is None and i not in held), None)
            if free is not None:
                names[free] = kw
            else:
                if len(names) >= MAX_KEYWORDS:
                    dropped.append(kw)
                    continue
                names.append(kw)
        return Keywords(tuple(names)), dropped


def unstorable(flags: Iterable[str], table: Keywords) -> frozenset[str]:
    """The keywords among ``flags`` a folder with this table cannot hold: not storable at all,
    or new while all 26 letters are taken."""
    free = MAX_KEYWORDS - sum(1 for n in table.names if n is not None)
    out = set()
    for flag in sorted(flags):
        if flag.startswith("\\") or fold_flag(flag) in _LETTER_OF_FLAG_FOLDED:
            continue
        if not _storable(flag):
            out.add(flag)
        elif table.letter_of(flag) is None:
            if free > 0:
                free -= 1
            else:
                out.add(flag)
    return frozenset(out)


def read_keywords(folder_dir: str) -> Keywords:
    """The folder's keyword table; an absent or unreadable file is an empty table."""
    try:
        text = read_regular(os.path.join(folder_dir, KEYWORDS_FILE)).decode("utf-8", "replace")
    except OSError:  # also a symlink or a FIFO in its place
        return Keywords()
    names: list[str | None] = []
    for line in text.splitlines():
        index, _, name = line.strip().partition(" ")
        if not index.isdigit() or not name:
            continue
        i = int(index)
        if i >= MAX_KEYWORDS:
            continue
        names.extend([None] * (i + 1 - len(names)))
        names[i] = name.strip()
    return Keywords(tuple(names))


def write_keywords(
    folder_dir: str, keywords: Keywords, replaced: Callable[[str], None] | None = None
) -> None:
    """Replace the keyword file atomically (temp file, fsync, rename); ``replaced`` is told
    its path once it is."""
    final = os.path.join(folder_dir, KEYWORDS_FILE)
    tmp = temp_path(folder_dir)
    text = "".join(f"{i} {name}\n" for i, name in enumerate(keywords.names) if name is not None)
    try:
        with create_file(tmp) as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, final)
        if replaced is not None:
            replaced(final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def ensure_keywords(
    folder_dir: str,
    flags: Iterable[str],
    reserved: Iterable[str] = (),
    replaced: Callable[[str], None] | None = None,
) -> Keywords:
    """The folder's table, extended on disk with letters for any new keyword in ``flags``
    (never one of the ``reserved`` letters); ``replaced`` as in ``write_keywords``."""
    current = read_keywords(folder_dir)
    wanted = [f for f in flags if not f.startswith("\\") and f not in LETTER_OF_FLAG]
    table, dropped = current.extended(wanted, reserved)
    if dropped:
        log.warning(
            "maildir.keywords_dropped",
            folder=folder_dir,
            keywords=dropped,
            reason=f"a Maildir folder holds at most {MAX_KEYWORDS} keywords",
        )
    if table != current:
        write_keywords(folder_dir, table, replaced)
    return table


def is_keyword(flag: str) -> bool:
    """A keyword this store keeps as a letter a..z (not a system flag, not $Forwarded = P)."""
    return not flag.startswith("\\") and fold_flag(flag) not in _LETTER_OF_FLAG_FOLDED


def unnamed_letters(letters: str, keywords: Keywords) -> set[str]:
    """The keyword letters among ``letters`` that the table does not name."""
    return {c for c in letters if "a" <= c <= "z" and keywords.keyword_of(c) is None}


def flags_of_letters(letters: str, keywords: Keywords) -> Flags:
    """IMAP flags for the info letters; unknown letters are ignored (and kept on rename)."""
    out: set[str] = set()
    for letter in letters:
        flag = FLAG_OF_LETTER.get(letter)
        if flag is None and "a" <= letter <= "z":
            flag = keywords.keyword_of(letter)
        if flag is not None:
            out.add(flag)
    return frozenset(out)


def letters_of_flags(flags: Iterable[str], keywords: Keywords, keep: str = "") -> str:
    """Sorted info letters for ``flags``; ``keep`` holds letters we do not understand (preserved).

    A keyword without a letter in ``keywords`` is left out: callers extend the
    table first (``ensure_keywords``).
    """
    letters = {c for c in keep if not _known_letter(c, keywords)}
    for flag in flags:
        letter = LETTER_OF_FLAG.get(flag) or _LETTER_OF_FLAG_FOLDED.get(fold_flag(flag))
        if letter is None and not flag.startswith("\\"):
            letter = keywords.letter_of(flag)
        if letter is not None:
            letters.add(letter)
    return "".join(sorted(letters))


def _known_letter(letter: str, keywords: Keywords) -> bool:
    return letter in FLAG_OF_LETTER or keywords.keyword_of(letter) is not None
