#!/usr/bin/env python3
"""Markdown table of a bench/run.sh results file: the tools side by side, medians, ratios.

    summary.py bench/results/run-STAMP.jsonl > run-STAMP.md

The ratio is the first tool's figure divided by the second's (mailtide ÷ mbsync by
default), so below 1 means the first tool was faster or smaller.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

STEP_LABELS = {
    "initial": "initial sync",
    "nochange": "no-change re-sync",
    "server": "+100 server flag changes, +100 new messages",
    "local": "100 local flag changes",
    "changes": "+100 server flags, +100 new, 100 local flags: one sync",
}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def _mb(kb: float | None) -> str:
    return "–" if kb is None else f"{kb / 1024:.0f} MB"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}×"


def summarise(lines: list[dict[str, Any]]) -> str:
    meta = next((x for x in lines if x.get("kind") == "meta"), {})
    syncs = [x for x in lines if x.get("kind") == "sync"]
    tools: list[str] = []
    for x in syncs + [x for x in lines if x.get("kind") in ("populate", "skipped")]:
        if x.get("tool") and x["tool"] not in tools:
            tools.append(x["tool"])
    steps = [s for s in STEP_LABELS if any(x["step"] == s for x in syncs)]

    out = [
        f"# {' vs '.join(tools) or 'nothing measured'}: N={meta.get('n')}, "
        f"{meta.get('folders')} folders, seed 1",
        "",
        f"- date {meta.get('date')}, {meta.get('host_nproc')} cores, "
        f"mailtide commit {meta.get('commit')}, Dovecot {meta.get('dovecot')}",
    ]
    out += [f"- {t}: {meta[t]}" for t in tools if t in meta]
    populates = [x for x in lines if x.get("kind") == "populate"]
    digests = {x["digest"] for x in populates}
    if populates:
        same = "the same corpus for every tool" if len(digests) == 1 else "CORPUS DIFFERED"
        walls = ", ".join(f"{x['tool']} {x['wall']} s" for x in populates)
        out.append(f"- populate ({walls}); labtool digest {', '.join(sorted(digests))}: {same}")
    out.append(
        f"- plain IMAP on 127.0.0.1; wait before each re-sync: {meta.get('settle')} s; "
        f"medians over {meta.get('reps', 1)} rep(s) where a step repeats"
    )
    out += [f"- **{x['tool']}: {x['reason']}**" for x in lines if x.get("kind") == "skipped"]
    out.append("")

    def cell(tool: str, step: str) -> tuple[float | None, float | None, str]:
        rows = [x for x in syncs if x["tool"] == tool and x["step"] == step]
        if not rows:
            return None, None, "–"
        good = [x for x in rows if x["rc"] == 0 and x["wall"] is not None]
        wall = _median([x["wall"] for x in good])
        rss = _median([x["maxrss_kb"] for x in good if x["maxrss_kb"] is not None])
        bad = [x for x in rows if x["rc"] != 0]
        wrong = [x for x in rows if x["rc"] == 0 and not x["correct"]]
        verdict = "ok" if not bad and not wrong else ""
        if bad:
            verdict = f"failed (rc {', '.join(str(x['rc']) for x in bad)})"
        elif wrong:
            verdict = "check differed"
        return wall, rss, verdict

    header = ["step"]
    header += [f"{t} wall" for t in tools]
    header += ["wall ratio"] if len(tools) == 2 else []
    header += [f"{t} max RSS" for t in tools]
    header += ["RSS ratio"] if len(tools) == 2 else []
    header += [f"{t} check" for t in tools]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for step in steps:
        cells = [cell(t, step) for t in tools]
        row = [STEP_LABELS[step]]
        row += [_secs(c[0]) for c in cells]
        row += [_ratio(cells[0][0], cells[1][0])] if len(tools) == 2 else []
        row += [_mb(c[1]) for c in cells]
        row += [_ratio(cells[0][1], cells[1][1])] if len(tools) == 2 else []
        row += [c[2] for c in cells]
        out.append("| " + " | ".join(row) + " |")
    problems = [
        f"- {x['tool']} {x['step']}#{x['rep']}: {'; '.join(x['check'].get('problems', [])[:3])}"
        for x in syncs
        if not x["correct"] and x.get("check")
    ]
    errors = [
        f"- {x['tool']} {x['step']}#{x['rep']}: {x['error']}" for x in syncs if x.get("error")
    ]
    if errors:
        out += ["", "Failed syncs (the end of their output):", *errors]
    if problems:
        out += ["", "Problems reported by `labtool.py check`:", *problems]
    if len(tools) == 2:
        a, b = tools
        out += ["", f"Ratios are {a} ÷ {b}: below 1 means {a} was faster or smaller."]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    lines = [json.loads(ln) for ln in Path(argv[0]).read_text().splitlines() if ln.strip()]
    sys.stdout.write(summarise(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
