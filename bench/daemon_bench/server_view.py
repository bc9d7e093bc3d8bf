"""What the server holds, seen by another client (stdlib imaplib), cheap enough to ask every
10 ms: the flags of one UID, the UIDs that arrived since a UIDNEXT and their Message-IDs.

Each folder watched has a connection of its own, EXAMINEd (read-only: watching changes
nothing).  Every look starts with a NOOP, after which Dovecot's view of the mailbox includes
what other sessions did; the untagged responses imaplib collects are dropped before each
command, so an answer holds only what that command asked."""

from __future__ import annotations

import contextlib
import imaplib
import re

import imap_helpers as srv
from daemon_bench.lab import Server

_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")
_STATUS = re.compile(rb"\(([^)]*)\)\s*$")


def quoted(folder: str) -> str:
    """An ASCII folder name as an IMAP quoted string (the bench's folders are ASCII)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ServerView:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._examined: dict[str, imaplib.IMAP4] = {}
        self._stack = contextlib.ExitStack()
        self._plain = self._stack.enter_context(srv.session(server))  # STATUS, APPEND

    def close(self) -> None:
        self._stack.close()
        self._examined.clear()

    def __enter__(self) -> ServerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- looks -----------------------------------------------------------------------

    def flags(self, folder: str, uid: int) -> frozenset[str] | None:
        """The flags of ``uid`` in ``folder`` now; None once it is gone (expunged)."""
        c = self._fresh(folder)
        _, data = c.uid("FETCH", str(uid), "(FLAGS)")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            u, f = _UID.search(line), _FLAGS.search(line)
            if u and f and int(u.group(1)) == uid:
                return frozenset(f.group(1).decode().split())
        return None

    def message_ids_since(self, folder: str, uidnext: int) -> dict[int, str]:
        """The Message-ID of every message with a UID of at least ``uidnext``."""
        c = self._fresh(folder)
        _, data = c.uid("SEARCH", f"UID {uidnext}:*")
        uids = [u for u in (int(x) for x in (data[0] or b"").split()) if u >= uidnext]
        if not uids:  # "n:*" names the highest UID even when it is below n
            return {}
        c.untagged_responses.clear()
        _, fetched = c.uid(
            "FETCH", ",".join(map(str, uids)), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        )
        found: dict[int, str] = {}
        for item in fetched:
            if isinstance(item, tuple):
                u, m = _UID.search(item[0]), _MESSAGE_ID.search(item[1])
                if u and m:
                    found[int(u.group(1))] = m.group(1).decode()
        return found

    def status(self, folder: str, items: str = "UIDNEXT") -> dict[str, int]:
        self._plain.untagged_responses.clear()
        typ, data = self._plain.status(quoted(folder), f"({items})")
        if typ != "OK" or not isinstance(data[0], bytes):
            raise RuntimeError(f"STATUS {folder}: {typ} {data!r}")
        m = _STATUS.search(data[0])
        words = m.group(1).decode().split() if m else []
        return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}

    def uidnext(self, folder: str) -> int:
        return self.status(folder)["UIDNEXT"]

    def total_messages(self) -> int:
        """Messages in every selectable folder."""
        self._plain.untagged_responses.clear()
        _, listed = self._plain.list('""', '"*"')
        total = 0
        for line in listed:
            if not isinstance(line, bytes) or b"\\Noselect" in line or b"\\NonExistent" in line:
                continue
            name = line.rsplit(b' "/" ', 1)[-1].decode()
            self._plain.untagged_responses.clear()
            _, data = self._plain.status(name, "(MESSAGES)")
            m = re.search(rb"MESSAGES (\d+)", data[0] if isinstance(data[0], bytes) else b"")
            total += int(m.group(1)) if m else 0
        return total

    # --- changes made as another client ------------------------------------------------

    def append(self, folder: str, message: bytes) -> None:
        """APPEND without flags (so the message is new, and lands in a Maildir's new/)."""
        self._plain.untagged_responses.clear()
        typ, data = self._plain.append(quoted(folder), "()", None, message)
        if typ != "OK":
            raise RuntimeError(f"APPEND {folder}: {typ} {data!r}")

    # --- internals ----------------------------------------------------------------------

    def _fresh(self, folder: str) -> imaplib.IMAP4:
        """The folder's own connection, brought up to date with a NOOP."""
        c = self._examined.get(folder)
        if c is None:
            c = self._stack.enter_context(srv.session(self.server))
            typ, data = c.select(quoted(folder), readonly=True)
            if typ != "OK":
                raise RuntimeError(f"EXAMINE {folder}: {typ} {data!r}")
            self._examined[folder] = c
        c.untagged_responses.clear()
        c.noop()
        c.untagged_responses.clear()
        return c
