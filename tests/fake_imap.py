"""A minimal IMAP server on 127.0.0.1 for what a real server will not do (an empty LIST).

It runs in its own thread, so tests on any event loop (or none) can use it.  It greets,
answers LIST (and any command given in ``replies``) with the given bytes, and every command
with a tagged OK.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


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
