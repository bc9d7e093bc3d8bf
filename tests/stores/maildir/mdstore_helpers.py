"""Test helpers for the Maildir store: messages in CRLF form, bodies in chosen chunk sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mailtide.core.identity import identity_of_message
from mailtide.stores.base import Incoming


@dataclass(frozen=True, slots=True)
class ChunkedBody:
    """A CRLF body served in chunks of the given sizes, cycling (to hit chunk boundaries)."""

    data: bytes
    sizes: Sequence[int] = (1 << 20,)

    @property
    def size(self) -> int:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        pos, i = 0, 0
        while pos < len(self.data):
            step = self.sizes[i % len(self.sizes)]
            yield self.data[pos : pos + step]
            pos += step
            i += 1


def message(n: int = 1, body: bytes = b"Hello.\r\n", extra_headers: bytes = b"") -> bytes:
    return (
        f"Message-ID: <m{n}@example.org>\r\nSubject: message {n}\r\n".encode()
        + extra_headers
        + b"\r\n"
        + body
    )


def incoming(
    data: bytes,
    flags: frozenset[str] = frozenset(),
    hint: str | None = None,
    date: datetime | None = datetime(2023, 5, 17, 8, 30, 15, tzinfo=UTC),
    sizes: Sequence[int] = (1 << 20,),
) -> Incoming:
    return Incoming(
        flags=flags,
        internaldate=date,
        identity=identity_of_message(data),
        body=ChunkedBody(data, sizes),
        hint=hint,
    )
