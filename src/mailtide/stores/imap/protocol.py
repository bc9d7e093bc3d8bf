"""aioimaplib's protocol with our own response reader.

aioimaplib 2.0.3 keeps the connection, the tags and the command formatting,
but its response handling fails at real mailbox sizes:

1. ``_handle_responses`` recurses once per response line: past ~1,000 lines
   in one read it raises RecursionError inside ``data_received`` and the
   command never completes;
2. ``FetchCommand.wait_data`` rescans every line received so far after each
   line, so a FETCH of n messages costs O(n²);
3. untagged responses that do not match the command in flight (EXPUNGE,
   VANISHED, EXISTS during a STORE) are logged and dropped;
4. ``_untagged_response`` does ``line.replace(b"* ", b"")``, which also
   strips "* " inside quoted strings.

``ImapProtocol`` replaces ``data_received`` and ``execute``: a
``ResponseReader`` cuts the byte stream into complete responses (lines and
literals) in one linear pass without recursion; each response goes to the one
command in flight (commands are serialised by a lock), whose callback may
consume it at once (streaming FETCH); EXPUNGE / VANISHED / EXISTS and
unrequested FETCH responses are also kept in ``unsolicited``.  Every wait has
a timeout that restarts whenever the server sends something (inside a
literal: every ``LITERAL_PROGRESS`` bytes), so a slow but live 25 MB transfer
is not cut off while a silent or trickling server is.  At -vv each command and
each response is logged without secrets or message bodies (``wire.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aioimaplib import aioimaplib as aio

from mailtide.deadline import within
from mailtide.stores.imap import wire
from mailtide.stores.imap.deflate import CorruptStream, Deflate
from mailtide.stores.imap.parse import (
    LiteralData,
    ParseError,
    RawResponse,
    SpooledLiteral,
    Untagged,
    literal_size,
    status_text,
    untagged,
)
from mailtide.stores.imap.wire import Part, Secret

log = structlog.get_logger(__name__)

# Acknowledge what arrives at once (Linux): a server that writes with Nagle's algorithm on
# holds its last small segment (a tagged OK after a FETCH's literals, a DEFLATE flush) until
# the segment before is acknowledged, and a delayed ACK waits up to 40 ms: with COMPRESS on,
# that was 40 ms per command, more than half of a first sync's time (issue 12).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

MAX_LINE = 8 << 20  # a longer line without a literal is not IMAP, it is a broken server
MAX_LITERAL = 2 << 30  # a message bigger than 2 GiB is refused (a protocol error that says so)
SPOOL_ABOVE = 1 << 20  # a bigger literal goes to a temporary file: it costs disk, not memory
MAX_HELD = 16 << 20  # bytes of one response in memory (its lines and small literals)
MAX_LITERALS = 100  # literals in one response; a real one has a few
MAX_KEPT = 64 << 20  # bytes of untagged responses one command keeps (a LIST of 100k folders: 5 MB)
MAX_UNSOLICITED = 1_000_000  # EXPUNGE / EXISTS / ... kept between two mailbox reads
LITERAL_PROGRESS = 64 << 10  # bytes of a literal that restart the timeout (60 s: ~1 KiB/s)

UNSOLICITED_KINDS = frozenset({"EXPUNGE", "VANISHED", "EXISTS", "FETCH"})

_connections = itertools.count(1)  # numbers the connections of a run in the conversation log


class ProtocolError(Exception):
    """The server's byte stream cannot be understood; the connection is unusable."""


class ConnectionClosed(ProtocolError):
    """The server (or the network) closed the connection: nothing malformed was seen.
    ``tls_error``: the TLS error that ended it, if one did (a server's alert after the
    handshake, such as TLS 1.3's refusal of a client certificate), for the client to judge."""

    def __init__(self, message: str, tls_error: ssl.SSLError | None = None) -> None:
        super().__init__(message)
        self.tls_error = tls_error


class CommandTimeout(Exception):
    """The server sent nothing for ``timeout`` seconds while a command was in flight."""


class IdleRefused(Exception):
    """The server answered IDLE (or its DONE) with NO or BAD: no IDLE on this connection."""


class IdleEnd(enum.Enum):
    """Why an IDLE ended (each time with DONE and the server's tagged OK)."""

    RENEW = "renew"  # it ran for ``renew`` seconds: time to issue it again
    STOPPED = "stopped"  # the caller's ``stop`` was set
    SILENCE = "silence"  # ``keepalive`` seconds without a word; a NOOP then proved it alive
    SERVER = "server"  # the server ended it by itself (a tagged OK without our DONE)


class ResponseReader:
    """Bytes in, complete ``RawResponse`` values out; linear in the bytes received.

    A partial line is kept as a list of pieces and only the newest piece is
    searched for CRLF; a literal is read into a buffer of exactly its size, or,
    above ``spool_above`` bytes, into a ``SpooledLiteral`` (a temporary file), so
    what the reader holds in memory stays under ``MAX_HELD`` + ``MAX_LINE`` whatever
    the server announces or sends.  Anything that is not IMAP raises ``ProtocolError``
    (and only that); after it the reader is unusable, and ``close`` gives back its files.
    """

    def __init__(self, max_literal: int = MAX_LITERAL, spool_above: int = SPOOL_ABOVE) -> None:
        self._max_literal = max_literal
        self._spool_above = spool_above
        self._pieces: list[bytes] = []  # the partial line so far
        self._pending_len = 0
        self._lines: list[bytes] = []  # complete lines of the response being read
        self._literals: list[LiteralData] = []
        self._held = 0  # bytes of _lines and of in-memory literals
        self._literal: LiteralData | None = None
        self._literal_fill = 0
        # A tag whose tagged response ends a ``feed`` early: what follows it in the same read
        # is kept in ``rest`` (after COMPRESS's OK the server's bytes are DEFLATE, not IMAP).
        self.pause_after: bytes | None = None
        self.rest: bytes | None = None

    @property
    def idle(self) -> bool:
        """True when no partial response is buffered (safe point for STARTTLS)."""
        return not (self._pieces or self._lines or self._literal is not None)

    @property
    def in_literal(self) -> bool:
        """True while the bytes of a literal are expected."""
        return self._literal is not None

    @property
    def waiting(self) -> str:
        """What the reader still waits for, as words to add to an error ("" when idle)."""
        literal = self._literal
        if literal is None:
            return " in the middle of a response line" if self._pieces or self._lines else ""
        got = literal.filled if isinstance(literal, SpooledLiteral) else self._literal_fill
        return f" in the middle of a literal ({got:,} of {len(literal):,} bytes received)"

    @property
    def held(self) -> int:
        """Bytes of the response being read that are held in memory."""
        return self._held + self._pending_len

    def close(self) -> None:
        """Give back the temporary files of a response that will never be complete."""
        RawResponse(self._lines, self._literals).close()
        if isinstance(self._literal, SpooledLiteral):
            self._literal.close()
        self._pieces, self._lines, self._literals, self._literal = [], [], [], None
        self._pending_len = self._held = 0

    def feed(self, data: bytes) -> list[RawResponse]:
        out: list[RawResponse] = []
        view = memoryview(data)
        pos = 0
        n = len(data)
        if self._pieces and self._pieces[-1].endswith(b"\r") and data.startswith(b"\n"):
            # The CRLF that ends the partial line was split across two reads.
            line = b"".join(self._pieces)[:-1]
            self._pieces.clear()
            self._pending_len = 0
            pos = 1
            self._line_done(line, out)
            if self._paused(out, data, pos):
                return out
        while pos < n:
            literal = self._literal
            if isinstance(literal, SpooledLiteral):
                take = min(literal.size - literal.filled, n - pos)
                try:
                    literal.write(view[pos : pos + take])
                except OSError as e:
                    raise ProtocolError(
                        f"cannot keep a literal of {literal.size} bytes in a temporary file: {e}"
                    ) from None
                pos += take
                if literal.complete:
                    self._literals.append(literal)
                    self._literal = None
                continue
            if literal is not None:
                take = min(len(literal) - self._literal_fill, n - pos)
                end = self._literal_fill + take
                literal[self._literal_fill : end] = view[pos : pos + take]
                self._literal_fill = end
                pos += take
                if self._literal_fill == len(literal):
                    self._literals.append(literal)
                    self._literal = None
                continue
            at = data.find(b"\r\n", pos)
            if at < 0:
                self._pieces.append(data[pos:])
                self._pending_len += n - pos
                if self._pending_len > MAX_LINE:
                    raise ProtocolError(f"response line longer than {MAX_LINE} bytes")
                break
            if self._pieces:
                line = b"".join([*self._pieces, data[pos:at]])
                self._pieces.clear()
                self._pending_len = 0
            else:
                line = data[pos:at]
            if len(line) > MAX_LINE:
                raise ProtocolError(f"response line longer than {MAX_LINE} bytes")
            pos = at + 2
            self._line_done(line, out)
            if self._paused(out, data, pos):
                return out
        return out

    def _paused(self, out: list[RawResponse], data: bytes, pos: int) -> bool:
        """Whether the response just read answers ``pause_after``: then the bytes after it
        go to ``rest``, unread, and the reader waits for the next ``feed``."""
        tag = self.pause_after
        if tag is None or not out or not out[-1].first.startswith(tag + b" "):
            return False
        self.pause_after = None
        self.rest = data[pos:]
        return True

    def _line_done(self, line: bytes, out: list[RawResponse]) -> None:
        try:
            size = literal_size(line)
        except ParseError as e:
            raise ProtocolError(str(e)) from None
        self._lines.append(line)
        self._held += len(line)
        if self._held > MAX_HELD:
            raise ProtocolError(f"response longer than {MAX_HELD} bytes besides its literals")
        if size is None:
            out.append(RawResponse(self._lines, self._literals))
            self._lines = []
            self._literals = []
            self._held = 0
            return
        if size > self._max_literal:
            raise ProtocolError(
                f"server announced a literal of {size:,} bytes, more than the limit of "
                f"{self._max_literal:,} (a message that big is refused)"
            )
        if len(self._literals) >= MAX_LITERALS:
            raise ProtocolError(f"response with more than {MAX_LITERALS} literals")
        if size > self._spool_above or self._held + size > MAX_HELD:
            try:
                self._literal = SpooledLiteral(size)
            except OSError as e:
                raise ProtocolError(f"cannot open a temporary file for a literal: {e}") from None
        else:
            self._literal = bytearray(size)
            self._literal_fill = 0
            self._held += size
        if size == 0:
            self._literals.append(self._literal)
            self._literal = None


@dataclass(slots=True)
class Done:
    """How a command ended: the tagged status, its response code and the untagged responses kept."""

    status: str  # OK, NO, BAD (or BYE when the server hung up)
    code: str
    code_args: bytes
    text: str
    untagged: list[Untagged] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "OK"


# A callback sees each untagged response of its command as it arrives and
# returns True when it consumed it (so it is not kept in memory).
OnUntagged = Callable[[Untagged], bool]


@dataclass(slots=True)
class _InFlight:
    tag: bytes
    name: str
    on_untagged: OnUntagged | None
    done: asyncio.Future[Done]
    untagged: list[Untagged] = field(default_factory=list)
    continuation: asyncio.Event = field(default_factory=asyncio.Event)
    challenge: bytes = b""  # the text of the last continuation ("+ <text>")
    lines_for_compat: list[Any] | None = None
    kept: int = 0  # bytes held in ``untagged``
    # The caller takes every response itself (IDLE on a push connection): news it saw is not
    # kept again in ``unsolicited``, where nobody would read it.
    takes_news: bool = False
    kinds: frozenset[str] | None = None  # the untagged kinds it takes (None: any)
    # The account / mailbox the command runs for, for the conversation log of its responses.
    context: dict[str, Any] = field(default_factory=dict)


def _held_bytes(raw: RawResponse) -> int:
    """What a response costs in memory (a spooled literal costs a file, not memory)."""
    return sum(map(len, raw.lines)) + sum(
        len(lit) for lit in raw.literals if isinstance(lit, bytearray)
    )


class ImapProtocol(aio.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's client protocol with a linear, literal-aware, non-recursive reader."""

    # Attributes aioimaplib sets without annotations.
    state: str
    literal_data: bytes | None
    transport: asyncio.Transport | None
    capabilities: set[str]

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(loop, conn_lost_cb)
        self.timeout = timeout
        self.reader = ResponseReader()
        self.unsolicited: list[Untagged] = []
        self._unsolicited_bytes = 0
        self.greeting: asyncio.Future[RawResponse] = (
            loop or asyncio.get_running_loop()
        ).create_future()
        self._lock = asyncio.Lock()
        self._current: _InFlight | None = None
        # Commands sent after ``_current`` and not yet answered (``run_many``), oldest first.
        self._queued: list[_InFlight] = []
        self._broken: Exception | None = None
        self._last_activity = time.monotonic()
        self._trickled = 0  # bytes of a literal received since the timeout last restarted
        self.closing = False  # set before LOGOUT: the server hanging up is then expected
        self.number = next(_connections)
        self._deflate: Deflate | None = None  # COMPRESS=DEFLATE, once the server said OK
        self._context = structlog.contextvars.get_contextvars()  # for the greeting's log
        self._socket: Any = None

    # -- incoming -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._socket = transport.get_extra_info("socket")

    def data_received(self, d: bytes) -> None:
        if self._socket is not None and _QUICKACK is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        # Inside a literal the timeout restarts only per LITERAL_PROGRESS bytes: a server
        # trickling a 1 GB literal a byte at a time must not hold the command for ever.
        self._trickled += len(d)
        if self._trickled >= LITERAL_PROGRESS or not self.reader.in_literal:
            self._last_activity = time.monotonic()
            self._trickled = 0
        if self._broken is not None:
            return
        try:
            self._arrived(d)
            if not self.reader.in_literal:
                self._last_activity = time.monotonic()
                self._trickled = 0
        except CorruptStream as e:
            self._break(ConnectionClosed(str(e)))
        except (ProtocolError, ParseError) as e:
            self._break(ProtocolError(str(e)))
        except Exception as e:  # a bug in a response handler must not escape into asyncio
            log.error("imap.handler_failed", error=f"{type(e).__name__}: {e}", exc_info=True)
            self._break(ProtocolError(f"internal error reading a response: {type(e).__name__}"))

    def _arrived(self, data: bytes) -> None:
        """Bytes from the network: inflated first once COMPRESS is active."""
        if self._deflate is None:
            self._read(data)
            return
        for piece in self._deflate.inflate(data):
            self._read(piece)
            if self._broken is not None:
                return

    def _read(self, data: bytes) -> None:
        """Plain IMAP bytes to responses, each dispatched as it is complete."""
        for response in self.reader.feed(data):
            self._dispatch(response)
            if self._broken is not None:
                return  # e.g. BYE: what follows it is not for us
        rest, self.reader.rest = self.reader.rest, None
        if rest is None:
            return
        # COMPRESS was answered: after an OK the server's next byte is DEFLATE.
        current = self._current
        answer = current.done.result() if current is not None and current.done.done() else None
        if answer is not None and answer.ok:
            self._deflate = Deflate()
        if rest:
            self._arrived(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        # Not aioimaplib's, which logs "connection lost: None" for every close, a LOGOUT too.
        if self.closing:
            log.debug("imap.closed", conn=self.number)
        why = f": {exc}" if exc else ""
        tls_error = exc if isinstance(exc, ssl.SSLError) else None
        closed = ConnectionClosed(
            f"connection closed by server{why}{self.reader.waiting}", tls_error
        )
        self._break(closed)
        if self.conn_lost_cb is not None:
            self.conn_lost_cb(exc)

    def _break(self, error: Exception) -> None:
        if self._broken is None:
            self._broken = error
            # Before the login the client's connect error reports the break itself, judged
            # (a refused client certificate is not a lost connection): said once, there.
            connecting = self.state in (aio.STARTED, aio.CONNECTED, aio.NONAUTH)
            if not self.closing:
                (log.debug if connecting else log.warning)(
                    "imap.connection_broken", reason=str(error)
                )
        # Waiters see the error; marking it retrieved keeps asyncio from logging it again.
        if not self.greeting.done():
            self.greeting.set_exception(error)
            self.greeting.exception()
        current = self._current
        for waiting in [current, *self._queued]:
            if waiting is not None and not waiting.done.done():
                waiting.done.set_exception(error)
                waiting.done.exception()
        self.reader.close()
        if self.transport is not None:
            self.transport.close()

    def _dispatch(self, response: RawResponse) -> None:
        first = response.first
        # A line out of step with the commands is most likely a piece of a message body
        # (a literal of the wrong length before it): it is neither logged nor quoted.
        if first[:1] in (b"*", b"+") or self.state == aio.CONNECTED:
            self._log_received(response)
        if self.state == aio.CONNECTED:
            # The greeting: OK, PREAUTH (already logged in) or BYE (go away).
            kind = first[2:].split(b" ", 1)[0].upper()
            if not first.startswith(b"* ") or kind not in (b"OK", b"PREAUTH"):
                raise ProtocolError(f"server refused the connection: {first[:200]!r}")
            self.state = aio.AUTH if kind == b"PREAUTH" else aio.NONAUTH
            if not self.greeting.done():
                self.greeting.set_result(response)
            return
        current = self._current
        if first.startswith(b"* "):
            item = untagged(response)
            self._untagged(item, self._taker(item.kind, current))
            return
        if first.startswith(b"+"):
            if current is not None:
                current.challenge = first[2:]
                current.continuation.set()
            else:
                log.debug("imap.continuation_ignored")
            return
        tag, _, rest = first.partition(b" ")
        if current is not None and tag != current.tag:
            # Pipelined commands a server ran at once may end out of order (RFC 9051 5.5).
            current = next((q for q in self._queued if q.tag == tag), None) or current
        if current is None or tag != current.tag:
            raise ProtocolError(
                f"response out of step with the commands sent: a line of {len(first)} bytes "
                "that answers no command in flight (the server's responses before it did not "
                "add up, e.g. a literal of the wrong length)"
            )
        self._log_received(response)
        status, _, text = rest.partition(b" ")
        st = status_text(text)
        if current.lines_for_compat is not None:
            current.lines_for_compat.append(text)
        if not current.done.done():
            current.done.set_result(
                Done(
                    status.decode("ascii", "replace").upper(),
                    st.code,
                    st.args,
                    st.text,
                    current.untagged,
                )
            )
        if current is not self._current:
            self._queued.remove(current)
        elif self._queued:
            self._current = self._queued.pop(0)  # its untagged responses come next

    def _log_received(self, response: RawResponse) -> None:
        if wire.enabled():
            context = self._current.context if self._current is not None else self._context
            wire.received(self.number, response, context)

    def _taker(self, kind: str, current: _InFlight | None) -> _InFlight | None:
        """The command an untagged response of ``kind`` answers: the oldest in flight that
        takes that kind (``Pipelined.kinds``).  A server may run pipelined commands at once
        (RFC 9051 5.5), so a later command's answers may come before an earlier one ends."""
        for inflight in [current, *self._queued]:
            if inflight is not None and (inflight.kinds is None or kind in inflight.kinds):
                return inflight
        return current

    def _untagged(self, item: Untagged, current: _InFlight | None) -> None:
        if item.kind == "BYE" and not self.closing:
            # The server is about to hang up: say why now rather than wait for the close.
            text = status_text(item.raw.first[6:]).text
            log.info("imap.bye", text=text)
            self._break(ConnectionClosed(f"server closed the connection (BYE {text})"[:300]))
            return
        consumed = False
        if current is not None:
            if current.lines_for_compat is not None:
                # aioimaplib's callers expect the line without "* " and literals in between.
                current.lines_for_compat.append(item.raw.first[2:])
                for line, lit in zip(item.raw.lines[1:], item.raw.literals, strict=True):
                    current.lines_for_compat.extend((lit, line))
            if current.on_untagged is not None:
                consumed = current.on_untagged(item)
            if not consumed:
                current.untagged.append(item)
                current.kept += _held_bytes(item.raw)
                if current.kept > MAX_KEPT:
                    raise ProtocolError(
                        f"server sent more than {MAX_KEPT} bytes of untagged responses to one "
                        f"{current.name} command"
                    )
        # A FETCH answering our own FETCH or STORE belongs to that command only;
        # anything else that changes the mailbox is news the mailbox must not miss.
        answers_command = current is not None and current.name in ("FETCH", "STORE")
        taken = current is not None and current.takes_news
        if (
            item.kind in UNSOLICITED_KINDS
            and not taken
            and not (item.kind == "FETCH" and answers_command)
        ):
            if not self.unsolicited:  # a reader emptied it
                self._unsolicited_bytes = 0
            self._unsolicited_bytes += _held_bytes(item.raw)
            if len(self.unsolicited) >= MAX_UNSOLICITED or self._unsolicited_bytes > MAX_KEPT:
                raise ProtocolError(
                    f"more than {MAX_UNSOLICITED} unsolicited responses or {MAX_KEPT} bytes of them"
                )
            self.unsolicited.append(item)

    # -- outgoing -------------------------------------------------------------------

    async def run(
        self,
        *parts: Part,
        on_untagged: OnUntagged | None = None,
        name: str | None = None,
        literal_plus: bool = False,
    ) -> Done:
        """Send one command (serialised with every other) and wait for its tagged status.

        ``parts`` are joined with spaces; a ``(size, chunks)`` pair is sent as a
        literal (``{N+}`` without waiting when ``literal_plus``, else after the
        server's continuation).  A ``Secret`` part is sent as it is and never logged.
        """
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            tag = self.new_tag().encode()
            cmd_name = name or _command_name(parts)
            inflight = _InFlight(tag, cmd_name, on_untagged, self._new_future())
            inflight.context = _log_context()
            self._current = inflight
            try:
                await self._send(tag, parts, inflight, literal_plus)
                done: Done = await self._wait(inflight.done, f"{cmd_name} command")
                return done
            except asyncio.CancelledError:
                # Its answer may still be coming: the stream cannot be followed any more.
                self._break(ConnectionClosed(f"{cmd_name} command cancelled"))
                raise
            finally:
                self._current = None

    async def run_many(self, commands: Sequence[Pipelined]) -> list[Done]:
        """Send ``commands`` at once and wait for their tagged statuses, in order: one round
        trip for all of them instead of one each (pipelining, RFC 9051 5.5).

        Each command's untagged responses are those that arrive after the tagged answer of
        the one before it: a server runs a command that depends on the one before (a FETCH
        after its SELECT) only when that one has ended, and answers in order.  A server
        that runs independent commands at once may mix their responses: a command that
        takes only some kinds (``Pipelined.kinds``) leaves the others to the commands after
        it, and the callers of a set that take the same kinds (STOREs of other messages)
        give every command of it one ``on_untagged`` that reads them all alike.  No part may
        be a literal (it would wait for the server's continuation before the commands after
        it could be sent)."""
        if not commands:
            return []
        if any(has_literal(c.parts) for c in commands):
            raise ValueError("a pipelined command cannot send a literal")
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            flights = [self._flight_of(c) for c in commands]
            self._current, self._queued = flights[0], flights[1:]
            try:
                self._send_at_once(flights, commands)
                return [await self._wait(f.done, f"{f.name} command") for f in flights]
            except asyncio.CancelledError:
                self._break(ConnectionClosed("pipelined commands cancelled"))
                raise
            finally:
                self._current = None
                self._queued = []

    @contextlib.asynccontextmanager
    async def window(self) -> AsyncIterator[Window]:
        """The connection held for a run of commands, each sent at once without waiting for
        the answers of those before it (``Window``): the link never idles between them.
        On the way out the commands still unanswered are waited for, so the connection stays
        in step for the next; cancelled, it is dropped instead (their answers may still be
        coming)."""
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            window = Window(self)
            try:
                yield window
                await window.settle()
            except asyncio.CancelledError:
                if window.unanswered:
                    self._break(ConnectionClosed("pipelined commands cancelled"))
                raise
            except BaseException:
                # The caller's failure (or its generator closed) is what it sees: a
                # connection that fails meanwhile is broken, and says so to the next command.
                with contextlib.suppress(Exception):
                    await window.settle()
                raise
            finally:
                self._current = None
                self._queued = []

    def _flight_of(self, command: Pipelined) -> _InFlight:
        """``command`` in flight, under a new tag (``run_many``, ``Window.send``)."""
        return _InFlight(
            self.new_tag().encode(),
            _command_name(command.parts),
            command.on_untagged,
            self._new_future(),
            takes_news=command.takes_news,
            kinds=command.kinds,
            context=_log_context(),
        )

    def _send_at_once(self, flights: Sequence[_InFlight], commands: Sequence[Pipelined]) -> None:
        """``commands`` (none with a literal) in one write: they leave in one packet where
        they fit."""
        self._write(
            b"".join(
                self._line_of(inflight.tag, command.parts)
                for inflight, command in zip(flights, commands, strict=True)
            )
        )

    def _sent_after(self, inflight: _InFlight) -> None:
        """``inflight`` is sent after every command still in flight: its untagged answers
        come after theirs (``_dispatch`` moves on as each ends)."""
        current = self._current
        if current is None or current.done.done():
            self._current, self._queued = inflight, []
        else:
            self._queued.append(inflight)

    async def run_exchange(
        self, parts: Sequence[Part], answer: Callable[[bytes], str | Secret]
    ) -> Done:
        """Send the command ``parts``, answer each continuation ("+ <text>") with the line
        ``answer(text)``, and wait for the tagged status: a SASL exchange (AUTHENTICATE).
        A ``Secret`` answer is sent as it is and logged as redacted."""
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            tag = self.new_tag().encode()
            name = parts[0].upper() if isinstance(parts[0], str) else "?"
            inflight = _InFlight(tag, name, None, self._new_future())
            inflight.context = _log_context()
            self._current = inflight
            try:
                await self._send(tag, parts, inflight, False)
                while await self._continued(inflight):
                    inflight.continuation.clear()
                    line = answer(inflight.challenge)
                    if wire.enabled():
                        wire.sent(self.number, wire.command_line(b"", [line]).lstrip())
                    text = line.text if isinstance(line, Secret) else line
                    self._write(text.encode() + b"\r\n")
                done: Done = await self._wait(inflight.done, f"{name} command")
                return done
            finally:
                self._current = None

    # -- IDLE (RFC 2177) -------------------------------------------------------------

    async def idle(
        self,
        on_untagged: Callable[[Untagged], object],
        *,
        renew: float,
        keepalive: float,
        stop: asyncio.Event | None = None,
    ) -> IdleEnd:
        """One IDLE: every untagged response goes to ``on_untagged`` as it arrives (and is not
        kept in ``unsolicited``), until ``renew`` seconds have passed, ``stop`` is set, or the
        server has been silent for ``keepalive`` seconds (then a NOOP, whose responses go to
        ``on_untagged`` too, proves the connection alive).  Ends with DONE and the tagged OK.

        While idling only ``keepalive`` applies, not ``timeout``; the answer to DONE or NOOP
        must come within ``timeout`` (else ``CommandTimeout``).  A BYE or a closed connection
        raises ``ConnectionClosed`` at once; NO or BAD raises ``IdleRefused``.
        """

        def take(item: Untagged) -> bool:
            on_untagged(item)
            return True

        async with self._lock:
            if self._broken is not None:
                raise self._broken
            end = await self._one_idle(take, renew, keepalive, stop)
            if end is IdleEnd.SILENCE:
                await self._taking("NOOP", take)
            return end

    async def _one_idle(
        self, take: OnUntagged, renew: float, keepalive: float, stop: asyncio.Event | None
    ) -> IdleEnd:
        """IDLE, the wait while the server pushes, DONE and the tagged OK."""
        inflight = self._in_flight("IDLE", take)
        done_written = False
        try:
            await self._send(inflight.tag, ["IDLE"], inflight, False)
            if not await self._continued(inflight):
                raise IdleRefused(_said(inflight.done.result()))
            end = await self._idling(inflight, renew, keepalive, stop)
            done_written = end is not IdleEnd.SERVER
            await self._idle_done(inflight, end)
            return end
        except asyncio.CancelledError:
            await self._abandon(inflight, write_done=not done_written)
            raise
        finally:
            self._current = None

    async def _taking(self, name: str, take: OnUntagged) -> None:
        """A command without arguments whose every response goes to ``take``."""
        inflight = self._in_flight(name, take)
        try:
            await self._send(inflight.tag, [name], inflight, False)
            await self._wait(inflight.done, f"{name} command")
        except asyncio.CancelledError:
            await self._abandon(inflight, write_done=False)
            raise
        finally:
            self._current = None

    def _in_flight(self, name: str, take: OnUntagged) -> _InFlight:
        """A command of ours that takes every response itself, now the one in flight."""
        inflight = _InFlight(self.new_tag().encode(), name, take, self._new_future())
        inflight.takes_news = True
        inflight.context = _log_context()
        self._current = inflight
        return inflight

    async def _idling(
        self, inflight: _InFlight, renew: float, keepalive: float, stop: asyncio.Event | None
    ) -> IdleEnd:
        """Wait while the server pushes; the reason to end (a break raises at once)."""
        deadline = time.monotonic() + renew
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        waiters: set[asyncio.Future[Any]] = {inflight.done}
        if stopping is not None:
            waiters.add(stopping)
        try:
            while True:
                if inflight.done.done():
                    inflight.done.result()  # BYE, or the connection closed: raises
                    return IdleEnd.SERVER
                if stopping is not None and stopping.done():
                    return IdleEnd.STOPPED
                now = time.monotonic()
                silent_until = self._last_activity + keepalive
                if now >= deadline:
                    return IdleEnd.RENEW
                if now >= silent_until:
                    return IdleEnd.SILENCE
                await asyncio.wait(
                    waiters,
                    timeout=min(deadline, silent_until) - now,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            if stopping is not None:
                stopping.cancel()

    async def _idle_done(self, inflight: _InFlight, end: IdleEnd) -> None:
        """DONE (unless the server ended it) and its tagged OK within ``timeout``."""
        if end is not IdleEnd.SERVER:
            if wire.enabled():
                wire.sent(self.number, "DONE")
            self._write(b"DONE\r\n")
            self._last_activity = time.monotonic()  # the silence before DONE is not its fault
        done: Done = await self._wait(inflight.done, "IDLE command (DONE)")
        if not done.ok:
            raise IdleRefused(_said(done))

    async def _abandon(self, inflight: _InFlight, write_done: bool) -> None:
        """Cancelled with ``inflight`` unanswered: wait a moment for its answer (after DONE,
        when an IDLE still runs) so that the next command (LOGOUT) is understood; failing
        that, drop the connection."""
        if inflight.done.done():
            return
        try:
            if write_done:
                if not inflight.continuation.is_set():
                    raise ConnectionClosed("IDLE cancelled before it began")
                self._write(b"DONE\r\n")
            await within(asyncio.shield(inflight.done), min(self.timeout, 2.0))
        except Exception:
            self.closing = True  # going away on purpose: no warning
            self._break(ConnectionClosed(f"{inflight.name} cancelled"))

    async def _send(
        self,
        tag: bytes,
        parts: Sequence[Part],
        inflight: _InFlight,
        plus: bool,
        shown: str | None = None,
    ) -> None:
        """Write one command; ``shown`` is how it is logged when not ``wire.command_line``."""
        if not has_literal(parts):
            self._write(self._line_of(tag, parts, shown))
            return
        self._sent_now(tag, parts, shown)
        pending = bytearray(tag)
        for part in parts:
            if isinstance(part, tuple):
                size, chunks = part
                pending += b" {%d%s}\r\n" % (size, b"+" if plus else b"")
                self._write(bytes(pending))
                pending.clear()
                if not plus:
                    inflight.continuation.clear()
                    if not await self._continued(inflight):
                        return  # refused before the literal (e.g. NO [TRYCREATE])
                sent = 0
                async for chunk in chunks:
                    self._write(chunk)
                    sent += len(chunk)
                    self._last_activity = time.monotonic()  # sending is progress too
                    await self._drain()
                if sent != size:
                    raise ProtocolError(f"literal sent {sent} bytes, announced {size}")
            else:
                pending += b" " + _part_bytes(part)
        pending += b"\r\n"
        self._write(bytes(pending))

    def _line_of(self, tag: bytes, parts: Sequence[Part], shown: str | None = None) -> bytes:
        """One command without a literal, as it is written; its timeout runs from now."""
        self._sent_now(tag, parts, shown)
        return tag + b"".join(b" " + _part_bytes(part) for part in parts) + b"\r\n"

    def _sent_now(self, tag: bytes, parts: Sequence[Part], shown: str | None) -> None:
        # Its timeout runs from now: a held connection's quiet before it is not its fault.
        self._last_activity = time.monotonic()
        if wire.enabled():
            wire.sent(self.number, shown or wire.command_line(tag, parts))

    async def _continued(self, inflight: _InFlight) -> bool:
        """Wait for the server's "+" (True) or for the command's end (False: refused, or the
        connection broke: ``inflight.done`` tells which)."""
        waiter = asyncio.ensure_future(inflight.continuation.wait())
        try:
            await self._wait(
                asyncio.ensure_future(self._first(waiter, inflight.done)), "continuation"
            )
        finally:
            waiter.cancel()
        return not inflight.done.done()

    @staticmethod
    async def _first(a: asyncio.Future[Any], b: asyncio.Future[Any]) -> None:
        await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)

    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise self._broken or ConnectionClosed("connection is closed")
        self.transport.write(data if self._deflate is None else self._deflate.deflate(data))

    def leave(self) -> None:
        """LOGOUT written, its answer not waited for (the socket is closed next, after what
        was written): only between commands, on a connection still whole."""
        transport = self.transport
        if (
            self._lock.locked()
            or self._broken is not None
            or transport is None
            or transport.is_closing()
        ):
            return
        with contextlib.suppress(Exception):  # the connection is going away anyway
            self._write(self._line_of(self.new_tag().encode(), ["LOGOUT"]))

    @property
    def compressed(self) -> bool:
        """Whether COMPRESS=DEFLATE is active on this connection."""
        return self._deflate is not None

    async def compress(
        self, first: Sequence[Part] | None = None
    ) -> tuple[Done | None, Done | None]:
        """COMPRESS DEFLATE (RFC 4978): after the server's OK every byte both ways is
        DEFLATE (see deflate.py); after NO or BAD nothing changes.  ``first``: a command
        sent in the same write before it (the LOGIN: a round trip less), whose answer comes
        first.  The tagged answers; the COMPRESS's is None when ``first`` failed and the
        server then hung up (as some do after a refused login)."""
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            commands = [
                *([Pipelined(first)] if first is not None else []),
                Pipelined(("COMPRESS DEFLATE",)),
            ]
            flights = [self._flight_of(c) for c in commands]
            *before, inflight = flights
            self._current, self._queued = flights[0], flights[1:]
            # The switch happens in ``_read``, at the exact byte after the OK's CRLF.
            self.reader.pause_after = inflight.tag
            try:
                self._send_at_once(flights, commands)
                answered: Done | None = None
                if before:
                    answered = await self._wait(before[0].done, f"{before[0].name} command")
                    if not answered.ok:
                        with contextlib.suppress(ProtocolError):
                            return answered, await self._wait(inflight.done, "COMPRESS command")
                        return answered, None
                done: Done = await self._wait(inflight.done, "COMPRESS command")
                return answered, done
            except asyncio.CancelledError:
                self._break(ConnectionClosed("COMPRESS command cancelled"))
                raise
            finally:
                self.reader.pause_after = None
                self._current = None
                self._queued = []

    async def _drain(self) -> None:
        # Keep at most a little in the send buffer: a 25 MB APPEND must not be buffered whole.
        transport = self.transport
        while (
            transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() > (1 << 20)
        ):
            await asyncio.sleep(0.005)
            if self._broken is not None:
                raise self._broken

    def _new_future(self) -> asyncio.Future[Done]:
        return asyncio.get_running_loop().create_future()

    async def _wait(self, future: asyncio.Future[Any], what: str) -> Any:
        """Wait for ``future``; time out only after ``timeout`` seconds of silence.  An
        answer that came while nobody waited (a ``Window``'s) is taken whenever asked."""
        while not future.done():
            remaining = self._last_activity + self.timeout - time.monotonic()
            if remaining <= 0:
                error = CommandTimeout(
                    f"no answer from server for {self.timeout:g} s ({what}){self.reader.waiting}"
                )
                self._break(error)
                raise error
            try:
                return await within(asyncio.shield(future), remaining)
            except TimeoutError:
                continue
        return future.result()

    # -- aioimaplib compatibility ---------------------------------------------------

    async def execute(self, command: aio.Command, scrub: str | None = None) -> aio.Response:
        """Run an aioimaplib ``Command`` through our reader (its methods keep working).

        Returns aioimaplib's ``Response(result, lines)``: untagged lines without
        the leading "* ", literals as separate items, the tagged text last.
        """
        spec = aio.Commands.get(command.name)
        if spec is not None and self.state not in spec.valid_states:
            raise aio.Abort(f"command {command.name} illegal in state {self.state}")
        text = str(command)[len(command.tag) + 1 :]
        parts: list[Part] = []
        if command.name == "APPEND" and self.literal_data is not None:
            data = bytes(self.literal_data)
            self.literal_data = None
            text = text.rsplit(" ", 1)[0]  # aioimaplib's own "{N}" marker

            async def one() -> AsyncIterator[bytes]:
                yield data

            parts = [text, (len(data), one())]
        else:
            parts = [text]
        lines: list[Any] = []
        async with self._lock:
            if self._broken is not None:
                raise self._broken
            tag = command.tag.encode()
            inflight = _InFlight(
                tag, command.name, None, self._new_future(), lines_for_compat=lines
            )
            inflight.context = _log_context()
            self._current = inflight
            # aioimaplib's LOGIN passes its password as ``scrub``
            hidden = text.replace(scrub, wire.SECRET_MARKER) if scrub else None
            shown = wire.command_line(tag, [hidden]) if hidden else None
            try:
                await self._send(tag, parts, inflight, False, shown)
                done: Done = await self._wait(inflight.done, f"{command.name} command")
            finally:
                self._current = None
        return aio.Response(done.status, lines)


class Window:
    """Commands sent one after another without waiting for the answers of those before
    (RFC 9051 5.5), on a connection held for them alone (``ImapProtocol.window``), each
    answer asked for when its caller wants it: a long FETCH in pieces keeps the next piece in
    flight while the caller writes the one before.  Untagged answers go as in ``run_many``.
    No literal: it would wait for the server's continuation."""

    def __init__(self, protocol: ImapProtocol) -> None:
        self._protocol = protocol
        self._sent: list[_InFlight] = []  # not yet asked for, oldest first

    @property
    def unanswered(self) -> bool:
        return any(not f.done.done() for f in self._sent)

    def send(self, command: Pipelined) -> Sent:
        p = self._protocol
        if has_literal(command.parts):
            raise ValueError("a pipelined command cannot send a literal")
        if p._broken is not None:
            raise p._broken
        inflight = p._flight_of(command)
        p._sent_after(inflight)
        p._write(p._line_of(inflight.tag, command.parts))
        self._sent.append(inflight)
        return Sent(inflight, command)

    async def answer(self, sent: Sent) -> Done:
        """The tagged answer of ``sent``, waited for if it has not come yet."""
        inflight = sent.inflight
        done: Done = await self._protocol._wait(inflight.done, f"{inflight.name} command")
        self._sent.remove(inflight)
        return done

    async def settle(self) -> None:
        """Wait for every command sent and not asked for (their answers go unread)."""
        for inflight in list(self._sent):
            if not self._protocol._broken:
                await self._protocol._wait(inflight.done, f"{inflight.name} command")
        self._sent.clear()


@dataclass(frozen=True, slots=True)
class Sent:
    """A command a ``Window`` sent: its answer is ``Window.answer(sent)``."""

    inflight: _InFlight
    command: Pipelined


@dataclass(frozen=True, slots=True)
class Pipelined:
    """One command of a pipelined set (``ImapProtocol.run_many``)."""

    parts: Sequence[Part]
    on_untagged: OnUntagged | None = None
    # Its untagged responses are its own, none of them news of the mailbox (a SELECT's).
    takes_news: bool = False
    check: bool = True  # its NO or BAD raises (ImapClient.run_many)
    # The only untagged kinds that answer it (ENABLE's ENABLED): any other that comes
    # while it runs answers a command after it, run at once.  None: any kind.
    kinds: frozenset[str] | None = None


def has_literal(parts: Sequence[Part]) -> bool:
    """Whether a command sends a literal (a ``(size, chunks)`` part): it waits for the
    server's continuation, so it cannot go in a flight."""
    return any(isinstance(part, tuple) for part in parts)


def _part_bytes(part: Part) -> bytes:
    """A command's part as sent (a ``Secret`` as it is: the log shows it redacted)."""
    if isinstance(part, Secret):
        return part.text.encode()
    if isinstance(part, str):
        return part.encode()
    assert not isinstance(part, tuple)  # a literal is sent by _send
    return part


def _command_name(parts: Sequence[Part]) -> str:
    """The command's name, as its answers are logged and its failure named: ``FETCH`` for a
    ``UID FETCH``."""
    first = parts[0] if isinstance(parts[0], str) else ""
    words = first.upper().split()
    return words[1] if words[:1] == ["UID"] and len(words) > 1 else (words[0] if words else "?")


def _said(done: Done) -> str:
    """The tagged answer as words for an error: ``NO [CODE] text``."""
    code = f" [{done.code}]" if done.code else ""
    return f"{done.status}{code} {done.text}".strip()


def _log_context() -> dict[str, Any]:
    """The account / mailbox bound where a command is sent, when the conversation is logged."""
    return structlog.contextvars.get_contextvars() if wire.enabled() else {}
