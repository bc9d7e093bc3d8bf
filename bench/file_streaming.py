"""How to stream a large message file from disk on the event loop: aiofiles or one
``asyncio.to_thread`` per chunk (what ``MaildirBody`` does), and a batch of small files read
in one ``to_thread`` (what the Maildir store does) against aiofiles per file.

    .venv/bin/pip install aiofiles && .venv/bin/python bench/file_streaming.py [MB] [FILES]

Measured here (2026-12, second round, warm caches): a 200 MB file in 1 MiB chunks 60 ms with
to_thread, 59 ms with aiofiles (aiofiles is a thread pool too); 2,000 files of 4 KB 49 ms in
batches of 500 per to_thread, 1,148 ms with aiofiles (a thread hop per open, read and close).
So mailtide reads in batches with to_thread and does not depend on aiofiles.

Prints the wall time of each, and the loop's longest stall while it runs (a ticker every
1 ms measures how late it wakes), since the point of either is to keep the loop free."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

import aiofiles

CHUNK = 1 << 20


async def ticker(stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        worst[0] = max(worst[0], time.perf_counter() - t - 0.001)


async def measured(name: str, work) -> None:  # type: ignore[no-untyped-def]
    stop, worst = asyncio.Event(), [0.0]
    tick = asyncio.create_task(ticker(stop, worst))
    t = time.perf_counter()
    await work()
    took = time.perf_counter() - t
    stop.set()
    await tick
    print(f"{name:45s} {took * 1000:8.1f} ms   loop stalled at most {worst[0] * 1000:6.2f} ms")


async def main() -> None:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        big = os.path.join(tmp, "big")
        with open(big, "wb") as f:
            f.write(os.urandom(CHUNK) * mb)
        small = []
        for i in range(files):
            path = os.path.join(tmp, f"m{i}")
            with open(path, "wb") as f:
                f.write(os.urandom(4000))
            small.append(path)

        async def big_to_thread() -> None:
            f = await asyncio.to_thread(open, big, "rb")
            while await asyncio.to_thread(f.read, CHUNK):
                pass
            f.close()

        async def big_aiofiles() -> None:
            async with aiofiles.open(big, "rb") as f:
                while await f.read(CHUNK):
                    pass

        def read_all(paths: list[str]) -> int:
            n = 0
            for p in paths:
                with open(p, "rb") as f:
                    n += len(f.read())
            return n

        async def small_batch() -> None:
            for start in range(0, files, 500):
                await asyncio.to_thread(read_all, small[start : start + 500])

        async def small_aiofiles() -> None:
            for p in small:
                async with aiofiles.open(p, "rb") as f:
                    await f.read()

        for _ in range(2):  # the second round is the one to read (caches warm)
            await measured(f"{mb} MB file, to_thread per 1 MiB chunk", big_to_thread)
            await measured(f"{mb} MB file, aiofiles per 1 MiB chunk", big_aiofiles)
            await measured(f"{files} files of 4 KB, to_thread per 500", small_batch)
            await measured(f"{files} files of 4 KB, aiofiles per file", small_aiofiles)


if __name__ == "__main__":
    asyncio.run(main())
