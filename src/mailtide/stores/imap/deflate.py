"""COMPRESS=DEFLATE (RFC 4978): an IMAP connection carried in raw DEFLATE both ways.

After the server's tagged OK to ``COMPRESS DEFLATE``, every byte in each direction is one
DEFLATE stream (RFC 1951, no zlib header: wbits -15), starting right after the CRLF of the
command (ours) and of its OK (the server's).  Each write ends with a sync flush, so the
server can read a whole command the moment it is sent: a long-held IDLE connection never
waits for a buffer to fill.

Memory stays bounded whatever the server sends: ``inflate`` gives the plain bytes in pieces
of at most ``PIECE`` bytes (a few KB that inflate to gigabytes are read a piece at a time by
the response reader, which spools big literals to a file), and ``deflate`` compresses what
it is given, which the protocol streams in chunks (an APPEND's literal is never whole).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterator
from typing import Literal

# The ``compress`` setting: "auto" (where the server offers it and the host is not loopback),
# True (wherever the server offers it), False (never).
Compress = bool | Literal["auto"]

PIECE = 256 << 10  # plain bytes handed on at a time
LEVEL = 6  # zlib's default: most of the gain, a fraction of level 9's cost
CAPABILITY = "COMPRESS=DEFLATE"


def wanted(setting: Compress, host: str) -> bool:
    """Whether to ask for COMPRESS (where offered): on loopback, "auto" does not, since
    compressing costs CPU and saves nothing there."""
    if setting != "auto":
        return bool(setting)
    return not _loopback(host)


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class CorruptStream(Exception):
    """The server's DEFLATE stream cannot be inflated: the connection is unusable."""


class Deflate:
    """One connection's two DEFLATE streams: ``deflate`` what is sent, ``inflate`` what
    arrives.  Not thread-safe; one per connection, for its whole life."""

    def __init__(self) -> None:
        self._out = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)

    def deflate(self, data: bytes) -> bytes:
        """``data`` compressed and sync-flushed: the server can read all of it at once."""
        return self._out.compress(data) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def inflate(self, data: bytes) -> Iterator[bytes]:
        """Every plain byte that ``data`` completes, in pieces of at most ``PIECE`` bytes
        (none, when ``data`` ends inside a DEFLATE block); nothing inflatable is held back
        for the next call.  ``CorruptStream`` when it is not DEFLATE,
        or when the server ended its stream (a connection's stream never ends)."""
        pending = data
        full = False
        # A full piece may leave plain bytes inside the inflater even when all the input was
        # taken (a long match half copied): ask again, or they wait for a read that may never
        # come on an idle connection.
        while pending or full:
            try:
                piece = self._in.decompress(pending, PIECE)
            except zlib.error as e:
                raise CorruptStream(f"the server's compressed stream is corrupt ({e})") from None
            if self._in.eof:
                raise CorruptStream("the server ended its compressed stream")
            pending = self._in.unconsumed_tail
            full = len(piece) == PIECE
            if piece:
                yield piece
