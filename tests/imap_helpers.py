"""Set up and inspect an IMAP account with the standard library, independently of mailtide.

Every helper takes an ``account`` (anything with ``host``, ``port``, ``user``
and ``password``, e.g. the ``imap_account`` fixture) and folder names in
canonical form: Unicode, "/"-separated (the test Dovecot's separator).
Each call opens its own connection unless given one from ``session``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import imaplib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Account(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ServerMessage:
    uid: int
    flags: frozenset[str]
    message_id: str
    body: bytes


# ---- modified UTF-7, written here again so the tests do not trust the code under test ----------


def _mutf7_encode(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _mutf7_decode(name: str) -> str:
    def repl(m: re.Match[str]) -> str:
        inner = m.group(1)
        if not inner:
            return "&"
        b64 = inner.replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


def _quote(name: str) -> str:
    encoded = _mutf7_encode(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- connections ----------------------------------------------------------------------------


@contextlib.contextmanager
def session(account: Account) -> Iterator[imaplib.IMAP4]:
    """A logged-in stdlib IMAP connection (plain, 127.0.0.1)."""
    imap = imaplib.IMAP4(account.host, account.port, timeout=30)
    try:
        _ok(imap.login(account.user, account.password))
        yield imap
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


@contextlib.contextmanager
def _maybe(account: Account, imap: imaplib.IMAP4 | None) -> Iterator[imaplib.IMAP4]:
    if imap is not None:
        yield imap
    else:
        with session(account) as fresh:
            yield fresh


def _ok(result: tuple[str, list[object]]) -> list[object]:
    typ, data = result
    if typ != "OK":
        raise AssertionError(f"IMAP command failed: {typ} {data!r}")
    return data


# ---- folders --------------------------------------------------------------------------------


def create_folder(account: Account, name: str, imap: imaplib.IMAP4 | None = None) -> None:
    """Create ``name`` (and, on Dovecot, its parents); an existing folder is fine."""
    with _maybe(account, imap) as c:
        typ, data = c.create(_quote(name))
        if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(
            d for d in data if isinstance(d, bytes)
        ):
            raise AssertionError(f"CREATE {name!r} failed: {data!r}")


def create_raw_folder(account: Account, raw: str) -> tuple[str, str]:
    """CREATE with a server-side name exactly as given (no encoding): for hostile names."""
    with session(account) as c:
        typ, data = c.create('"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"')
        return typ, b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.*)$')


def list_folders(
    account: Account, imap: imaplib.IMAP4 | None = None, selectable: bool = False
) -> list[str]:
    """Every folder's name, decoded to Unicode, '/'-separated, sorted (with ``selectable``,
    only those that can hold messages: no \\Noselect or \\NonExistent)."""
    names: list[str] = []
    with _maybe(account, imap) as c:
        data = _ok(c.list('""', "*"))
        items = iter(data)
        for item in items:
            if item is None:
                continue
            if isinstance(item, tuple):  # name sent as a literal
                head, literal = item
                m = _LIST_LINE.match(head)
                raw = literal
            else:
                assert isinstance(item, bytes)
                m = _LIST_LINE.match(item)
                raw = m.group("name") if m else b""
            if m is None:
                raise AssertionError(f"unparsable LIST line {item!r}")
            if raw.startswith(b'"'):
                raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
            attrs = m.group("flags").lower()
            if selectable and (b"\\noselect" in attrs or b"\\nonexistent" in attrs):
                continue
            names.append(_mutf7_decode(raw.decode()))
    return sorted(names)


# ---- messages -------------------------------------------------------------------------------


def _flag_list(flags: Iterable[str]) -> str:
    return "(" + " ".join(sorted(flags)) + ")"


def append(
    account: Account,
    folder: str,
    message: bytes,
    flags: Iterable[str] = (),
    internaldate: datetime | None = None,
    imap: imaplib.IMAP4 | None = None,
) -> int | None:
    """APPEND ``message`` to ``folder`` (created if missing); the new UID (APPENDUID) or None."""
    with _maybe(account, imap) as c:
        if folder.upper() != "INBOX":
            create_folder(account, folder, c)
        date = imaplib.Time2Internaldate(internaldate) if internaldate else None
        data = _ok(c.append(_quote(folder), _flag_list(flags), date, message))
        m = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(d for d in data if isinstance(d, bytes)))
        return int(m.group(1)) if m else None


def append_many(
    account: Account, folder: str, messages: Iterable[bytes], flags: Iterable[str] = ()
) -> list[int | None]:
    """APPEND several messages over one connection."""
    flag_set = tuple(flags)
    with session(account) as c:
        return [append(account, folder, m, flag_set, imap=c) for m in messages]


_FETCH_HEAD = re.compile(rb"UID (\d+).*?FLAGS \(([^)]*)\)", re.S)
_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")


def fetch_all(
    account: Account, folder: str, imap: imaplib.IMAP4 | None = None
) -> list[ServerMessage]:
    """Every message in ``folder``, by UID: (uid, flags without \\Recent, Message-ID, body)."""
    out: list[ServerMessage] = []
    with _maybe(account, imap) as c:
        _ok(c.select(_quote(folder), readonly=True))
        data = _ok(c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"))
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            m = _FETCH_HEAD.search(head)
            if m is None:
                raise AssertionError(f"unparsable FETCH response {head!r}")
            flags = frozenset(f for f in m.group(2).decode().split() if f != "\\Recent")
            mid = _MESSAGE_ID.search(body.split(b"\r\n\r\n", 1)[0])
            out.append(
                ServerMessage(int(m.group(1)), flags, mid.group(1).decode() if mid else "", body)
            )
        c.close()
    return sorted(out, key=lambda m: m.uid)


def _uids_of(c: imaplib.IMAP4, message_id: str) -> list[bytes]:
    data = _ok(c.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"'))
    return [u for d in data if isinstance(d, bytes) for u in d.split()]


def _store(account: Account, folder: str, message_id: str, op: str, flags: Iterable[str]) -> None:
    with session(account) as c:
        _ok(c.select(_quote(folder)))
        uids = _uids_of(c, message_id)
        if not uids:
            raise AssertionError(f"no message {message_id} in {folder!r}")
        _ok(c.uid("STORE", b",".join(uids).decode(), op, _flag_list(flags)))


def set_flags(account: Account, folder: str, message_id: str, flags: Iterable[str]) -> None:
    """Add ``flags`` to the message(s) with this Message-ID."""
    _store(account, folder, message_id, "+FLAGS.SILENT", flags)


def clear_flags(account: Account, folder: str, message_id: str, flags: Iterable[str]) -> None:
    """Remove ``flags`` from the message(s) with this Message-ID."""
    _store(account, folder, message_id, "-FLAGS.SILENT", flags)


def expunge(account: Account, folder: str, message_id: str) -> None:
    """Delete the message(s) with this Message-ID (UID EXPUNGE: no other message goes)."""
    with session(account) as c:
        _ok(c.select(_quote(folder)))
        uids = b",".join(_uids_of(c, message_id)).decode()
        if not uids:
            raise AssertionError(f"no message {message_id} in {folder!r}")
        _ok(c.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)"))
        _ok(c.uid("EXPUNGE", uids))


# ---- test messages --------------------------------------------------------------------------

_BASE_DATE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
_WORDS = [
    "tide",
    "harbour",
    "ledger",
    "invoice",
    "meeting",
    "draft",
    "review",
    "lantern",
    "quarterly",
    "river",
    "mail",
    "archive",
    "sync",
    "schedule",
    "orbit",
    "parcel",
    "summit",
    "notes",
    "budget",
]


def message_id(i: int, folder: str) -> str:
    tag = _mutf7_encode(folder).replace("/", ".").replace("&", "").replace("-", "")
    return f"<msg-{i}.{tag or 'x'}@test.mailtide>"


def make_message(i: int, folder: str, size: int | None = None) -> bytes:
    """A realistic RFC 5322 message (CRLF), unique per (i, folder), of about ``size`` bytes."""
    date = _BASE_DATE + timedelta(minutes=37 * i)
    words = [_WORDS[(i * 7 + k) % len(_WORDS)] for k in range(6)]
    header = (
        f"Message-ID: {message_id(i, folder)}\r\n"
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"From: Sender {i % 17} <sender{i % 17}@example.org>\r\n"
        f"To: Test User <user@example.net>\r\n"
        f"Subject: {' '.join(words[:3]).capitalize()} #{i}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    )
    body_lines = [f"Hello, this is message {i} in {folder}.", " ".join(words), ""]
    body = "\r\n".join(body_lines) + "\r\n"
    data = (header + body).encode()
    if size is not None and size > len(data):
        line = (" ".join(words) + " " + "x" * 40)[:76].encode() + b"\r\n"
        missing = size - len(data)
        rest = missing % len(line)
        data += line * (missing // len(line)) + (b"." * (rest - 2) + b"\r\n" if rest >= 2 else b"")
    return data


class NullTransport(asyncio.Transport):
    """A transport for feeding an ``ImapProtocol`` bytes by hand: writes go nowhere."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0
