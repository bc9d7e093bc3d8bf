"""A blocking IMAP session that reads what a quick sync's decisions rest on (seen.py), for the
quiet check (quiet/): connect as the store does (TLS as configured, the same trust), log in,
ENABLE what the store enables, then NAMESPACE and the folder LIST with each folder's STATUS,
pipelined, and LOGOUT.  No event loop: the check runs before asyncio is loaded.

The probe reads; it decides nothing.  Whatever it cannot do the way the store does it (a login
other than LOGIN or AUTHENTICATE PLAIN with a password) or that goes wrong (a refused login, a
TLS failure, an answer it did not expect, a timeout) makes it give up with ``Unavailable``:
the sync then runs the ordinary way, and that run says what is wrong in its own words.
"""

from __future__ import annotations

import _socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailtide.stores.imap import sasl, tcp
from mailtide.stores.imap.credentials import Credentials
from mailtide.stores.imap.parse import ParseError, literal_size, status_text
from mailtide.stores.imap.seen import (
    KINDS,
    Listing,
    enable_wanted,
    kind_of,
    list_returns,
    response_bytes,
)
from mailtide.stores.imap.wire import Part, Secret, quote_astring

if TYPE_CHECKING:
    from mailtide.stores.imap.tls_trust import TlsTrust

MAX_ANSWER = 16 << 20  # bytes: a folder list bigger than this is left to the sync


class Unavailable(Exception):
    """The probe cannot read the answers the way the store would: the sync runs as usual."""


Response = tuple[list[bytes], list[bytes]]  # lines without CRLF, the literals between them


@dataclass(frozen=True, slots=True)
class Server:
    """Where the store connects and how (its ``ImapSettings``' values); ``trust`` for TLS."""

    host: str
    port: int
    tls: str  # "implicit", "starttls" or "none"
    timeout: float
    trust: TlsTrust | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def listing_now(
    server: Server, credentials: Credentials, connected: _socket.socket | None = None
) -> Listing:
    """The server's answers now (seen.py), as the store reads them at a sync's start;
    ``Unavailable`` when the probe cannot read them as the store would.  ``connected``: a
    connection to the server made already (``tcp.connect``), which is closed in the end."""
    where = server.where
    if connected is None:
        try:
            connected = tcp.connect(server.host, server.port, server.timeout)
        except OSError as e:
            raise Unavailable(tcp.unreachable(server.host, server.port, e)) from None
    conn = _Connection(connected)
    try:
        if server.tls == "implicit":
            conn.start_tls(server)
        return _session(conn, server, credentials)
    except (OSError, ParseError, UnicodeDecodeError) as e:  # ssl.SSLError is an OSError
        raise Unavailable(f"{where}: {type(e).__name__}: {e}") from None
    finally:
        conn.close()


def _session(conn: _Connection, server: Server, credentials: Credentials) -> Listing:
    greeting = conn.response()[0][0]
    if not greeting.startswith((b"* OK", b"* PREAUTH")):
        raise Unavailable("the server did not greet with OK")
    capabilities = _capabilities_of(greeting[2:].partition(b" ")[2]) or conn.capabilities()
    if server.tls == "starttls":
        if "STARTTLS" not in capabilities:
            raise Unavailable("STARTTLS is not offered")
        conn.command(["STARTTLS"])
        conn.start_tls(server)
        capabilities = conn.capabilities()
    elif server.tls != "implicit" and server.tls != "none":
        raise Unavailable(f"tls = {server.tls!r}")
    if greeting.startswith(b"* OK"):
        capabilities = _log_in(conn, server, credentials, capabilities)
    # One round trip for the rest, sent as the store sends it: ENABLE and NAMESPACE may be
    # refused (the store goes on with neither), the LIST may not.
    wanted = enable_wanted(capabilities)
    commands: list[tuple[list[Part], bool]] = []
    if wanted is not None:
        commands.append((["ENABLE", wanted], False))
    if "NAMESPACE" in capabilities:
        commands.append((["NAMESPACE"], False))
    commands.append((["LIST", '""', '"*"', *list_returns(capabilities)], True))
    replies = conn.pipelined(commands)
    enabled = frozenset(
        w.decode("ascii", "replace").upper()
        for lines, _ in (replies[0][1] if wanted is not None else [])
        if kind_of(lines[0]) == "ENABLED"
        for w in lines[0].split()[2:]
    )
    namespace = _kept(replies[-2][1], {"NAMESPACE"}) if "NAMESPACE" in capabilities else []
    listed = _kept(replies[-1][1], KINDS)
    conn.send(b"Z LOGOUT\r\n")
    return Listing(capabilities, enabled, tuple(namespace), tuple(listed))


def _log_in(
    conn: _Connection, server: Server, credentials: Credentials, capabilities: frozenset[str]
) -> frozenset[str]:
    """Log in the way the store would (``sasl.choose``); the capabilities after it."""
    way = sasl.choose(credentials, capabilities)
    if isinstance(way, sasl.LoginCommand):
        parts: list[Part] = [
            "LOGIN",
            quote_astring(credentials.user),
            Secret(quote_astring(credentials.secret)),
        ]
        done = conn.command(parts)[0]
    elif way is sasl.PLAIN:
        exchange = sasl.Exchange(
            way, credentials, sasl.Server(server.host, server.port), "SASL-IR" in capabilities
        )
        done = conn.command(exchange.command(), exchange.answer)[0]
    else:
        raise Unavailable("no login the probe speaks")
    return _capabilities_of(done.partition(b" ")[2]) or conn.capabilities()


def _capabilities_of(status: bytes) -> frozenset[str]:
    """The capabilities a status line's ``[CAPABILITY ...]`` names (empty when none)."""
    st = status_text(status)
    if st.code != "CAPABILITY":
        return frozenset()
    return frozenset(st.args.decode("ascii", "replace").upper().split())


def _kept(untagged: Sequence[Response], kinds: set[str] | frozenset[str]) -> list[bytes]:
    kept = []
    for lines, literals in untagged:
        if kind_of(lines[0]) in kinds:
            data = response_bytes(lines, literals)
            assert data is not None  # the probe keeps every literal in memory
            kept.append(data)
    return kept


class _Connection:
    """Lines and literals over a blocking socket, commands tagged ``Q1``, ``Q2``, ..."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock: _socket.socket = sock
        self._buffer = b""
        self._tags = 0
        self._read = 0

    def close(self) -> None:
        self.sock.close()

    def start_tls(self, server: Server) -> None:
        from mailtide.stores.imap.tls_trust import check_pin, tls_context

        trust = server.trust
        if self._buffer or trust is None:
            raise Unavailable("data after STARTTLS" if self._buffer else "no TLS trust given")
        import socket

        timeout = self.sock.gettimeout()
        plain = socket.socket(fileno=self.sock.detach())
        plain.settimeout(timeout)
        wrapped = tls_context(trust).wrap_socket(plain, server_hostname=server.host)
        self.sock = wrapped
        check_pin(trust, wrapped, server.where)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise Unavailable("the server closed the connection")
        self._read += len(data)
        if self._read > MAX_ANSWER:
            raise Unavailable("answers too long for the probe")
        self._buffer += data

    def _line(self) -> bytes:
        while (at := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self._buffer = self._buffer[:at], self._buffer[at + 2 :]
        return line

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def response(self) -> Response:
        lines, literals = [self._line()], []
        while (size := literal_size(lines[-1])) is not None:
            literals.append(self._bytes(size))
            lines.append(self._line())
        return lines, literals

    def _text(self, parts: Sequence[Part]) -> bytes:
        words = []
        for part in parts:
            if isinstance(part, Secret):
                words.append(part.text)
            elif isinstance(part, str):
                words.append(part)
            else:
                raise Unavailable("a command part the probe does not send")
        self._tags += 1
        return f"Q{self._tags} {' '.join(words)}\r\n".encode()

    def command(self, parts: Sequence[Part], answer: Any = None) -> tuple[bytes, list[Response]]:
        """Send one command; its tagged status line (after the tag) and untagged answers.
        ``answer``: what to say to a ``+`` continuation (an AUTHENTICATE exchange)."""
        self.send(self._text(parts))
        return self._until_tagged(f"Q{self._tags}".encode(), answer, True)

    def pipelined(
        self, commands: Sequence[tuple[Sequence[Part], bool]]
    ) -> list[tuple[bytes, list[Response]]]:
        """Several commands sent at once, each with whether it must succeed; each one's
        answers (in order: none of these may run beside another, RFC 9051 5.5)."""
        data = b"".join(self._text(parts) for parts, _ in commands)
        first = self._tags - len(commands) + 1
        self.send(data)
        return [
            self._until_tagged(f"Q{first + i}".encode(), None, must)
            for i, (_, must) in enumerate(commands)
        ]

    def _until_tagged(self, tag: bytes, answer: Any, ok_only: bool) -> tuple[bytes, list[Response]]:
        untagged: list[Response] = []
        while True:
            lines, literals = self.response()
            first = lines[0]
            if first.startswith(b"+"):
                if answer is None:
                    raise Unavailable("an unexpected continuation request")
                reply = answer(first[1:].strip())
                text = reply.text if isinstance(reply, Secret) else str(reply)
                self.send(text.encode() + b"\r\n")
                continue
            if first.startswith(tag + b" "):
                status = first[len(tag) + 1 :]
                if ok_only and not status.upper().startswith(b"OK"):
                    raise Unavailable(
                        f"{tag.decode()} answered {status[:2].decode('ascii', 'replace')}"
                    )
                return status, untagged
            if first.startswith(b"* BYE"):
                raise Unavailable("the server said BYE")
            untagged.append((lines, literals))

    def capabilities(self) -> frozenset[str]:
        status, untagged = self.command(["CAPABILITY"])
        for lines, _ in untagged:
            if kind_of(lines[0]) == "CAPABILITY":
                words = lines[0].split()[2:]
                return frozenset(w.decode("ascii", "replace").upper() for w in words)
        return _capabilities_of(status)
