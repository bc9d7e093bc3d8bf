#!/usr/bin/env python3
"""What writing a corpus into a Maildir costs on this disk, with nothing else: the floor under
an initial sync's local side (issue 12: "10k files are written durably in 1.2 s with one
batched sync").  By hand, after a lab server was filled (bench/speed.py keeps it under
--bench-dir):

    .venv/bin/python bench/write_floor.py SOURCE_MAILDIR [--out DIR] [--batch-mib 8]
    .venv/bin/python bench/write_floor.py SOURCE_MAILDIR --busy 0.5   # beside a busy thread

Every file of SOURCE_MAILDIR's ``cur/`` and ``new/`` folders (read once beforehand, so the
source's disk is out of it) is written as a careful Maildir writer must: created in the
folder's ``tmp/`` (O_EXCL, 0600), written, and once a batch of ``--batch-mib`` MiB is
written, one ``syncfs`` of the file system, each file renamed into ``cur/``, and ``cur/`` and
``tmp/`` fsynced.  One thread, one folder per source folder, no line-end conversion, no
state.  Prints the files, bytes and seconds of each phase; a sync that writes the same files
cannot take less on this machine.

``--busy SHARE`` runs another thread beside the writer, in Python for SHARE of every 2 ms
and asleep for the rest, as an initial sync's event loop is (parsing the server's answers
about half the time): the writer's every system call gives up the GIL and waits to take it
back.  Measured on the lab corpus (2026-12-07): alone 5.9-7.2 s, beside a thread busy half
the time 13.3-13.6 s, which is what the initial sync takes (13.2 s); beside a thread that
never sleeps, more than ten minutes.  (Yet the small files written by a helper process gained
the sync only 3 %: see bench/README.md, session 24.)"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from mailtide.private import create_fd
from mailtide.stores.maildir.durability import fsync_dirs, syncfs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mailtide-write-floor"))
    ap.add_argument("--batch-mib", type=int, default=8)
    ap.add_argument("--busy", type=float, default=0.0, help="share of a busy thread beside it")
    args = ap.parse_args()
    if args.busy > 0:
        threading.Thread(target=_busy, args=(args.busy,), daemon=True).start()
    folders = sorted({p.parent.parent for p in args.source.glob("**/cur/*")})
    corpus = [
        (i, [f.read_bytes() for sub in ("cur", "new") for f in sorted((d / sub).iterdir())])
        for i, d in enumerate(folders)
    ]
    shutil.rmtree(args.out, ignore_errors=True)
    limit = args.batch_mib << 20
    phases = {"create+write": 0.0, "syncfs": 0.0, "rename+fsync dirs": 0.0}
    files = size = 0
    started = time.perf_counter()
    for i, bodies in corpus:
        folder = args.out / f"f{i}"
        for sub in ("tmp", "cur", "new"):
            (folder / sub).mkdir(parents=True, mode=0o700)
        batch: list[str] = []
        held = 0
        for n, body in enumerate(bodies):
            t = time.perf_counter()
            name = f"{n}.M{n}P{os.getpid()}.floor"
            fd = create_fd(str(folder / "tmp" / name))  # as the Maildir's delivery creates one
            os.write(fd, body)
            os.close(fd)
            phases["create+write"] += time.perf_counter() - t
            batch.append(name)
            held += len(body)
            files, size = files + 1, size + len(body)
            if held >= limit or n == len(bodies) - 1:
                _commit(folder, batch, phases)
                batch, held = [], 0
    total = time.perf_counter() - started
    print(f"{files} files, {size / 1e6:.0f} MB, {len(corpus)} folders: {total:.2f} s")
    for phase, seconds in phases.items():
        print(f"  {phase}: {seconds:.2f} s")
    shutil.rmtree(args.out, ignore_errors=True)
    return 0


def _busy(share: float, period: float = 0.002) -> None:
    """In Python for ``share`` of every ``period``, asleep for the rest, until the end."""
    while True:
        started = time.perf_counter()
        while time.perf_counter() - started < share * period:
            pass
        time.sleep((1 - share) * period)


def _commit(folder: Path, batch: list[str], phases: dict[str, float]) -> None:
    """The batch made durable as the Maildir's delivery does: one syncfs, the renames, the
    directories fsynced (stores/maildir/durability.py)."""
    t = time.perf_counter()
    syncfs(str(folder / "tmp"))
    phases["syncfs"] += time.perf_counter() - t
    t = time.perf_counter()
    for name in batch:
        os.rename(folder / "tmp" / name, folder / "cur" / f"{name}:2,")
    fsync_dirs(str(folder / sub) for sub in ("cur", "tmp"))
    phases["rename+fsync dirs"] += time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
