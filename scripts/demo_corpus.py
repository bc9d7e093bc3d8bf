#!/usr/bin/env python3
"""Sample mail for `make demo`, and a look at what arrived.

    demo_corpus.py fill --port P [--host H] [--user U] [--password PW] [--seed S]
        APPEND a few hundred deterministic, realistic messages into a fresh IMAP
        account (plain IMAP, meant for 127.0.0.1) and print {folder: count} as JSON.
    demo_corpus.py tree ROOT [--layout fs|maildir++] [--expect corpus.json]
        Print the local Maildir's folder tree with message counts; with --expect,
        compare with what `fill` put on the server (exit 1 on a difference).
    demo_corpus.py mailboxes ROOT [--layout fs|maildir++]
        Print muttrc lines (folder, spoolfile, mailboxes) for every folder.

Standard library only and independent of mailtide's own code (its mUTF-7 encoder
included), so the demo's "server has N, local M" check does not trust the code it
shows off.  The same --seed always gives byte-identical messages, flags and INTERNALDATEs.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import random
import re
import struct
import sys
import textwrap
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from mailtide.core import mutf7

# Folder names are "/"-separated here and mapped to the server's separator.
# The mix is deliberate: nested, a space, non-ASCII (mUTF-7 on the wire).
FOLDERS: dict[str, int] = {
    "INBOX": 110,
    "Sent": 40,
    "Archive/2024": 55,
    "Project Alpha": 30,
    "Entwürfe": 8,
    "日本語": 20,
    "Lists/python-dev": 45,
}

ME = ("Demo User", "demo@example.org")
PEOPLE = [
    ("Ada Lovelace", "ada@analytical.example"),
    ("Jürgen Müller", "juergen.mueller@beispiel.example"),
    ("Zoë Ångström", "zoe@nordic.example"),
    ("山田太郎", "taro.yamada@example.jp"),
    ("Grace Hopper", "grace@navy.example"),
    ("Linus Example", "linus@kernel.example"),
    ("María José García", "mj.garcia@ejemplo.example"),
    ("Ops Team", "ops@example.org"),
]
TOPICS = [
    "quarterly report",
    "release plan",
    "Übersicht der Änderungen",
    "lunch on Friday?",
    "server migration",
    "invoice #{n}",
    "会議の議事録",
    "design review notes",
    "travel booking",
    "budget for next year",
    "build is broken again",
    "welcome aboard",
]


def _words(text: str) -> list[str]:
    return text.split()


WORDS = _words(
    "the tide carries every message home while the harbour keeps its ledger of arrivals "
    "flags turn like buoys and folders nest like coves a sync is a conversation between "
    "two shores that must agree on what was said and what was forgotten"
)
WORDS_DE = _words("die Flut bringt jede Nachricht nach Hause und der Hafen führt Buch")
WORDS_JA = ["潮", "が", "すべて", "の", "メール", "を", "港", "へ", "運ぶ", "。"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One message to APPEND: its bytes (CRLF), flags and INTERNALDATE."""

    folder: str
    raw: bytes
    flags: tuple[str, ...]
    date: datetime


def _pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


def imap_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- message generation ----------------------------------------------------------------------
def _png(rng: random.Random) -> bytes:
    """A small, valid 8x8 RGB PNG: attachments should open in a viewer."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(24)) for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _paragraphs(rng: random.Random, folder: str) -> str:
    words = WORDS_JA if folder == "日本語" else WORDS_DE if folder == "Entwürfe" else WORDS
    joiner = "" if folder == "日本語" else " "
    paras = []
    for _ in range(rng.randint(1, 4)):
        n = rng.randint(12, 60)
        text = joiner.join(rng.choice(words) for _ in range(n))
        text = text[:1].upper() + text[1:] + ("" if folder == "日本語" else ".")
        paras.append(textwrap.fill(text, width=36 if folder == "日本語" else 72))
    return "\n\n".join(paras)


def _addr(person: tuple[str, str]) -> str:
    # EmailMessage encodes non-ASCII display names as RFC 2047 words.
    return f"{person[0]} <{person[1]}>"


def _message(rng: random.Random, folder: str, i: int, date: datetime, seed: int) -> EmailMessage:
    other = rng.choice(PEOPLE)
    sent = folder in ("Sent", "Entwürfe")
    sender, rcpt = (ME, other) if sent else (other, ME)
    topic = rng.choice(TOPICS).format(n=1000 + i)
    reply = i > 0 and rng.random() < 0.3
    slug = re.sub(r"[^a-z0-9]+", "-", mutf7.encode(folder).lower()).strip("-")
    msgid = f"<demo-{seed}-{slug}-{i}@mailtide.example>"

    msg = EmailMessage(policy=SMTP)
    msg["Received"] = (
        f"from mx.example.org (mx.example.org [192.0.2.{1 + i % 200}]) by imap.example.org "
        f"with ESMTPS id demo{seed}x{i:04d}; {format_datetime(date)}"
    )
    msg["From"] = _addr(sender)
    msg["To"] = _addr(rcpt)
    if rng.random() < 0.25:
        msg["Cc"] = _addr(rng.choice(PEOPLE))
    msg["Subject"] = ("Re: " if reply else "") + topic
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msgid
    if reply:
        parent = f"<demo-{seed}-{slug}-{rng.randrange(i)}@mailtide.example>"
        msg["In-Reply-To"] = parent
        msg["References"] = parent
    if folder.startswith("Lists/"):
        msg["List-Id"] = "Python-Dev <python-dev.python.example>"
        msg["List-Post"] = "<mailto:python-dev@python.example>"
    msg["X-Mailer"] = rng.choice(["mutt/2.2.9", "Thunderbird 115.6", "aerc 0.17", "K-9 Mail 6.7"])

    body = _paragraphs(rng, folder) + f"\n\n-- \n{sender[0]}\n"
    msg.set_content(body, cte="8bit")
    if rng.random() < 0.15:
        msg.add_alternative(
            "<html><body>" + "".join(f"<p>{p}</p>" for p in body.split("\n\n")) + "</body></html>",
            subtype="html",
            cte="8bit",
        )
    if rng.random() < 0.1:
        kind = rng.choice(["csv", "png", "pdf"])
        if kind == "csv":
            rows = "\n".join(f"{d},{rng.randrange(100, 9999)}" for d in range(1, 13))
            msg.add_attachment(
                ("month,amount\n" + rows + "\n").encode(), "text", "csv", filename="figures.csv"
            )
        elif kind == "png":
            msg.add_attachment(_png(rng), "image", "png", filename="chart.png")
        else:
            pdf = b"%PDF-1.4\n% demo attachment\n" + bytes(rng.randrange(256) for _ in range(3000))
            msg.add_attachment(pdf + b"\n%%EOF\n", "application", "pdf", filename="Bericht.pdf")
    # Boundaries would otherwise be random: fix them so the corpus is byte-identical.
    for depth, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_mailtide_demo_{seed}_{i}_{depth}")
    return msg


def _flags(rng: random.Random, folder: str, age: timedelta) -> tuple[str, ...]:
    if folder == "Entwürfe":
        return ("\\Draft",)
    flags = []
    if folder == "Sent" or rng.random() < (0.9 if age > timedelta(days=30) else 0.4):
        flags.append("\\Seen")
    if rng.random() < 0.08:
        flags.append("\\Flagged")
    if folder == "INBOX" and rng.random() < 0.12:
        flags.append("\\Answered")
    if rng.random() < 0.03:
        flags.append("$Forwarded")
    return tuple(flags)


def samples(seed: int) -> Iterator[Sample]:
    """The whole corpus in APPEND order; dates increase within each folder."""
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    zones = [UTC] + [timezone(timedelta(hours=h)) for h in (2, -5, 9)]
    for folder, count in FOLDERS.items():
        rng = random.Random(f"{seed}:{folder}")
        start = (
            datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
            if folder == "Archive/2024"
            else (now - timedelta(days=120))
        )
        span = timedelta(days=360) if folder == "Archive/2024" else timedelta(days=119)
        for i in range(count):
            at = start + span * (i / count) + timedelta(minutes=rng.randrange(600))
            date = at.astimezone(rng.choice(zones)).replace(microsecond=0)
            msg = _message(rng, folder, i, date, seed)
            yield Sample(folder, msg.as_bytes(), _flags(rng, folder, now - at), date)


# ---- fill ------------------------------------------------------------------------------------
def _check(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        raise SystemExit(f"demo_corpus: {what} failed: {data!r}")


def fill(args: argparse.Namespace) -> int:
    imap = imaplib.IMAP4(args.host, args.port)
    try:
        imap.login(args.user, args.password)  # raises IMAP4.error when refused
        typ, data = imap.list('""', '""')
        _check(typ, data, "LIST")
        raw = data[0] if data and isinstance(data[0], bytes) else b""
        m = re.search(rb'\) (?:"((?:\\.|[^"])*)"|NIL)', raw)
        sep = m.group(1).decode().replace("\\\\", "\\") if m and m.group(1) else "/"

        typ, data = imap.status("INBOX", "(MESSAGES)")
        _check(typ, data, "STATUS INBOX")
        if not re.search(rb"MESSAGES 0\b", data[0] if isinstance(data[0], bytes) else b""):
            raise SystemExit("demo_corpus: the account already holds mail; use a fresh account")

        def wire(folder: str) -> str:
            return imap_quote(mutf7.encode(folder.replace("/", sep)))

        for folder in FOLDERS:
            parts = folder.split("/")
            for depth in range(1, len(parts) + 1):
                name = "/".join(parts[:depth])
                if name != "INBOX":
                    typ, created = imap.create(wire(name))
                    said = b" ".join(d for d in created if isinstance(d, bytes))
                    if typ != "OK" and b"ALREADYEXISTS" not in said:
                        _check(typ, created, f"CREATE {name}")
        counts: dict[str, int] = {}
        for s in samples(args.seed):
            flags = "(" + " ".join(s.flags) + ")" if s.flags else None
            when = imaplib.Time2Internaldate(s.date)
            typ, appended = imap.append(wire(s.folder), flags, when, s.raw)
            _check(typ, appended, f"APPEND to {s.folder}")
            counts[s.folder] = counts.get(s.folder, 0) + 1
        imap.logout()
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass
    summary = {"separator": sep, "messages": sum(counts.values()), "folders": counts}
    print(json.dumps(summary, ensure_ascii=False))
    print(f"{summary['messages']} messages in {len(counts)} folders:", file=sys.stderr)
    for name, n in counts.items():
        print(f"  {_pad(name, 20)} {n:>4}", file=sys.stderr)
    return 0


# ---- looking at the local Maildir ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LocalFolder:
    name: str  # "/"-separated, UTF-8
    messages: int
    unseen: int
    flagged: int


def _is_maildir(p: Path) -> bool:
    return (p / "cur").is_dir() and (p / "new").is_dir()


def local_folders(root: Path, layout: str) -> dict[str, LocalFolder]:
    found: dict[str, Path] = {}
    if layout == "maildir++":
        if _is_maildir(root):
            found["INBOX"] = root
        for d in root.iterdir():
            if d.name.startswith(".") and d.name not in (".", "..") and _is_maildir(d):
                found[d.name[1:].replace(".", "/")] = d
    else:
        for dirpath, dirnames, _ in os.walk(root):
            dirnames[:] = sorted(n for n in dirnames if n not in ("cur", "new", "tmp"))
            p = Path(dirpath)
            if p != root and _is_maildir(p):
                found[p.relative_to(root).as_posix()] = p
    result = {}
    for name, p in found.items():
        total = unseen = flagged = 0
        for sub in ("new", "cur"):
            for entry in os.scandir(p / sub):
                if entry.name.startswith("."):
                    continue
                info = entry.name.split(":2,", 1)[1] if ":2," in entry.name else ""
                total += 1
                unseen += "S" not in info
                flagged += "F" in info
        result[name] = LocalFolder(name, total, unseen, flagged)
    return result


def _order(name: str) -> tuple[bool, str]:
    return (name != "INBOX", name.casefold())


def tree(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"demo_corpus: {root} is not a directory: nothing arrived", file=sys.stderr)
        return 1
    found = local_folders(root, args.layout)
    expect: dict[str, int] = {}
    if args.expect:
        expect = json.loads(Path(args.expect).read_text())["folders"]
    # Show parents that are not mailboxes themselves too, so the tree reads right.
    names = set(found) | set(expect)
    for n in list(names):
        parts = n.split("/")
        names.update("/".join(parts[:k]) for k in range(1, len(parts)))
    print(f"{root}/")
    problems = []
    for name in sorted(names, key=_order):
        depth = name.count("/")
        label = "    " * depth + name.rsplit("/", 1)[-1]
        f = found.get(name)
        line = f"  {_pad(label, 28)}"
        if f is not None:
            line += f"{f.messages:>5} messages"
            extras = [f"{f.unseen} unread"] if f.unseen else []
            extras += [f"{f.flagged} flagged"] if f.flagged else []
            line += f"  ({', '.join(extras)})" if extras else ""
        if name in expect and (f is None or f.messages != expect[name]):
            got = f.messages if f else "no folder"
            line += f"  <- server has {expect[name]}, local {got}"
            problems.append(name)
        print(line.rstrip())
    total = sum(f.messages for f in found.values())
    print(f"  {len(found)} folders, {total} messages")
    if problems:
        print(f"demo_corpus: local and server differ in: {', '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def mailboxes(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    names = sorted(local_folders(root, args.layout), key=_order)

    def path(name: str) -> str:
        if args.layout == "maildir++":
            return "+" if name == "INBOX" else "+." + name.replace("/", ".")
        return "+" + name

    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    print(f"set folder = {q(str(root))}")
    print(f"set spoolfile = {q(path('INBOX'))}")
    print("mailboxes " + " ".join(q(path(n)) for n in names))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill", help="APPEND the sample corpus")
    f.add_argument("--host", default="127.0.0.1")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--user", default="demo")
    f.add_argument("--password", default="secret")
    f.add_argument("--seed", type=int, default=1)
    for name in ("tree", "mailboxes"):
        p = sub.add_parser(name)
        p.add_argument("root")
        p.add_argument("--layout", choices=["fs", "maildir++"], default="fs")
        if name == "tree":
            p.add_argument("--expect", help="the JSON that `fill` printed")
    args = ap.parse_args(argv)
    try:
        return {"fill": fill, "tree": tree, "mailboxes": mailboxes}[args.cmd](args)
    except (imaplib.IMAP4.error, OSError) as e:
        print(f"demo_corpus: {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
