"""Local deletions for the ``local`` step, and the check that they left the server: the
lab's ``labtool.py`` changes flags only (``local-flags``).  Message-IDs name the messages,
as in ``labtool.py check``."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from daemon_bench.lab import Server

Deleted = dict[str, list[str]]  # folder (UTF-8, "/") -> Message-IDs deleted locally


def _labtool(lab: Path) -> Any:
    sys.path.insert(0, str(lab))
    import labtool

    return labtool


def delete_local(lab: Path, maildir: Path, layout: str, n: int, seed: int, spare: Path) -> Deleted:
    """Delete ``n`` random local messages, none of those ``spare`` (a ``local-flags`` record)
    names; what was deleted."""
    lt = _labtool(lab)
    keep = {mid for mids in json.loads(spare.read_text()).values() for mid in mids}
    candidates = []
    for name, path in sorted(lt.local_folders(str(maildir), layout).items()):
        for sub, fn in sorted(lt.maildir_files(path)):
            candidates.append((name, os.path.join(path, sub, fn)))
    rng = random.Random(f"delete-{seed}")
    rng.shuffle(candidates)
    deleted: Deleted = {}
    for name, path in candidates:
        if sum(map(len, deleted.values())) >= n:
            break
        mid = lt.read_msgid(path)
        if mid is None or mid in keep:
            continue
        os.unlink(path)
        deleted.setdefault(name, []).append(mid)
    return deleted


def still_on_server(lab: Path, server: Server, deleted: Deleted) -> list[str]:
    """The deleted messages the server still holds (empty: every deletion arrived)."""
    lt = _labtool(lab)
    args = type("Args", (), {"host": server.host, "port": server.port, "user": server.user,
                             "password": server.password})  # fmt: skip
    m = lt.connect(args)
    problems = []
    try:
        wire = {lt.norm(f): f for f in lt.folders(m)}
        for folder, mids in deleted.items():
            held = lt.server_flags_by_msgid(m, wire[folder]) if folder in wire else {}
            problems += [f"deleted locally, still on the server: {folder} {mid}" for mid in mids
                         if mid in held]  # fmt: skip
    finally:
        m.logout()
    return problems
