"""A fake Gmail on 127.0.0.1: Gmail's IMAP model, spoken over a real socket (X-GM-EXT-1).

Gmail is not a tree of folders but one store of messages with labels (Google's "IMAP
Extensions" and "IMAP client settings" pages); each label is shown as a mailbox:

- ``INBOX``: the messages labelled ``\\Inbox``;
- a user label (``Work``, ``Work/2024``): the messages with that label;
- ``[Gmail]/All Mail`` (special use ``\\All``): every message not in Trash or Spam;
- ``[Gmail]/Sent Mail`` (``\\Sent``), ``[Gmail]/Drafts`` (``\\Drafts``),
  ``[Gmail]/Important`` (``\\Important``): labelled ``\\Sent``, ``\\Draft``, ``\\Important``;
- ``[Gmail]/Starred`` (``\\Flagged``): the messages flagged ``\\Flagged`` (a star is that flag);
- ``[Gmail]/Trash`` (``\\Trash``), ``[Gmail]/Spam`` (``\\Junk``): trashed messages and spam,
  which have lost their labels.

Gmail localises these names (``GERMAN``), so clients find them by their special use.

What it does, as Gmail does:

- A message has one X-GM-MSGID and X-GM-THRID (64-bit; a reply joins the thread of the
  message its In-Reply-To names) and message-wide flags: ``\\Seen`` set in INBOX is set in
  every mailbox.  ``\\Deleted`` is the exception: it marks the message in one mailbox only.
- Each mailbox has its own UIDVALIDITY and UIDs; a message gets the mailbox's next UID each
  time it enters the mailbox (a label removed and added again is a new UID).
- APPEND into a mailbox is a new message with that mailbox's label, never merged with one
  of the same Message-ID; COPY into a mailbox adds its label to the same message (the same
  X-GM-MSGID); MOVE adds the target's label and removes the source's.
- Leaving a mailbox (EXPUNGE of a ``\\Deleted`` message, MOVE out, ``-X-GM-LABELS``) takes
  that mailbox's label away only: the message stays in All Mail.  Leaving All Mail moves the
  message to Trash; leaving Trash or Spam deletes it for good.  Going into Trash or Spam
  (COPY, MOVE, APPEND, ``+X-GM-LABELS (\\Trash)``) takes every label away.
- Gmail's IMAP settings at their defaults: "Auto-Expunge on" (a message marked ``\\Deleted``
  leaves the mailbox at once, as if expunged; ``auto_expunge=False`` waits for EXPUNGE) and,
  for a message expunged from its last visible label, "Archive the message" (as above;
  ``expunge_last="trash"`` moves it to Trash, ``"delete"`` deletes it forever, as Gmail's
  other two choices do).  Taking a label away with ``-X-GM-LABELS`` is no expunge.
- FETCH X-GM-LABELS lists a message's labels but not the selected mailbox's own (Gmail
  leaves it out); a star shows as ``\\Starred``, and ``+X-GM-LABELS (\\Starred)`` sets
  ``\\Flagged``.  STORE of X-GM-LABELS that names a label that does not exist creates it.
- CAPABILITY has X-GM-EXT-1, CONDSTORE (MODSEQ, CHANGEDSINCE, HIGHESTMODSEQ; a label change
  is a change), UIDPLUS, MOVE, IDLE, SPECIAL-USE; no QRESYNC, XLIST or LIST-STATUS.  LIST
  carries the special-use attributes.  LOGIN and AUTHENTICATE PLAIN take ``password``,
  AUTHENTICATE XOAUTH2 (with SASL-IR) takes ``token``; None accepts anything.
- Other sessions learn of changes at their next command (EXISTS, EXPUNGE), or at once in IDLE.

Not modelled: SEARCH X-GM-RAW (SEARCH knows ALL, DELETED, X-GM-MSGID, X-GM-THRID), XLIST,
threading by subject, RENAME.  Mailbox and label names are as on the wire (modified UTF-7).
"""

from __future__ import annotations

import base64
import re
import select
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fake_imap import INTERNALDATE, command_words, number_set, read_literals

# The names of the special mailboxes, by special use, as an English account has them.
ENGLISH: dict[str, str] = {
    "\\All": "[Gmail]/All Mail",
    "\\Sent": "[Gmail]/Sent Mail",
    "\\Drafts": "[Gmail]/Drafts",
    "\\Important": "[Gmail]/Important",
    "\\Flagged": "[Gmail]/Starred",
    "\\Trash": "[Gmail]/Trash",
    "\\Junk": "[Gmail]/Spam",
}
# A German account (Google Mail in Germany): other names, the same special uses.
GERMAN: dict[str, str] = {
    "\\All": "[Google Mail]/Alle Nachrichten",
    "\\Sent": "[Google Mail]/Gesendet",
    "\\Drafts": "[Google Mail]/Entw&APw-rfe",
    "\\Important": "[Google Mail]/Wichtig",
    "\\Flagged": "[Google Mail]/Markiert",
    "\\Trash": "[Google Mail]/Papierkorb",
    "\\Junk": "[Google Mail]/Spam",
}
# The label a special mailbox shows (None: All Mail, which is every message, no label).
# \Starred, \Trash and \Spam are not kept as labels: a star is \Flagged, Trash and Spam
# are where the message is.
LABEL_OF_USE: dict[str, str | None] = {
    "\\All": None,
    "\\Sent": "\\Sent",
    "\\Drafts": "\\Draft",
    "\\Important": "\\Important",
    "\\Flagged": "\\Starred",
    "\\Trash": "\\Trash",
    "\\Junk": "\\Spam",
}
INBOX_LABEL = "\\Inbox"
CAPABILITIES_BEFORE_LOGIN = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID CHILDREN X-GM-EXT-1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN"
)
CAPABILITIES = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID CHILDREN X-GM-EXT-1 UIDPLUS ENABLE MOVE "
    "CONDSTORE SPECIAL-USE LITERAL-"
)
FIRST_MSGID = 1278455344230334865  # Google's example: far above 2**32
PERMANENT_FLAGS = "\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing"


@dataclass
class StoredMessage:
    """One message of the store, whatever mailboxes show it."""

    msgid: int
    thrid: int
    body: bytes  # CRLF form
    labels: set[str] = field(default_factory=set)  # "\\Inbox", "\\Sent", "Work", ...
    flags: set[str] = field(default_factory=set)  # message-wide; \Flagged is the star
    place: str = "all"  # "all", "trash" or "spam"
    internaldate: str = INTERNALDATE
    modseq: int = 1

    def header(self) -> bytes:
        end = self.body.find(b"\r\n\r\n")
        return self.body[: end + 4] if end >= 0 else self.body

    def text(self) -> bytes:
        return self.body[len(self.header()) :]


@dataclass
class Box:
    """A mailbox: the view of one label, with its own UIDs."""

    name: str
    label: str | None  # None: All Mail
    use: str | None  # the special-use attribute
    uidvalidity: int
    uidnext: int = 1
    uids: dict[int, int] = field(default_factory=dict)  # msgid -> UID, in UID order
    deleted: set[int] = field(default_factory=set)  # msgids marked \Deleted here
    highestmodseq: int = 1

    def by_uid(self) -> dict[int, int]:
        return {uid: msgid for msgid, uid in self.uids.items()}


class GmailServer:
    """The store of messages and its mailboxes; serve it with ``serve_gmail``."""

    def __init__(
        self,
        names: dict[str, str] | None = None,
        labels: Iterable[str] = (),
        *,
        auto_expunge: bool = True,
        expunge_last: str = "archive",
        password: str | None = None,
        token: str | None = None,
        capabilities: str = CAPABILITIES,
    ) -> None:
        self.names = dict(names or ENGLISH)
        self.auto_expunge = auto_expunge
        self.expunge_last = expunge_last
        self.password = password
        self.token = token
        self.capabilities = capabilities
        self.messages: dict[int, StoredMessage] = {}
        self.boxes: dict[str, Box] = {}
        self.modseq = 1
        self.port = 0
        self.commands: list[str] = []  # "VERB" of each command, in order
        self.downloads: Counter[int] = Counter()  # whole bodies sent, by X-GM-MSGID
        # each FETCH: (mailbox, its arguments as sent, how many messages it answered)
        self.fetches: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self._validity = 10
        self._next_msgid = FIRST_MSGID
        self._box("INBOX", INBOX_LABEL, None)
        for use, name in self.names.items():
            self._box(name, LABEL_OF_USE[use], use)
        for label in labels:
            self.create_label(label)

    # -- the model --------------------------------------------------------------------

    @property
    def parents(self) -> set[str]:
        """The names that only hold special mailboxes ("[Gmail]"): \\Noselect in LIST."""
        return {n.rpartition("/")[0] for n in self.names.values() if "/" in n} - set(self.boxes)

    def _box(self, name: str, label: str | None, use: str | None) -> Box:
        self._validity += 1
        box = self.boxes[name] = Box(name, label, use, self._validity, highestmodseq=self.modseq)
        return box

    def create_label(self, name: str) -> Box:
        """The label's mailbox, made with its parents ("A/B" makes "A") when missing."""
        head, _, _ = name.rpartition("/")
        if head and head not in self.boxes and head not in self.parents:
            self.create_label(head)
        return self.boxes.get(name) or self._box(name, name, None)

    def box_of_label(self, label: str) -> Box | None:
        for box in self.boxes.values():
            if box.label == label:
                return box
        return None

    def add(
        self,
        body: bytes,
        labels: Iterable[str] = (INBOX_LABEL,),
        flags: Iterable[str] = (),
        place: str = "all",
    ) -> StoredMessage:
        """A new message in the store (as delivered), with those labels and flags; ``place``
        "trash" or "spam" puts it there (without labels)."""
        msgid = self._next_msgid
        self._next_msgid += 1
        msg = StoredMessage(msgid, self._thread_of(body, msgid), body, flags=set(flags))
        self.messages[msgid] = msg
        for label in labels:
            self.label(msg, label)
        if place != "all":  # into Trash or Spam: without labels, whatever was asked
            self.label(msg, "\\Trash" if place == "trash" else "\\Spam")
        self.touch(msg)
        self.refresh()
        return msg

    def _thread_of(self, body: bytes, msgid: int) -> int:
        m = re.search(rb"(?im)^In-Reply-To:\s*(<[^>]+>)", body)
        if m:
            for other in self.messages.values():
                if re.search(rb"(?im)^Message-ID:\s*" + re.escape(m.group(1)), other.header()):
                    return other.thrid
        return msgid

    def touch(self, msg: StoredMessage) -> None:
        self.modseq += 1
        msg.modseq = self.modseq

    def is_in(self, msg: StoredMessage, label: str | None) -> bool:
        if label == "\\Trash":
            return msg.place == "trash"
        if label == "\\Spam":
            return msg.place == "spam"
        if msg.place != "all":
            return False
        if label is None:
            return True
        if label == "\\Starred":
            return "\\Flagged" in msg.flags
        return label in msg.labels

    def label(self, msg: StoredMessage, label: str | None) -> None:
        """Put ``msg`` into the mailbox of ``label`` (None: All Mail)."""
        if label in ("\\Trash", "\\Spam"):
            msg.place = "trash" if label == "\\Trash" else "spam"
            msg.labels.clear()
            return
        msg.place = "all"
        if label == "\\Starred":
            msg.flags.add("\\Flagged")
        elif label is not None:
            if label != INBOX_LABEL and not label.startswith("\\"):
                self.create_label(label)
            msg.labels.add(label)

    def strip(self, msg: StoredMessage, label: str) -> None:
        """``-X-GM-LABELS (label)``: take the label away (out of Trash or Spam: back to All
        Mail)."""
        if label in ("\\Trash", "\\Spam"):
            if self.is_in(msg, label):
                msg.place = "all"
        elif label == "\\Starred":
            msg.flags.discard("\\Flagged")
        else:
            msg.labels.discard(label)

    def unlabel(self, msg: StoredMessage, label: str | None) -> None:
        """Take ``msg`` out of the mailbox of ``label``: Gmail's meaning of leaving it."""
        if label is None:  # out of All Mail: to Trash
            self.label(msg, "\\Trash")
        elif label in ("\\Trash", "\\Spam"):
            if self.is_in(msg, label):
                del self.messages[msg.msgid]
        elif label == "\\Starred":
            msg.flags.discard("\\Flagged")
        else:
            msg.labels.discard(label)
            if not msg.labels and self.expunge_last == "trash":
                self.label(msg, "\\Trash")
            elif not msg.labels and self.expunge_last == "delete":
                del self.messages[msg.msgid]

    def labels_shown(self, msg: StoredMessage, selected: Box | None) -> list[str]:
        """X-GM-LABELS of ``msg``, without the selected mailbox's label (as Gmail does)."""
        shown = set(msg.labels)
        if "\\Flagged" in msg.flags and msg.place == "all":
            shown.add("\\Starred")
        if msg.place != "all":
            shown.add("\\Trash" if msg.place == "trash" else "\\Spam")
        if selected is not None:
            shown.discard(selected.label or "")
        return sorted(shown)

    def refresh(self) -> None:
        """Bring every mailbox's members and UIDs in line with the messages."""
        self.modseq += 1
        for box in self.boxes.values():
            members = [m for m in sorted(self.messages) if self.is_in(self.messages[m], box.label)]
            gone = set(box.uids) - set(members)
            for msgid in gone:
                del box.uids[msgid]
            box.deleted -= gone
            changed = bool(gone)
            for msgid in members:
                if msgid not in box.uids:
                    box.uids[msgid] = box.uidnext
                    box.uidnext += 1
                    changed = True
            top = max((self.messages[m].modseq for m in box.uids), default=0)
            if changed:
                top = self.modseq
            box.highestmodseq = max(box.highestmodseq, top)

    def mailbox(self, name: str) -> list[tuple[int, StoredMessage]]:
        """(UID, message) of every message the mailbox shows, in UID order."""
        with self.lock:
            box = self.boxes[name]
            return [(uid, self.messages[msgid]) for msgid, uid in box.uids.items()]


# ---- the protocol -----------------------------------------------------------------------


class _Close(Exception):
    pass


_FETCH_ITEM = re.compile(r"BODY(?:\.PEEK)?\[[^\]]*\](?:<\d+(?:\.\d+)?>)?|[A-Z0-9.\-]+")
_WHOLE = ("BODY[]", "BODY.PEEK[]", "RFC822")
_MACROS = {
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
}


_SYSTEM = {label.upper(): label for label in (INBOX_LABEL, *LABEL_OF_USE.values()) if label}


def _system(label: str) -> str:
    """A label as Gmail spells it (system labels are case-insensitive: ``\\inbox``)."""
    return _SYSTEM.get(label.upper(), label)


def quoted(text: str) -> str:
    if text.startswith("\\") or re.fullmatch(r"[A-Za-z0-9_.&+\-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


class GmailSession(socketserver.StreamRequestHandler):
    """One client connection to ``gmail`` (set on the subclass ``serve_gmail`` makes)."""

    gmail: GmailServer
    disable_nagle_algorithm = True

    def handle(self) -> None:
        self.selected: Box | None = None
        self.read_only = False
        self.view: list[int] = []  # UIDs by sequence number, as this session was told
        self.condstore = False
        self.logged_in = False
        self.wfile.write(b"* OK Gimap ready for requests from 127.0.0.1 fake\r\n")
        try:
            while line := self.rfile.readline():
                self.command(read_literals(self.rfile, self.wfile, line))
                self.wfile.flush()
        except (_Close, OSError):
            pass

    def send(self, text: str | bytes) -> None:
        self.wfile.write(text.encode() if isinstance(text, str) else text)

    # -- dispatch ---------------------------------------------------------------------

    def command(self, line: bytes) -> None:
        # Only the command's own line end: an APPEND's literal ends the line and keeps its own.
        end = 2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0
        tag, _, rest = line[: len(line) - end].partition(b" ")
        literal = b""
        if m := re.search(rb"\{\d+\}", rest):  # APPEND: the message, kept aside
            literal = rest[m.end() :]
            rest = rest[: m.start()]
        words = command_words(rest.decode("utf-8", "replace"))
        verb = words[0].upper() if words else ""
        if verb == "UID" and len(words) > 1:
            verb, words = "UID " + words[1].upper(), words[1:]
        t = tag.decode()
        gmail = self.gmail
        gmail.commands.append(verb)
        handler = getattr(self, "do_" + verb.replace(" ", "_").lower(), None)
        if handler is None:
            self.send(f"{t} BAD Unknown command\r\n")
            return
        if not self.logged_in and verb not in (
            "CAPABILITY",
            "LOGIN",
            "AUTHENTICATE",
            "ID",
            "NOOP",
            "LOGOUT",
        ):
            self.send(f"{t} BAD Command not allowed now\r\n")
            return
        with gmail.lock:
            outcome = handler(t, words[1:], literal)
            # EXPUNGE news is not allowed during FETCH, STORE or SEARCH (RFC 3501 7.4.1).
            self.news(expunges=verb not in ("FETCH", "STORE", "SEARCH"))
        self.send(f"{t} {outcome or 'OK Success'}\r\n")

    def news(self, expunges: bool = True) -> None:
        """Tell this session what changed in its mailbox since it was last told."""
        box = self.selected
        if box is None:
            return
        now = set(box.uids.values())
        if expunges:
            for seq in reversed([i for i, uid in enumerate(self.view, 1) if uid not in now]):
                self.send(f"* {seq} EXPUNGE\r\n")
            self.view = [uid for uid in self.view if uid in now]
        top = max(self.view, default=0)
        new = sorted(uid for uid in now if uid > top)
        if new:
            self.view += new
            self.send(f"* {len(self.view)} EXISTS\r\n")

    # -- not selected -----------------------------------------------------------------

    def do_capability(self, t: str, args: list[str], literal: bytes) -> str | None:
        caps = self.gmail.capabilities if self.logged_in else CAPABILITIES_BEFORE_LOGIN
        self.send(f"* CAPABILITY {caps}\r\n")
        return None

    def do_noop(self, t: str, args: list[str], literal: bytes) -> str | None:
        return None

    do_check = do_noop

    def do_logout(self, t: str, args: list[str], literal: bytes) -> str | None:
        self.send(f"* BYE LOGOUT Requested\r\n{t} OK 73 good day (Success)\r\n")
        self.wfile.flush()
        raise _Close

    def do_id(self, t: str, args: list[str], literal: bytes) -> str | None:
        self.send('* ID ("name" "GImap" "vendor" "Google, Inc.")\r\n')
        return None

    def _logged_in(self, ok: bool, user: str) -> str:
        if not ok:
            return "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"
        self.logged_in = True
        return f"OK [CAPABILITY {self.gmail.capabilities}] {user} authenticated (Success)"

    def do_login(self, t: str, args: list[str], literal: bytes) -> str | None:
        user, password = ([*args, "", ""])[:2]
        want = self.gmail.password
        return self._logged_in(want is None or password == want, user)

    def do_authenticate(self, t: str, args: list[str], literal: bytes) -> str | None:
        mechanism = args[0].upper() if args else ""
        if len(args) > 1:
            answer = args[1]
        else:
            self.send("+ \r\n")
            self.wfile.flush()
            answer = self.rfile.readline().decode().strip()
        try:
            data = base64.b64decode(answer, validate=True).decode()
        except ValueError:
            return "BAD Invalid SASL argument"
        if mechanism == "PLAIN":
            _, user, password = ([*data.split("\x00"), "", "", ""])[:3]
            want = self.gmail.password
            return self._logged_in(want is None or password == want, user)
        if mechanism == "XOAUTH2":
            fields = dict(p.split("=", 1) for p in data.split("\x01") if "=" in p)
            token = fields.get("auth", "").removeprefix("Bearer ")
            want = self.gmail.token
            return self._logged_in(want is None or token == want, fields.get("user", ""))
        return "NO Unsupported mechanism"

    def do_enable(self, t: str, args: list[str], literal: bytes) -> str | None:
        if any(a.upper() == "CONDSTORE" for a in args):
            self.condstore = True
            self.send("* ENABLED CONDSTORE\r\n")
        return None

    def do_namespace(self, t: str, args: list[str], literal: bytes) -> str | None:
        self.send('* NAMESPACE (("" "/")) NIL NIL\r\n')
        return None

    def do_list(self, t: str, args: list[str], literal: bytes) -> str | None:
        if args and args[0].startswith("("):  # selection options (RFC 5258): not needed
            args = args[1:]
        pattern = args[1] if len(args) > 1 else "*"
        wanted = re.compile(
            "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
        )
        gmail = self.gmail
        names = sorted(set(gmail.boxes) | gmail.parents)
        for name in names:
            if not wanted.fullmatch(name):
                continue
            children = any(n.startswith(name + "/") for n in names)
            attrs = ["\\HasChildren" if children else "\\HasNoChildren"]
            box = gmail.boxes.get(name)
            if box is None:
                attrs.insert(0, "\\Noselect")
            elif box.use is not None:
                attrs.append(box.use)
            self.send(f'* LIST ({" ".join(attrs)}) "/" {quoted(name)}\r\n')
        return None

    def do_create(self, t: str, args: list[str], literal: bytes) -> str | None:
        name = args[0].rstrip("/")
        gmail = self.gmail
        if name in gmail.boxes or name in gmail.parents or name.upper() == "INBOX":
            return "NO [ALREADYEXISTS] Duplicate folder name (Failure)"
        gmail.create_label(name)
        return None

    def do_delete(self, t: str, args: list[str], literal: bytes) -> str | None:
        gmail = self.gmail
        box = gmail.boxes.get(args[0])
        if box is None or box.use is not None or box.name == "INBOX":
            return "NO [CANNOT] Cannot delete this folder (Failure)"
        for msg in gmail.messages.values():
            if box.label in msg.labels:
                msg.labels.discard(box.label or "")
                gmail.touch(msg)
        del gmail.boxes[box.name]
        gmail.refresh()
        return None

    def do_subscribe(self, t: str, args: list[str], literal: bytes) -> str | None:
        return None

    def do_status(self, t: str, args: list[str], literal: bytes) -> str | None:
        box = self.gmail.boxes.get(args[0])
        if box is None:
            return "NO [NONEXISTENT] Unknown Mailbox (Failure)"
        values = {
            "MESSAGES": len(box.uids),
            "RECENT": 0,
            "UIDNEXT": box.uidnext,
            "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": sum(1 for m in box.uids if "\\Seen" not in self.gmail.messages[m].flags),
            "HIGHESTMODSEQ": box.highestmodseq,
        }
        asked = args[1].strip("()").upper().split() if len(args) > 1 else []
        items = " ".join(f"{a} {values[a]}" for a in asked if a in values)
        self.send(f"* STATUS {quoted(box.name)} ({items})\r\n")
        return None

    def do_select(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self._open(args, read_only=False)

    def do_examine(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self._open(args, read_only=True)

    def _open(self, args: list[str], read_only: bool) -> str:
        self.selected = None
        box = self.gmail.boxes.get(args[0]) if args else None
        if box is None:
            return "NO [NONEXISTENT] Unknown Mailbox (Failure)"
        if len(args) > 1 and "CONDSTORE" in args[1].upper():
            self.condstore = True
        self.selected, self.read_only = box, read_only
        self.view = sorted(box.uids.values())
        self.send(
            f"* FLAGS ({PERMANENT_FLAGS})\r\n"
            f"* OK [PERMANENTFLAGS ({PERMANENT_FLAGS} \\*)] Flags permitted.\r\n"
            f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid.\r\n"
            f"* {len(self.view)} EXISTS\r\n* 0 RECENT\r\n"
            f"* OK [UIDNEXT {box.uidnext}] Predicted next UID.\r\n"
            f"* OK [HIGHESTMODSEQ {box.highestmodseq}]\r\n"
        )
        return f"OK [{'READ-ONLY' if read_only else 'READ-WRITE'}] {box.name} selected. (Success)"

    def do_append(self, t: str, args: list[str], literal: bytes) -> str | None:
        gmail = self.gmail
        box = gmail.boxes.get(args[0]) if args else None
        if box is None:
            return "NO [TRYCREATE] Folder doesn't exist. (Failure)"
        flags = args[1].strip("()").split() if len(args) > 1 and args[1].startswith("(") else []
        deleted = "\\Deleted" in flags
        msg = gmail.add(literal, labels=(), flags=[f for f in flags if f != "\\Deleted"])
        dates = [a for a in args[1:] if re.fullmatch(r"\d{1,2}-\w{3}-\d{4} .*", a)]
        if dates:
            msg.internaldate = dates[0]
        gmail.label(msg, box.label)
        gmail.touch(msg)
        gmail.refresh()
        if deleted:
            box.deleted.add(msg.msgid)
        return f"OK [APPENDUID {box.uidvalidity} {box.uids[msg.msgid]}] (Success)"

    # -- selected ---------------------------------------------------------------------

    def _targets(self, by_uid: bool, spec: str) -> list[tuple[int, int, StoredMessage]]:
        """(sequence number, UID, message) of the set ``spec`` names, in order."""
        out: list[tuple[int, int, StoredMessage]] = []
        box = self.selected
        if box is None:
            return out
        by_uid_now = box.by_uid()
        top = (max(self.view, default=0) if by_uid else len(self.view)) or 1
        wanted = number_set(spec, top)
        for seq, uid in enumerate(self.view, 1):
            msgid = by_uid_now.get(uid)
            if (uid if by_uid else seq) in wanted and msgid in self.gmail.messages:
                out.append((seq, uid, self.gmail.messages[msgid]))
        return out

    def do_fetch(self, t: str, args: list[str], literal: bytes, by_uid: bool = False) -> str | None:
        if self.selected is None:
            return "BAD No mailbox selected"
        items = _FETCH_ITEM.findall(args[1].upper() if len(args) > 1 else "")
        items = [i for item in items for i in _MACROS.get(item, [item])]
        since = None
        if len(args) > 2 and (m := re.search(r"CHANGEDSINCE (\d+)", args[2].upper())):
            since = int(m.group(1))
        answered = 0
        for seq, uid, msg in self._targets(by_uid, args[0]):
            if since is not None and msg.modseq <= since:
                continue
            self.send(self._fetched(seq, uid, msg, items, by_uid, since is not None))
            answered += 1
        self.gmail.fetches.append((self.selected.name, " ".join(args), answered))
        return None

    def do_uid_fetch(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_fetch(t, args, literal, by_uid=True)

    def _fetched(
        self,
        seq: int,
        uid: int,
        msg: StoredMessage,
        items: list[str],
        by_uid: bool,
        changedsince: bool = False,
    ) -> bytes:
        """The ``* seq FETCH (...)`` response; a BODY[...] that is not PEEK sets \\Seen."""
        gmail = self.gmail
        seen_before = "\\Seen" in msg.flags
        bodies = [self._section(msg, i) for i in items if i.startswith("BODY")]
        bodies += [b"RFC822 " + _literal(msg.body) for i in items if i == "RFC822"]
        gmail.downloads[msg.msgid] += sum(i in _WHOLE for i in items)
        if any(i.startswith("BODY[") or i == "RFC822" for i in items) and not seen_before:
            msg.flags.add("\\Seen")
            gmail.touch(msg)
            gmail.refresh()
        parts: list[bytes] = []
        if "X-GM-THRID" in items:
            parts.append(b"X-GM-THRID %d" % msg.thrid)
        if "X-GM-MSGID" in items:
            parts.append(b"X-GM-MSGID %d" % msg.msgid)
        if "X-GM-LABELS" in items:
            shown = " ".join(quoted(label) for label in gmail.labels_shown(msg, self.selected))
            parts.append(f"X-GM-LABELS ({shown})".encode())
        if "UID" in items or by_uid:
            parts.append(b"UID %d" % uid)
        if "FLAGS" in items or ("\\Seen" in msg.flags) != seen_before:
            parts.append(f"FLAGS ({' '.join(sorted(self._flags(msg)))})".encode())
        if "INTERNALDATE" in items:
            parts.append(f'INTERNALDATE "{msg.internaldate}"'.encode())
        if "RFC822.SIZE" in items:
            parts.append(b"RFC822.SIZE %d" % len(msg.body))
        if "MODSEQ" in items or changedsince or (self.condstore and "FLAGS" in items):
            parts.append(b"MODSEQ (%d)" % msg.modseq)
        return b"* %d FETCH (" % seq + b" ".join(parts + bodies) + b")\r\n"

    def _flags(self, msg: StoredMessage) -> set[str]:
        box = self.selected
        deleted = box is not None and msg.msgid in box.deleted
        return msg.flags | ({"\\Deleted"} if deleted else set())

    @staticmethod
    def _section(msg: StoredMessage, item: str) -> bytes:
        m = re.fullmatch(r"BODY(?:\.PEEK)?\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?", item)
        assert m is not None
        section, start, length = m.group(1), m.group(2), m.group(3)
        data = {"": msg.body, "HEADER": msg.header(), "TEXT": msg.text()}.get(section, b"")
        name = f"BODY[{section}]"
        if start is not None:
            data = data[int(start) :][: int(length)] if length else data[int(start) :]
            name += f"<{start}>"
        return name.encode() + b" " + _literal(data)

    def do_store(self, t: str, args: list[str], literal: bytes, by_uid: bool = False) -> str | None:
        if self.selected is None:
            return "BAD No mailbox selected"
        if self.read_only:
            return "NO STORE attempt on READ-ONLY folder (Failure)"
        what = args[1].upper() if len(args) > 1 else ""
        values = command_words(args[2].strip("()")) if len(args) > 2 else []
        targets = self._targets(by_uid, args[0])
        if "X-GM-LABELS" in what:
            self._store_labels(what[0], values, [m for _, _, m in targets])
        else:
            self._store_flags(what[0], values, [m for _, _, m in targets])
        self.gmail.refresh()
        if not what.endswith(".SILENT"):
            for seq, uid, msg in self._targets(by_uid, args[0]):
                self.send(self._fetched(seq, uid, msg, ["FLAGS"], by_uid))
        return None

    def do_uid_store(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_store(t, args, literal, by_uid=True)

    def _store_flags(self, how: str, flags: list[str], msgs: list[StoredMessage]) -> None:
        box = self.selected
        assert box is not None
        deleted = any(f.upper() == "\\DELETED" for f in flags)
        others = {f for f in flags if f.upper() != "\\DELETED"}
        for msg in msgs:
            if how == "+":
                msg.flags |= others
            elif how == "-":
                msg.flags -= others
            else:
                msg.flags = set(others)
            if deleted and how != "-":
                box.deleted.add(msg.msgid)
            elif deleted or how not in "+-":
                box.deleted.discard(msg.msgid)
            self.gmail.touch(msg)
        self.gmail.refresh()
        if self.gmail.auto_expunge:  # Gmail's "Auto-Expunge on": marked is gone
            self._leave([self.gmail.messages[m] for m in sorted(box.deleted) if m in box.uids])

    def _store_labels(self, how: str, labels: list[str], msgs: list[StoredMessage]) -> None:
        gmail = self.gmail
        wanted = [_system(label) for label in labels]
        for msg in msgs:
            if how == "+":
                drop: list[str] = []
            elif how == "-":
                drop = wanted
            else:
                drop = [label for label in gmail.labels_shown(msg, None) if label not in wanted]
            for label in drop:
                gmail.strip(msg, label)
            for label in wanted if how != "-" else []:
                gmail.label(msg, label)
            gmail.touch(msg)

    def _leave(self, msgs: list[StoredMessage]) -> None:
        """The messages leave the selected mailbox, with Gmail's meaning of it."""
        box = self.selected
        assert box is not None
        for msg in msgs:
            self.gmail.unlabel(msg, box.label)
            box.deleted.discard(msg.msgid)
            if msg.msgid in self.gmail.messages:
                self.gmail.touch(msg)
        self.gmail.refresh()

    def do_expunge(self, t: str, args: list[str], literal: bytes) -> str | None:
        box = self.selected
        if box is None or self.read_only:
            return "NO EXPUNGE not allowed here (Failure)"
        only = number_set(args[0], 1 << 31) if args else None
        uids = box.uids
        gone = [
            self.gmail.messages[m]
            for m in set(box.deleted)
            if m in uids and (only is None or uids[m] in only)
        ]
        self._leave(gone)
        return None

    do_uid_expunge = do_expunge

    def do_close(self, t: str, args: list[str], literal: bytes) -> str | None:
        if self.selected is not None and not self.read_only:
            self.do_expunge(t, [], literal)
        self.selected, self.view = None, []
        return None

    def do_unselect(self, t: str, args: list[str], literal: bytes) -> str | None:
        self.selected, self.view = None, []
        return None

    def do_copy(
        self, t: str, args: list[str], literal: bytes, by_uid: bool = False, move: bool = False
    ) -> str | None:
        gmail = self.gmail
        source = self.selected
        target = gmail.boxes.get(args[1]) if len(args) > 1 else None
        if source is None:
            return "BAD No mailbox selected"
        if target is None:
            return "NO [TRYCREATE] Folder doesn't exist. (Failure)"
        targets = self._targets(by_uid, args[0])
        for _, _, msg in targets:
            gmail.label(msg, target.label)
            gmail.touch(msg)
        gmail.refresh()
        done = [(uid, target.uids[m.msgid]) for _, uid, m in targets if m.msgid in target.uids]
        code = ""
        if done:
            src = ",".join(str(s) for s, _ in done)
            dst = ",".join(str(d) for _, d in done)
            code = f"[COPYUID {target.uidvalidity} {src} {dst}] "
        if not move:
            return f"OK {code}(Success)"
        if code:
            self.send(f"* OK {code}(Success)\r\n")
        # Out of All Mail into a label, a message stays in All Mail; else it leaves.
        if source.label is not None and target is not source:
            self._leave(
                [
                    m
                    for _, _, m in targets
                    if m.msgid in gmail.messages and gmail.is_in(m, source.label)
                ]
            )
        return None

    def do_uid_copy(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_copy(t, args, literal, by_uid=True)

    def do_move(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_copy(t, args, literal, move=True)

    def do_uid_move(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_copy(t, args, literal, by_uid=True, move=True)

    def do_search(
        self, t: str, args: list[str], literal: bytes, by_uid: bool = False
    ) -> str | None:
        box = self.selected
        if box is None:
            return "BAD No mailbox selected"
        key = args[0].upper() if args else "ALL"
        hits = []
        for seq, uid, msg in self._targets(True, "1:*"):
            if (
                key == "ALL"
                or (key == "DELETED" and msg.msgid in box.deleted)
                or (key == "X-GM-MSGID" and str(msg.msgid) == args[1])
                or (key == "X-GM-THRID" and str(msg.thrid) == args[1])
            ):
                hits.append(uid if by_uid else seq)
        self.send("* SEARCH" + "".join(f" {n}" for n in hits) + "\r\n")
        return None

    def do_uid_search(self, t: str, args: list[str], literal: bytes) -> str | None:
        return self.do_search(t, args, literal, by_uid=True)

    def do_idle(self, t: str, args: list[str], literal: bytes) -> str | None:
        self.send("+ idling\r\n")
        self.wfile.flush()
        self.gmail.lock.release()  # others change the store while this one idles
        try:
            while True:
                with self.gmail.lock:
                    self.news()
                self.wfile.flush()
                ready, _, _ = select.select([self.request], [], [], 0.05)
                if ready:
                    if not self.rfile.readline():
                        raise _Close
                    return "OK IDLE terminated (Success)"
        finally:
            self.gmail.lock.acquire()


@contextmanager
def serve_gmail(gmail: GmailServer) -> Iterator[GmailServer]:
    """Serve ``gmail`` on 127.0.0.1 until the block ends (``gmail.port`` is set)."""
    open_sockets: set[socket.socket] = set()

    class Session(GmailSession):
        def setup(self) -> None:
            super().setup()
            open_sockets.add(self.request)

    Session.gmail = gmail
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    tcp.daemon_threads = True
    gmail.port = tcp.server_address[1]
    # A short poll: the block's end (shutdown) waits for it.
    thread = threading.Thread(target=tcp.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield gmail
    finally:
        tcp.shutdown()
        tcp.server_close()
        for sock in list(open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
