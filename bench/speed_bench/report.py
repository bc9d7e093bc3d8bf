"""The results of one run (its JSON lines) as a table: per step, each tool's median wall time
with its CPU seconds (user + system) and peak RSS, each tool's ratio to mbsync, mailtide's
target and whether it was met, and whether every check passed.  ``summary()`` gives the same
as JSON."""

from __future__ import annotations

import statistics
from typing import Any

from speed_bench.steps import LABELS
from speed_bench.targets import NOCHANGE_GROWTH, target_for

Record = dict[str, Any]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def cell(records: list[Record], tool: str, step: str) -> Record | None:
    syncs = [x for x in records if x.get("kind") == "sync"]
    rows = [x for x in syncs if (x["tool"], x["step"]) == (tool, step)]
    if not rows:
        return None
    good = [x for x in rows if x["rc"] == 0]
    failed = [x for x in rows if x["rc"] != 0]
    wrong = [x for x in good if not x["correct"]]
    check = "ok"
    if failed:
        check = "FAILED (rc " + ", ".join(str(x["rc"]) for x in failed) + ")"
    elif wrong:
        check = "WRONG RESULT"
    return {
        "reps": len(rows),
        "wall": _median([x["wall"] for x in good]),
        "cpu": _median([x["user"] + x["sys"] for x in good]),
        "maxrss_kb": _median([x["maxrss_kb"] for x in good]),
        "check": check,
    }


def summary(records: list[Record]) -> dict[str, Any]:
    meta = next((x for x in records if x.get("kind") == "meta"), {})
    tools = list(dict.fromkeys(x["tool"] for x in records if x.get("kind") == "sync"))
    steps = [s for s in LABELS if any(x.get("step") == s for x in records)]
    rows = []
    for step in steps:
        cells = {t: cell(records, t, step) for t in tools}
        base = (cells.get("mbsync") or {}).get("wall")
        ratios = {
            t: c["wall"] / base
            for t, c in cells.items()
            if t != "mbsync" and c and c["wall"] is not None and base
        }
        target = target_for(step, meta.get("mode", "folders"), bool(meta.get("link")))
        mine = cells.get("mailtide") or {}
        rows.append({
            "step": step,
            "tools": cells,
            "ratio_to_mbsync": ratios,
            "target": target.text() if target else None,
            "verdict": target.verdict(mine.get("wall"), base, mine.get("maxrss_kb"))
            if target and mine else None,
            "target_size": target.at if target else None,
        })  # fmt: skip
    return {"meta": meta, "tools": tools, "rows": rows, "notes": _notes(records)}


def _notes(records: list[Record]) -> list[str]:
    notes = [x["reason"] for x in records if x.get("kind") == "skipped"]
    for x in records:
        if x.get("kind") != "sync" or (x["rc"] == 0 and x["correct"]):
            continue
        what = x.get("error") or "; ".join(x.get("check", {}).get("problems", [])[:3])
        notes.append(f"{x['tool']} {x['step']}#{x['rep']}: {what}")
    return notes


def markdown(records: list[Record]) -> str:
    s = summary(records)
    meta, tools = s["meta"], s["tools"]
    others = [t for t in tools if t != "mbsync"] if "mbsync" in tools else []
    mode = "one folder (INBOX)" if meta.get("mode") == "inbox" else f"{meta.get('folders')} folders"
    out = [
        f"# {' / '.join(tools) or 'nothing measured'}: N={meta.get('n')}, {mode}"
        + (f", {meta.get('big')} × 20 MB messages" if meta.get("big") else ""),
        "",
        f"- {meta.get('date')}, {meta.get('host_nproc')} cores, load average at start "
        f"{meta.get('loadavg')}; mailtide {meta.get('commit')}; Dovecot {meta.get('dovecot')}",
    ]
    out += [f"- {t}: {meta[t]}" for t in tools if t in meta]
    populates = [x for x in records if x.get("kind") == "populate"]
    if populates:
        digests = {x["digest"] for x in populates}
        same = "the same corpus for every tool" if len(digests) == 1 else "**CORPUS DIFFERED**"
        out.append(f"- corpus digest {', '.join(sorted(digests))}: {same}")
    link = next((x for x in records if x.get("kind") == "link"), None)
    if link:
        out.append(
            f"- through the shaped link ({meta.get('link')}): measured NOOP round trip "
            f"{link['rtt_ms_min']} ms min / {link['rtt_ms_median']} ms median, "
            f"{link['mbit']} Mbit/s one way"
        )
    else:
        out.append("- plain IMAP on 127.0.0.1, no link shaping")
    out.append(
        f"- medians over {meta.get('reps')} rep(s) of each re-sync step; tools in alternating "
        f"order; {meta.get('settle')} s wait before each re-sync; time = wall s (CPU user+sys s)"
    )
    if meta.get("label"):
        out.append(f"- **{meta['label']}**")
    out.append("")
    header = ["step"] + [f"{t}" for t in tools] + [f"{t} ÷ mbsync" for t in others]
    header += [f"{t} RSS" for t in tools] + ["mailtide target", "met?", "checks"]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in s["rows"]:
        cells = row["tools"]
        line = [LABELS[row["step"]]]
        line += [_time(cells.get(t)) for t in tools]
        line += [_ratio(row["ratio_to_mbsync"].get(t)) for t in others]
        line += [_mb(cells.get(t)) for t in tools]
        line += [row["target"] or "–", _verdict(row, meta)]
        line += [", ".join(f"{t} {c['check']}" for t, c in cells.items() if c) or "–"]
        out.append("| " + " | ".join(line) + " |")
    if s["notes"]:
        out += ["", "Notes and failures:", *[f"- {n}" for n in s["notes"]]]
    out += ["", "Ratios are the tool's wall time ÷ mbsync's: below 1 is faster than mbsync."]
    return "\n".join(out) + "\n"


def _time(c: Record | None) -> str:
    if not c or c["wall"] is None:
        return "–" if not c else c["check"]
    return f"{_secs(c['wall'])} s ({_secs(c['cpu'])})"


def _mb(c: Record | None) -> str:
    return "–" if not c or c["maxrss_kb"] is None else f"{c['maxrss_kb'] / 1024:.0f} MB"


def _ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def _verdict(row: Record, meta: Record) -> str:
    v = row["verdict"]
    if v is None:
        return "–"
    if row["target_size"] != meta.get("n"):
        return f"{v} (indicative: set for {row['target_size'] // 1000}k)"
    return str(v)


def growth(small: list[Record], large: list[Record]) -> str:
    """How each tool's no-change re-sync grew from one run's corpus to the other's (issue 12:
    mailtide at most 1.2× from 10k to 50k), as markdown."""
    n = [next((x.get("n") for x in r if x.get("kind") == "meta"), None) for r in (small, large)]
    out = [f"# No-change re-sync from N={n[0]} to N={n[1]}", "", "| tool | wall | CPU | growth |"]
    out.append("|---|---|---|---|")
    for tool in ("mailtide", "mbsync", "offlineimap"):
        a, b = cell(small, tool, "nochange"), cell(large, tool, "nochange")
        if not a or not b or not a["wall"] or b["wall"] is None:
            continue
        ratio = b["wall"] / a["wall"]
        verdict = ""
        if tool == "mailtide":
            met = "met" if ratio <= NOCHANGE_GROWTH else "missed"
            verdict = f" (target ≤ {NOCHANGE_GROWTH}×: {met})"
        out.append(
            f"| {tool} | {_secs(a['wall'])} → {_secs(b['wall'])} s | "
            f"{_secs(a['cpu'])} → {_secs(b['cpu'])} s | {ratio:.2f}×{verdict} |"
        )
    return "\n".join(out) + "\n"
