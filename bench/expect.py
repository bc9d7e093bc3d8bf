#!/usr/bin/env python3
"""Keep `labtool.py check --expect` honest when both sides changed flags before one sync.

`labtool.py local-flags` records the flags it gave each local file, and `check --expect`
wants exactly those on the server.  When `labtool.py mutate` toggled a *different* flag of
the same message on the server in the same round, a correct three-way merge keeps both
changes, so the recorded expectation is wrong for that message.  This helper rewrites the
expectation to the per-flag merge:

    expect.py snapshot --port P --out before.json     # server flags before `mutate`
    expect.py merge --port P --before before.json --expect expect.json
                                                      # after `mutate` and `local-flags`,
                                                      # before the sync

Per flag letter: if the server changed it since the snapshot, the server's value wins,
otherwise the local one does (both toggling the same flag from the same base agree).
It uses the lab's own IMAP helpers (../shared/lab/labtool.py) so names and flag letters
mean exactly what `check` means by them.  Set LAB to point elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

LAB = Path(os.environ.get("LAB", Path(__file__).resolve().parent.parent.parent / "shared" / "lab"))
sys.path.insert(0, str(LAB))
import labtool  # type: ignore[import-not-found]  # noqa: E402

Flags = dict[str, dict[str, str]]  # folder (UTF-8, "/") -> Message-ID -> sorted letters


def server_flags(args: argparse.Namespace) -> Flags:
    m: Any = labtool.connect(args)
    try:
        return {labtool.norm(f): labtool.server_flags_by_msgid(m, f) for f in labtool.folders(m)}
    finally:
        m.logout()


def merged(base: str, server: str, local: str) -> str:
    """Per flag letter: the server's value where the server changed it, else the local one."""

    def kept(c: str) -> bool:
        server_changed = (c in server) != (c in base)
        return c in server if server_changed else c in local

    return "".join(sorted(c for c in set(base + server + local) if kept(c)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["snapshot", "merge"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="test")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--out")
    ap.add_argument("--before")
    ap.add_argument("--expect")
    args = ap.parse_args()
    if args.cmd == "snapshot":
        Path(args.out).write_text(json.dumps(server_flags(args), ensure_ascii=False))
        return 0
    before: Flags = json.loads(Path(args.before).read_text())
    expect: Flags = json.loads(Path(args.expect).read_text())
    now = server_flags(args)
    adjusted = 0
    for folder, wanted in expect.items():
        for mid, local in wanted.items():
            base = before.get(folder, {}).get(mid, local)
            want = merged(base, now.get(folder, {}).get(mid, base), local)
            if want != local:
                wanted[mid] = want
                adjusted += 1
    Path(args.expect).write_text(json.dumps(expect, ensure_ascii=False))
    print(json.dumps({"adjusted": adjusted}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
