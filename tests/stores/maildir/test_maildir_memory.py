"""A 25 MB message goes in and comes out of a Maildir in bounded memory; a batch of
bodies already in memory is written without a second, converted copy of the batch.

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
import tracemalloc
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


BATCH = 40  # messages of ...
EACH = 200 << 10  # ... 200 KiB: 8 MiB in memory, the size of a batch from a server


async def _batch_probe(root: str) -> dict[str, float | int]:
    """Deliver ``BATCH`` bodies held in memory (as a server's are) at once; the peak of what
    Python allocated meanwhile beyond the bodies themselves."""
    from mailtide.core.identity import identity_of_message
    from mailtide.stores.base import BytesBody, Incoming
    from mailtide.stores.maildir import MaildirSettings, MaildirStore

    store = MaildirStore(MaildirSettings(root, "fs"))
    await store.connect()
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    await box.append([])  # warm up imports and threads before the baseline
    lines = LINE * (EACH // len(LINE))
    bodies = [bytearray(HEADER.replace(b"big@", f"m{i}@".encode()) + lines) for i in range(BATCH)]
    incoming = [Incoming(frozenset(), None, identity_of_message(b), BytesBody(b)) for b in bodies]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    ids = await box.append(incoming)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {"delivered": len(ids), "peak_mib": peak / MIB}


def test_a_batch_held_in_memory_is_written_without_a_converted_copy(tmp_path: Path) -> None:
    """Bodies from a server are in memory already (CRLF); converting the whole batch to LF
    before writing it doubled what a sync holds (8 MiB here): one message's copy at a time."""
    root = tmp_path / "Mail"
    root.mkdir()
    run = subprocess.run(
        [sys.executable, __file__, "batch", str(root)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["delivered"] == BATCH
    assert result["peak_mib"] < 2, result  # one 200 KiB message converted, and bookkeeping
    written = list((root / "INBOX" / "new").iterdir())
    assert len(written) == BATCH
    assert all(b"\r" not in f.read_bytes() for f in written)


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
    if sys.argv[1] == "batch":
        print(json.dumps(asyncio.run(_batch_probe(sys.argv[2]))))
    else:
        print(json.dumps(asyncio.run(_probe(sys.argv[1]))))
