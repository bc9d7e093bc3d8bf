"""kill -9 torture: ``mailtide sync`` as a real process, killed by SIGKILL at seeded random
instants over a realistic corpus, with changes on both sides between kills.

A trial is: changes on both sides (new messages, flag changes, deletions, now and then a new
folder), then a ``mailtide sync`` killed at an instant drawn across the duration of a clean
run (measured first: the initial sync on a copy of the account, then every run that finished
before its kill instant), some of them very early (during start-up).  Every tenth trial and at
the end a clean run follows, and both sides are compared with the expected outcome: every
change made before a kill, on either side, is present on both sides; both sides hold exactly
the same folders and messages with the same flags; no Message-ID appears twice anywhere.  At
the end bodies are compared too, and one more run must change nothing.

Conflicting changes (one message changed on both sides before a sync) are avoided by
construction: each message has an owner side, the only side that changes or deletes it.  So
is the one outcome of a kill that the next run cannot tell from a user's change: a copy the
killed run made but did not record, deleted on the side it was copied to before the next run,
is copied again (``World.deletable``).

``make test`` runs 50 kills over ~1,000 messages, ``make torture`` 1,000 over ~2,000;
``MAILTIDE_TORTURE_TRIALS`` overrides either count.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot
from engine_helpers import Setup, clone_into, make_setup, write_config

SEEN, ANSWERED, FLAGGED = "\\Seen", "\\Answered", "\\Flagged"
LETTER = {SEEN: "S", ANSWERED: "R", FLAGGED: "F"}
SERVER, LOCAL = "server", "local"

Flags = frozenset[str]

# where the seeded corpus lives, with each folder's share of it
SERVER_FOLDERS = {"INBOX": 0.30, "Archive/2024": 0.25, "Lists/python-dev": 0.15, "Entwürfe": 0.05}
LOCAL_FOLDERS = {"Sent": 0.15, "Projekte/Alpha": 0.05, "INBOX": 0.05}
SIZES = ([600, 2_000, 5_000, 20_000, 120_000], [30, 35, 20, 12, 3])


@dataclass(frozen=True, slots=True)
class Tier:
    trials: int  # kills that must land
    messages: int  # the seeded corpus


def trials(default: int) -> int:
    raw = os.environ.get("MAILTIDE_TORTURE_TRIALS", "")
    return int(raw) if raw.isdigit() else default


# ---- the expected outcome ---------------------------------------------------------------------


@dataclass
class World:
    """What both sides must hold once a sync completes: folder -> Message-ID -> flags; which
    side may change each message (its owner), which side it was new on (its origin), and
    which messages a complete run has settled on both sides."""

    rng: random.Random
    expected: dict[str, dict[str, Flags]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    folder_of: dict[str, str] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)
    next_number: int = 0
    changes: Counter[str] = field(default_factory=Counter)

    def new_message(self, folder: str, flags: Flags, origin: str) -> tuple[str, bytes]:
        self.next_number += 1
        size = self.rng.choices(*SIZES)[0]
        body = srv.make_message(self.next_number, folder, size)
        mid = srv.message_id(self.next_number, folder)
        self.expected.setdefault(folder, {})[mid] = flags
        self.owner[mid] = self.rng.choice((SERVER, LOCAL))
        self.origin[mid] = origin
        self.folder_of[mid] = folder
        return mid, body

    def deletable(self, side: str, mid: str) -> bool:
        """A copy made by a run that was killed before it recorded the copy is, to the next
        run, a copy that never happened: deleted meanwhile on the side it was copied to, it
        is copied again.  Deleting is a real user's change, so delete such a message only on
        the side it was new on, or once a complete run has settled it."""
        return mid in self.settled or self.origin[mid] == side

    def settle(self) -> None:
        self.settled = {mid for msgs in self.expected.values() for mid in msgs}

    def owned_by(self, side: str, folder: str, present: Iterable[str]) -> list[str]:
        return sorted(
            m for m in present if self.owner.get(m) == side and m in self.expected[folder]
        )

    def gone(self, mid: str) -> None:
        del self.expected[self.folder_of.pop(mid)][mid]


def server_flags(rng: random.Random) -> Flags:
    flags = set()
    for flag, p in ((SEEN, 0.7), (FLAGGED, 0.1), (ANSWERED, 0.1), ("Work", 0.08)):
        if rng.random() < p:
            flags.add(flag)
    if rng.random() < 0.05:
        flags.add("$Label1")
    return frozenset(flags)


def local_flags(rng: random.Random) -> Flags:
    return frozenset(
        f for f, p in ((SEEN, 0.6), (FLAGGED, 0.1), (ANSWERED, 0.1)) if rng.random() < p
    )


# ---- the server, over one IMAP session ---------------------------------------------------------


def multiappend(c: imaplib.IMAP4, folder: str, messages: list[tuple[bytes, Flags]]) -> None:
    """One MULTIAPPEND with LITERAL+ (Dovecot has both): seeding a thousand messages one
    APPEND at a time would take most of the test's time."""
    for start in range(0, len(messages), 200):
        command = b"T1 APPEND " + srv._quote(folder).encode()
        for body, flags in messages[start : start + 200]:
            command += b" (" + " ".join(sorted(flags)).encode() + b")"
            command += b" {" + str(len(body)).encode() + b"+}\r\n" + body
        c.send(command + b"\r\n")
        while not (line := c.readline()).startswith(b"T1 "):
            assert line, "connection closed during APPEND"
        assert line.startswith(b"T1 OK"), line


_FETCHED = re.compile(rb"UID (\d+).*?FLAGS \(([^)]*)\)", re.S)
_MID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")


def server_folder(
    c: imaplib.IMAP4, folder: str, bodies: bool = False
) -> list[tuple[int, str, Flags, bytes]]:
    """Every message in ``folder``: (UID, Message-ID, flags, body or b"")."""
    srv._ok(c.select(srv._quote(folder)))
    item = "BODY.PEEK[]" if bodies else "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
    typ, data = c.uid("FETCH", "1:*", f"(UID FLAGS {item})")
    out = []
    for entry in data if typ == "OK" else []:
        if isinstance(entry, tuple):
            head, text = entry
            m, mid = _FETCHED.search(head), _MID.search(text)
            assert m is not None, head
            flags = frozenset(f for f in m.group(2).decode().split() if f != "\\Recent")
            out.append(
                (
                    int(m.group(1)),
                    mid.group(1).decode() if mid else "",
                    flags,
                    text if bodies else b"",
                )
            )
    return out


def server_side(s: Setup, bodies: bool = False) -> dict[str, list[tuple[int, str, Flags, bytes]]]:
    with srv.session(s.imap) as c:
        return {
            f: server_folder(c, f, bodies) for f in srv.list_folders(s.imap, c, selectable=True)
        }


def local_side(s: Setup) -> dict[str, list[tuple[str, str, Flags, bytes]]]:
    """Folder -> (file name's unique part, Message-ID, flags, body)."""
    out = {}
    for folder in loc.folders(s.root, s.layout):
        keywords = loc.keyword_names(s.root, s.layout, folder)
        out[folder] = [
            (m.path.name.split(":2,")[0], m.message_id, loc.imap_flags(m, keywords), m.body)
            for m in loc.messages(s.root, s.layout, folder)
        ]
    return out


# ---- changes on both sides -------------------------------------------------------------------


def seed(s: Setup, world: World, messages: int) -> None:
    rng = world.rng
    with srv.session(s.imap) as c:
        for folder, share in SERVER_FOLDERS.items():
            srv.create_folder(s.imap, folder, c)
            batch = []
            for _ in range(int(messages * share)):
                flags = server_flags(rng)
                _, body = world.new_message(folder, flags, SERVER)
                batch.append((body, flags))
            multiappend(c, folder, batch)
    for folder, share in LOCAL_FOLDERS.items():
        for _ in range(int(messages * share)):
            flags = local_flags(rng)
            _, body = world.new_message(folder, flags, LOCAL)
            loc.deliver(s.root, s.layout, folder, body, "".join(LETTER[f] for f in flags))


def change_server(s: Setup, world: World) -> None:
    """New messages (now and then in a new folder), flags set and cleared, a deletion; all in
    one session, on messages the server owns and holds."""
    rng = world.rng
    with srv.session(s.imap) as c:
        for _ in range(2):
            folder = rng.choice(sorted(world.expected))
            if rng.random() < 0.02:
                folder = f"Torture/{world.next_number}"
            # a folder only the local side has yet: created here too, as a user might
            srv.create_folder(s.imap, folder, c)
            flags = server_flags(rng)
            _, body = world.new_message(folder, flags, SERVER)
            multiappend(c, folder, [(body, flags)])
            world.changes["new on the server"] += 1
        folder = rng.choice(sorted(world.expected))
        if c.select(srv._quote(folder))[0] != "OK":
            return  # not uploaded yet
        held = {mid: uid for uid, mid, _, _ in server_folder(c, folder)}
        owned = world.owned_by(SERVER, folder, held)
        for mid in rng.sample(owned, min(len(owned), 4)):
            flag = rng.choice((SEEN, FLAGGED, ANSWERED, "Work", "$Label2"))
            flags = world.expected[folder][mid]
            if rng.random() < 0.2 and len(owned) > 4 and world.deletable(SERVER, mid):
                srv._ok(c.uid("STORE", str(held[mid]), "+FLAGS.SILENT", "(\\Deleted)"))
                srv._ok(c.uid("EXPUNGE", str(held[mid])))
                world.gone(mid)
                world.changes["deleted on the server"] += 1
            elif flag in flags:
                srv._ok(c.uid("STORE", str(held[mid]), "-FLAGS.SILENT", f"({flag})"))
                world.expected[folder][mid] = flags - {flag}
                world.changes["flag cleared on the server"] += 1
            else:
                srv._ok(c.uid("STORE", str(held[mid]), "+FLAGS.SILENT", f"({flag})"))
                world.expected[folder][mid] = flags | {flag}
                world.changes["flag set on the server"] += 1


def change_local(s: Setup, world: World) -> None:
    """The same as a mail client: new files (now and then in a new folder), renames for flags,
    a deletion; on messages the local side owns and holds."""
    rng = world.rng
    for _ in range(2):
        folder = rng.choice(sorted(world.expected))
        if rng.random() < 0.02:
            folder = f"Lokal/{world.next_number}"
        flags = local_flags(rng)
        _, body = world.new_message(folder, flags, LOCAL)
        loc.deliver(s.root, s.layout, folder, body, "".join(LETTER[f] for f in flags))
        world.changes["new locally"] += 1
    folder = rng.choice(sorted(world.expected))
    if not loc.folder_dir(s.root, s.layout, folder).is_dir():
        return  # not downloaded yet
    held = loc.by_message_id(s.root, s.layout, folder)
    owned = world.owned_by(LOCAL, folder, held)
    for mid in rng.sample(owned, min(len(owned), 4)):
        flag = rng.choice((SEEN, FLAGGED, ANSWERED))
        flags = world.expected[folder][mid]
        msg = held[mid]
        if rng.random() < 0.2 and len(owned) > 4 and world.deletable(LOCAL, mid):
            msg.path.unlink()
            world.gone(mid)
            world.changes["deleted locally"] += 1
        elif flag in flags:
            loc.set_letters(msg, msg.letters.replace(LETTER[flag], ""))
            world.expected[folder][mid] = flags - {flag}
            world.changes["flag cleared locally"] += 1
        else:
            loc.set_letters(msg, msg.letters + LETTER[flag])
            world.expected[folder][mid] = flags | {flag}
            world.changes["flag set locally"] += 1


# ---- running and checking ----------------------------------------------------------------------


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailtide", "sync", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def clean_run(config: Path, log: Path) -> float:
    """A run to completion; its duration."""
    began = time.monotonic()
    proc = start(config, log)
    code = proc.wait(timeout=300)  # a hang guard only
    assert code == 0, f"a complete run failed ({code}):\n{log.read_text(errors='replace')[-5000:]}"
    return time.monotonic() - began


def check(s: Setup, world: World, final: bool = False) -> None:
    """Both sides hold exactly what ``world`` expects; no Message-ID twice anywhere."""
    server, local = server_side(s, bodies=final), local_side(s)
    everywhere = Counter(mid for msgs in server.values() for _, mid, _, _ in msgs)
    twice = [mid for mid, n in everywhere.items() if n > 1]
    assert twice == [], f"on the server more than once: {twice[:10]}"
    everywhere = Counter(mid for msgs in local.values() for _, mid, _, _ in msgs)
    twice = [mid for mid, n in everywhere.items() if n > 1]
    assert twice == [], f"locally more than once: {twice[:10]}"
    assert sorted(server) == sorted(local), "the folders of both sides"
    # mailtide creates a new nested folder's parents on the server as mailboxes too, so a
    # local "Lokal/17" (where "Lokal" is a plain directory) brings an empty "Lokal" to both sides
    parents = {p for f in world.expected for p in _parents(f)}
    for extra in sorted(set(server) - set(world.expected)):
        assert extra in parents, f"a folder nobody made: {extra}"
        assert server[extra] == [] and local[extra] == [], f"mail in an unexpected {extra}"
    assert set(world.expected) <= set(server), "folders missing"
    for folder, want in world.expected.items():
        for side, held in ((SERVER, server[folder]), (LOCAL, local[folder])):
            have = {mid: flags for _, mid, flags, _ in held}
            lost = sorted(set(want) - set(have))
            unexpected = sorted(set(have) - set(want))
            assert not lost, f"{len(lost)} missing on the {side} side in {folder}: {lost[:5]}"
            assert not unexpected, (
                f"{len(unexpected)} not expected on the {side} side in {folder}: {unexpected[:5]}"
            )
            wrong = {m: (have[m], f) for m, f in want.items() if have[m] != f}
            assert not wrong, f"flags on the {side} side in {folder} (have, want): {wrong}"
        if final:
            bodies = {mid: body for _, mid, _, body in local[folder]}
            for _, mid, _, body in server[folder]:
                assert body.replace(b"\r\n", b"\n") == bodies[mid], f"bodies differ: {mid}"


def _parents(folder: str) -> list[str]:
    parts = folder.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def snapshot(s: Setup) -> tuple[object, ...]:
    server = {f: [(uid, flags) for uid, _, flags, _ in msgs] for f, msgs in server_side(s).items()}
    files = sorted(str(p.relative_to(s.root)) for p in s.root.rglob("*") if p.is_file())
    return server, files


def initial_duration(dovecot: Dovecot, s: Setup, tmp: Path) -> float:
    """How long the first sync of the seeded corpus takes, measured on a copy of the account."""
    copy = make_setup(dovecot.account(s.imap.user + "-measure"), tmp / "measure")
    clone_into(dovecot, s, copy)
    return clean_run(write_config(copy), tmp / "measure.log")


def kill_instant(rng: random.Random, duration: float) -> float:
    """Spread over a clean run's whole duration; one in seven very early (start-up)."""
    if rng.random() < 1 / 7:
        return rng.uniform(0.0, 0.3)
    return rng.uniform(0.0, duration)


def torture(dovecot: Dovecot, tmp: Path, tier: Tier, seed_value: int) -> None:
    (tmp / "account").mkdir()
    (tmp / "measure").mkdir()
    user = f"torture{os.getpid()}-{seed_value}"
    s = make_setup(dovecot.account(user), tmp / "account")
    world = World(random.Random(seed_value))
    began = time.monotonic()
    seed(s, world, tier.messages)
    seeded = time.monotonic()
    duration = initial_duration(dovecot, s, tmp)
    config, log = write_config(s), tmp / "runs.log"
    print(f"\nseeded {world.next_number} messages in {seeded - began:.1f} s; ", end="")
    print(f"a first sync takes {duration:.1f} s")

    kills = finished = checks = 0
    rounds_left = tier.trials * 3
    while kills < tier.trials:
        assert rounds_left > 0, f"only {kills} of {tier.trials} kills landed"
        rounds_left -= 1
        if kills or finished:  # the first run is the initial sync itself
            change_server(s, world)
            change_local(s, world)
        at = kill_instant(world.rng, duration)
        run_began = time.monotonic()
        proc = start(config, log)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=at)
        proc.send_signal(signal.SIGKILL)  # nothing, if it has ended
        code = proc.wait(timeout=60)
        if code == -signal.SIGKILL:
            kills += 1
            if kills % 10 == 0:
                change_server(s, world)
                change_local(s, world)
                duration = clean_run(config, log)
                check(s, world)
                world.settle()
                checks += 1
        else:
            assert code == 0, f"a run failed ({code}):\n{log.read_text(errors='replace')[-5000:]}"
            duration = time.monotonic() - run_began  # a clean run, measured
            finished += 1
    clean_run(config, log)
    check(s, world, final=True)
    before = snapshot(s)
    clean_run(config, log)
    assert snapshot(s) == before, "a run after convergence changed something"
    held = sum(len(m) for m in world.expected.values())
    print(
        f"{kills} kills ({finished} runs finished before their kill instant), {checks + 1} full "
        f"checks, {held} messages in {len(world.expected)} folders at the end, changes: "
        f"{dict(world.changes)}; {time.monotonic() - began:.1f} s"
    )


def test_sigkill_torture(dovecot: Dovecot, tmp_path: Path) -> None:
    torture(dovecot, tmp_path, Tier(trials(50), 1_000), seed_value=20261122)


@pytest.mark.slow
@pytest.mark.timeout(60 + 5 * trials(1_000))  # the hang guard, scaled (about 1.3 s a trial)
def test_sigkill_torture_long(dovecot: Dovecot, tmp_path: Path) -> None:
    torture(dovecot, tmp_path, Tier(trials(1_000), 2_000), seed_value=4_1000)
