"""A 25 MB message goes in and comes out of a Maildir in bounded memory.

The measurement runs in a child process (this file as a script), so the
peak RSS (``ru_maxrss``) belongs to the delivery and the read-back alone.
The body is generated chunk by chunk, never held whole by the test either.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
SIZE = 25 * MIB
HEADER = b"Message-ID: <big@example.org>\r\nSubject: big\r\n\r\n"
LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/\r\n"


@dataclass(frozen=True, slots=True)
class GeneratedBody:
    """About ``SIZE`` bytes of CRLF text, produced 1 MiB at a time."""

    header: bytes

    @property
    def size(self) -> int:
        return len(self.header) + (SIZE // len(LINE)) * len(LINE)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.header
        lines_per_chunk = MIB // len(LINE)
        left = SIZE // len(LINE)
        while left:
            n = min(lines_per_chunk, left)
            yield LINE * n
            left -= n


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _probe(root: str) -> dict[str, float | bool]:
    from mailtide.core.identity import identity_of
    from mailtide.stores.base import Incoming
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    store = MaildirStore(MaildirSettings(root, "fs"))
    await store.connect()
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    header = HEADER
    body = GeneratedBody(header)
    expected = hashlib.sha256()
    async for chunk in body.chunks():
        expected.update(chunk)
    await box.append([])  # warm up imports and threads before the baseline
    base = _rss_mib()
    incoming = Incoming(frozenset(), None, identity_of(header, body.size), body)
    [msg_id] = await box.append([incoming])
    after_append = _rss_mib()
    got = hashlib.sha256()
    async for fetched in box.fetch([str(msg_id)]):
        assert fetched.body.size == body.size
        async for chunk in fetched.body.chunks():
            got.update(chunk)
    return {
        "base": base,
        "after_append": after_append,
        "peak": _rss_mib(),
        "same": got.digest() == expected.digest(),
    }


def test_25_mb_message_in_bounded_memory(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    root.mkdir()
    run = subprocess.run(
        [sys.executable, __file__, str(root)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["same"]
    growth = result["peak"] - result["base"]
    assert growth < 40, result  # a few MiB of chunks expected; 100 MB is the product limit
    [written] = (root / "INBOX" / "new").iterdir()
    lf_size = len(HEADER) - HEADER.count(b"\r") + SIZE // len(LINE) * (len(LINE) - 1)
    assert written.stat().st_size == lf_size


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_probe(sys.argv[1]))))
