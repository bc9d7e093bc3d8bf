"""Fake IMAP servers on 127.0.0.1 for what a real server will not do.

Both run in their own thread, so tests on any event loop (or none, or a mailtide
subprocess) can use them, and both speak IMAP over a real socket.

- ``fake_imap``: greets, answers LIST (and any command given in ``replies``) with the given
  bytes, and every command with a tagged OK (an empty LIST, one unparsable FETCH line).
- ``FakeServer``: holds mailboxes of messages and answers enough of IMAP4rev1 (LIST, SELECT,
  STATUS, FETCH, UID FETCH/STORE/EXPUNGE, APPEND) for a real sync, with *faults*: for a
  (mailbox, UID, phase) the test writes its own bytes instead of the FETCH response (a
  truncated literal, garbage items, odd FLAGS...) and then goes on, closes the connection
  or goes silent.  ``chatter`` is sent before every response (unknown untagged responses).
  A message body may be generated on the fly (``FakeMessage.stream``), so a 300 MB message
  is never held in memory.  IDLE answers "+ idling" and ends on DONE, or follows
  ``idle_script`` (what to send, and pauses) and then hangs up.
"""

from __future__ import annotations

import enum
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO


@contextmanager
def fake_imap(list_reply: bytes, replies: dict[bytes, bytes] | None = None) -> Iterator[int]:
    """Serve until the block ends; yields the port.  ``replies`` gives the untagged lines sent
    before the tagged OK of other commands, by their first word (``b"SELECT"``, ``b"FETCH"``)."""
    extra = replies or {}

    class Session(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] fake ready\r\n")
            while line := self.rfile.readline():
                tag, _, rest = line.strip().partition(b" ")
                verb = rest.split(b" ")[0].upper()
                if verb == b"LIST":
                    self.wfile.write(list_reply)
                elif verb in extra:
                    self.wfile.write(extra[verb])
                if verb == b"LOGOUT":
                    self.wfile.write(b"* BYE bye\r\n")
                self.wfile.write(tag + b" OK done\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# ---- a fake server with mailboxes ---------------------------------------------------------

INTERNALDATE = "01-Jan-2024 00:00:00 +0000"
UIDVALIDITY = 4242


@dataclass
class FakeMessage:
    """A message in CRLF form: ``body``, or ``size`` bytes produced by ``stream()``."""

    uid: int
    body: bytes = b""
    flags: tuple[str, ...] = ()
    stream: Callable[[], Iterator[bytes]] | None = None
    size: int = 0

    @property
    def length(self) -> int:
        return self.size if self.stream is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        return self.stream() if self.stream is not None else iter([self.body])

    def header(self) -> bytes:
        head = b"".join(_first(self.chunks(), 65536))
        end = head.find(b"\r\n\r\n")
        return head[: end + 4] if end >= 0 else head


def _first(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk[:count]
        count -= len(chunk)
        if count <= 0:
            return


class Act(enum.Enum):
    """What the server does after a fault wrote its bytes."""

    GO_ON = "go on"  # the next response, then the tagged OK as usual
    CLOSE = "close"  # close the connection at once
    HANG = "hang"  # send nothing more, ever (until the client hangs up)


# phases of a FETCH, by what it asks: "listing" (FLAGS), "sizes", "identify", "body"
Fault = Callable[[BinaryIO, int, FakeMessage], Act]  # (out, sequence number, message)


def chatter_forever(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    """A fault that never answers, but keeps the connection alive: an untagged OK every
    0.2 s (each line resets a read timeout), until the client hangs up."""
    try:
        while True:
            out.write(b"* OK still working\r\n")
            out.flush()
            time.sleep(0.2)
    except OSError:
        return Act.CLOSE


@dataclass
class FakeServer:
    mailboxes: dict[str, list[FakeMessage]]
    faults: dict[tuple[str, int, str], Fault] = field(default_factory=dict)
    chatter: bytes = b""  # sent before every response line group
    exists: dict[str, int] = field(default_factory=dict)  # a false EXISTS count, by mailbox
    capabilities: str = "IMAP4rev1 LITERAL+ UIDPLUS"
    port: int = 0
    connections: int = 0  # connections accepted so far
    commands: list[str] = field(default_factory=list)  # "MAILBOX VERB" of each command
    # The answer to IDLE: bytes are sent ("{tag}" is the command's tag), a number is a pause
    # in seconds; then the connection is closed.  None: "+ idling", and OK after DONE.
    idle_script: list[bytes | float] | None = None

    def fault(self, mailbox: str, uid: int, phase: str) -> Callable[[Fault], Fault]:
        """Decorator: register ``fn`` for that message's response in that FETCH phase."""

        def register(fn: Fault) -> Fault:
            self.faults[(mailbox, uid, phase)] = fn
            return fn

        return register


def fetch_response(seq: int, msg: FakeMessage, items: str) -> Iterator[bytes]:
    """The normal ``* seq FETCH (...)`` response to ``items``, in pieces (a body streamed)."""
    parts = [f"UID {msg.uid}"]
    if "FLAGS" in items:
        parts.append(f"FLAGS ({' '.join(msg.flags)})")
    if "INTERNALDATE" in items:
        parts.append(f'INTERNALDATE "{INTERNALDATE}"')
    if "RFC822.SIZE" in items:
        parts.append(f"RFC822.SIZE {msg.length}")
    head = f"* {seq} FETCH (" + " ".join(parts)
    if "BODY.PEEK[]" in items:
        yield f"{head} BODY[] {{{msg.length}}}\r\n".encode()
        yield from msg.chunks()
        yield b")\r\n"
    elif "BODY.PEEK[HEADER]" in items:
        header = msg.header()
        text = b"".join(_first(msg.chunks(), len(header) + 4096))[len(header) :]
        yield f"{head} BODY[HEADER] {{{len(header)}}}\r\n".encode() + header
        yield f" BODY[TEXT]<0> {{{len(text)}}}\r\n".encode() + text + b")\r\n"
    else:
        yield (head + ")\r\n").encode()


def command_words(text: str) -> list[str]:
    """Command arguments: atoms, quoted strings (unquoted here) and (...) groups as text."""
    return [
        m.group(1).replace('\\"', '"').replace("\\\\", "\\")
        if m.group(1) is not None
        else m.group(0)
        for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\([^)]*\)|\S+', text)
    ]


def number_set(spec: str, top: int) -> set[int]:
    """The numbers an IMAP sequence set (``1:3,7,9:*``) names, ``*`` being ``top``."""
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        a = top if lo == "*" else int(lo)
        b = a if not hi else (top if hi == "*" else int(hi))
        out.update(range(min(a, b), max(a, b) + 1))
    return out


def read_literals(rfile: BinaryIO, wfile: BinaryIO, line: bytes) -> bytes:
    """The whole command that starts with ``line``: each literal (``{n}`` after a "+ go on",
    or ``{n+}`` at once) read and put back inline as ``{n}<data>``, then the line after it."""
    while m := re.search(rb"\{(\d+)(\+?)\}\r\n$", line):
        if not m.group(2):
            wfile.write(b"+ go on\r\n")
            wfile.flush()
        data = rfile.read(int(m.group(1)))
        line = line[: m.start()] + b"{" + str(len(data)).encode() + b"}" + data
        line += rfile.readline()
    return line


class _Hang(Exception):
    pass


class _Close(Exception):
    pass


@contextmanager
def serve(server: FakeServer) -> Iterator[FakeServer]:
    """Run ``server`` until the block ends (``server.port`` is set)."""
    lock = threading.Lock()
    open_sockets: set[socket.socket] = set()

    class Session(socketserver.StreamRequestHandler):
        disable_nagle_algorithm = True  # responses go out in pieces: no 40 ms waits for ACKs

        def handle(self) -> None:
            with lock:
                server.connections += 1
                open_sockets.add(self.request)
            self.selected: str | None = None
            try:
                self.wfile.write(f"* OK [CAPABILITY {server.capabilities}] fake\r\n".encode())
                while line := self.rfile.readline():
                    self.command(line)
            except (_Close, OSError):
                pass
            except _Hang:
                try:
                    while self.rfile.read(4096):
                        pass
                except OSError:
                    pass
            finally:
                with lock:
                    open_sockets.discard(self.request)

        def send(self, data: bytes) -> None:
            if server.chatter:
                self.wfile.write(server.chatter)
            self.wfile.write(data)

        def command(self, line: bytes) -> None:
            line = read_literals(self.rfile, self.wfile, line)
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            literal = b""
            if m := re.search(rb"\{\d+\}", rest):  # APPEND: the message, kept aside
                literal = rest[m.end() :]
                rest = rest[: m.start()]
            text = rest.decode("utf-8", "replace")
            words = command_words(text)
            verb = words[0].upper() if words else ""
            if verb == "UID" and len(words) > 1:
                verb, words = "UID " + words[1].upper(), words[1:]
            server.commands.append(f"{self.selected} {verb}")
            t = tag.decode()
            boxes = server.mailboxes
            if verb == "CAPABILITY":
                self.send(f"* CAPABILITY {server.capabilities}\r\n".encode())
            elif verb == "LIST":
                for name in boxes:
                    self.send(f'* LIST () "/" "{name}"\r\n'.encode())
            elif verb in ("SELECT", "EXAMINE"):
                name = words[1]
                if name not in boxes:
                    self.send(f"{t} NO no such mailbox\r\n".encode())
                    return
                self.selected = name
                msgs = boxes[name]
                uidnext = max((m.uid for m in msgs), default=0) + 1
                count = server.exists.get(name, len(msgs))
                self.send(
                    f"* {count} EXISTS\r\n* OK [UIDVALIDITY {UIDVALIDITY}] v\r\n"
                    f"* OK [UIDNEXT {uidnext}] n\r\n".encode()
                )
            elif verb == "STATUS":
                msgs = boxes.get(words[1], [])
                uidnext = max((m.uid for m in msgs), default=0) + 1
                self.send(
                    f'* STATUS "{words[1]}" (MESSAGES {len(msgs)} UIDNEXT {uidnext} '
                    f"UIDVALIDITY {UIDVALIDITY})\r\n".encode()
                )
            elif verb in ("FETCH", "UID FETCH"):
                self.fetch(verb == "UID FETCH", words[1], " ".join(words[2:]).upper())
            elif verb == "UID STORE" and self.selected is not None:
                uids = number_set(words[1], 1 << 31)
                flags = tuple(words[3].strip("()").split())
                for m in boxes[self.selected]:
                    if m.uid in uids:
                        now = set(m.flags)
                        now = now | set(flags) if words[2].startswith("+") else now - set(flags)
                        m.flags = tuple(sorted(now))
            elif verb == "UID EXPUNGE" and self.selected is not None:
                uids = number_set(words[1], 1 << 31)
                boxes[self.selected][:] = [
                    m
                    for m in boxes[self.selected]
                    if not (m.uid in uids and "\\Deleted" in m.flags)
                ]
            elif verb == "APPEND":
                msgs = boxes.setdefault(words[1], [])
                uid = max((m.uid for m in msgs), default=0) + 1
                flags = (
                    tuple(words[2].strip("()").split()) if words[2:3] and words[2][0] == "(" else ()
                )
                msgs.append(FakeMessage(uid, literal, flags))
                self.send(f"{t} OK [APPENDUID {UIDVALIDITY} {uid}] stored\r\n".encode())
                return
            elif verb == "CREATE":
                boxes.setdefault(words[1], [])
            elif verb == "IDLE":
                self.idle(tag)
                return
            elif verb == "LOGOUT":
                self.send(b"* BYE bye\r\n" + tag + b" OK bye\r\n")
                raise _Close
            elif verb not in ("LOGIN", "NOOP", "CHECK", "ENABLE", "CLOSE"):
                self.send(tag + b" BAD unknown command\r\n")
                return
            self.send(tag + b" OK done\r\n")

        def idle(self, tag: bytes) -> None:
            if server.idle_script is None:
                self.send(b"+ idling\r\n")
                self.wfile.flush()
                self.rfile.readline()  # DONE
                self.send(tag + b" OK idle done\r\n")
                return
            for step in server.idle_script:
                if isinstance(step, bytes):
                    self.wfile.write(step.replace(b"{tag}", tag))
                    self.wfile.flush()
                else:
                    time.sleep(step)
            self.request.shutdown(socket.SHUT_RDWR)
            raise _Close

        def fetch(self, by_uid: bool, spec: str, items: str) -> None:
            if self.selected is None:
                return
            msgs = server.mailboxes[self.selected]
            top = (max((m.uid for m in msgs), default=0) if by_uid else len(msgs)) or 1
            wanted = number_set(spec, top)
            phase = (
                "body"
                if "BODY.PEEK[]" in items
                else "identify"
                if "BODY.PEEK[HEADER]" in items
                else "listing"
                if "FLAGS" in items
                else "sizes"
            )
            for seq, msg in enumerate(list(msgs), 1):
                if (msg.uid if by_uid else seq) not in wanted:
                    continue
                fault = server.faults.get((self.selected, msg.uid, phase))
                if fault is None:
                    if server.chatter:
                        self.wfile.write(server.chatter)
                    for piece in fetch_response(seq, msg, items):
                        self.wfile.write(piece)
                    continue
                act = fault(self.wfile, seq, msg)
                self.wfile.flush()
                if act is Act.CLOSE:
                    self.request.shutdown(socket.SHUT_RDWR)
                    raise _Close
                if act is Act.HANG:
                    raise _Hang

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    tcp.daemon_threads = True
    server.port = tcp.server_address[1]
    thread = threading.Thread(target=tcp.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        tcp.shutdown()
        tcp.server_close()
        with lock:
            for sock in open_sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
