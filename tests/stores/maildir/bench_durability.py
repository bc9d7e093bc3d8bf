"""Batched durability vs fsync per file, for the choice in delivery.py (not a test).

Run: python tests/stores/maildir/bench_durability.py [N] [DIR]
Appends N small (4 KiB) messages in one batch to a fresh Maildir folder under
DIR (default: the current directory's file system), alternating the modes, 5
times each, with a ``sync`` before each run and all removals left to the end
(a noisy shared disk: deleting between runs skews the next one), and prints
the median wall time of each mode.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from mailtide.core.identity import identity_of
from mailtide.stores.base import BytesBody, Incoming
from mailtide.stores.maildir import MaildirSettings, MaildirStore
from mailtide.stores.maildir.delivery import Durability


def _message(i: int) -> Incoming:
    header = f"Message-ID: <{i}@bench>\r\nSubject: bench {i}\r\n\r\n".encode()
    data = header + b"x" * 70 + b"\r\n" * 1 + (b"y" * 78 + b"\r\n") * 50
    return Incoming(
        flags=frozenset({"\\Seen"}),
        internaldate=datetime(2024, 1, 1, tzinfo=UTC),
        identity=identity_of(header, len(data)),
        body=BytesBody(data),
        hint=str(i),
    )


async def _run(root: str, mode: Durability, n: int) -> float:
    store = MaildirStore(MaildirSettings(root, "fs"), durability=mode)
    await store.connect()
    await store.create_folder("INBOX")
    box = await store.open("INBOX")
    messages = [_message(i) for i in range(n)]
    start = time.perf_counter()
    await box.append(messages)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    base = sys.argv[2] if len(sys.argv) > 2 else "."
    modes: tuple[Durability, ...] = ("fsync", "syncfs")
    times: dict[Durability, list[float]] = {mode: [] for mode in modes}
    scratch = tempfile.mkdtemp(dir=base)
    try:
        for _ in range(5):
            for mode in modes:
                os.sync()
                root = tempfile.mkdtemp(dir=scratch)
                times[mode].append(asyncio.run(_run(root, mode, n)))
    finally:
        shutil.rmtree(scratch)
    for mode, got in times.items():
        runs = " ".join(f"{t:.2f}" for t in got)
        print(f"{mode:7s} {n} messages: median {statistics.median(got):.2f} s  ({runs})")


if __name__ == "__main__":
    main()
