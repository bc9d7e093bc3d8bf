"""What an IMAP store reads before a sync decides a mailbox is unchanged, kept as it was read
for the quiet check (quiet/) to compare: the capabilities, what was enabled, and the untagged
answers to NAMESPACE and to the folder LIST with each folder's STATUS (LIST-STATUS).

A quick sync decides a mailbox of a QRESYNC or CONDSTORE server is unchanged from its STATUS
alone (UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ); which folders there are, and what they
are called, comes from the same LIST and from NAMESPACE.  Two sessions that get the same bytes
for these answers were given the same input, whatever the answers mean.  This module parses
nothing and does no I/O: the store (store.py) and the quiet check's blocking probe each feed
it the responses they read, framed alike (lines without their CRLF, literals as bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

# The untagged answers a quiet sync's decisions rest on (the rest, such as "* OK", are not)
KINDS = frozenset({"NAMESPACE", "LIST", "STATUS"})


def status_items(capabilities: frozenset[str]) -> str:
    """The STATUS items a sync needs (HIGHESTMODSEQ where the server has CONDSTORE)."""
    return "UIDVALIDITY UIDNEXT MESSAGES" + (
        " HIGHESTMODSEQ" if "CONDSTORE" in capabilities else ""
    )


def list_returns(capabilities: frozenset[str]) -> list[str]:
    """What the folder LIST asks for beyond names: the STATUS of each (LIST-STATUS), and
    the special-use attributes, which an extended LIST (Dovecot's) leaves out unless asked."""
    returns = []
    if "SPECIAL-USE" in capabilities and "LIST-EXTENDED" in capabilities:
        returns.append("SPECIAL-USE")
    if "LIST-STATUS" in capabilities:
        returns.append(f"STATUS ({status_items(capabilities)})")
    return [f"RETURN ({' '.join(returns)})"] if returns else []


def enable_wanted(capabilities: frozenset[str]) -> str | None:
    """What a session ENABLEs: QRESYNC (else CONDSTORE) where the server has it."""
    if "ENABLE" not in capabilities:
        return None
    wanted = "QRESYNC" if "QRESYNC" in capabilities else "CONDSTORE"
    return wanted if wanted in capabilities else None


def kind_of(first_line: bytes) -> str:
    """The kind of an untagged response (``* LIST ...`` -> "LIST"; "" for anything else)."""
    if not first_line.startswith(b"* "):
        return ""
    word = first_line[2:].split(b" ", 1)[0]
    return word.decode("ascii", "replace").upper() if word.isalpha() else ""


def response_bytes(lines: Sequence[bytes], literals: Sequence[object]) -> bytes | None:
    """One response as the server sent it: each line, then the literal it announced; None
    for a response with a literal kept on disk (a message, never a folder's name)."""
    parts = []
    for i, line in enumerate(lines):
        parts += [line, b"\r\n"]
        if i < len(literals):
            literal = literals[i]
            if not isinstance(literal, bytes | bytearray):
                return None
            parts.append(bytes(literal))
    return b"".join(parts)


# LIST attributes that say whether a mailbox got mail since some session last selected it (RFC
# 3501 6.3.8, Dovecot's "\UnMarked"): another client's SELECT changes them, a sync never
# reads them.
_MARKS = frozenset({b"\\MARKED", b"\\UNMARKED"})


def unmarked(answer: bytes) -> bytes:
    """``answer`` without the marks above, when it is a LIST answer."""
    if answer[:8].upper() != b"* LIST (":
        return answer
    end = answer.find(b")", 8)
    if end < 0:
        return answer
    kept = [a for a in answer[8:end].split() if a.upper() not in _MARKS]
    return answer[:8] + b" ".join(kept) + answer[end:]


@dataclass(frozen=True, slots=True)
class Listing:
    """What one session read: its capabilities after the login, what it enabled, and its
    answers to NAMESPACE and to the folder LIST, each as ``response_bytes`` gives it."""

    capabilities: frozenset[str]
    enabled: frozenset[str]
    namespace: tuple[bytes, ...]
    listed: tuple[bytes, ...]

    def answers(self) -> list[str]:
        return answers(self.capabilities, self.enabled, self.namespace, self.listed)


class Begun(NamedTuple):
    """A session begun before the run (quiet/early.py) for one IMAP side of an account, as the
    sync's store is given it (``ImapStore.listed_before``): the repository it reads (compared
    whole), the account's state's signature before it began, and what waits for it to end
    and gives its answers (None: none, or too old)."""

    repo: object
    state: str | None
    ended: Callable[[], Listing | None]


def answers(
    capabilities: Iterable[str],
    enabled: Iterable[str],
    namespace: Iterable[bytes],
    listed: Iterable[bytes],
) -> list[str]:
    """One session's answers as JSON strings (each byte a character: nothing is decoded, so
    nothing is lost), ``namespace`` and ``listed`` as ``response_bytes`` gives them; the order
    the server listed folders in does not count, nor LIST's marks (``unmarked``)."""
    return [
        " ".join(sorted(capabilities)),
        " ".join(sorted(enabled)),
        *(answer.decode("latin-1") for answer in namespace),
        "--",
        *sorted(unmarked(answer).decode("latin-1") for answer in listed),
    ]
