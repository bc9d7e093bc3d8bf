"""A mail client working on the Maildir while `mailtide sync` runs, against the real Dovecot.

Each round: the server gets new mail, flag changes and expunges, the Maildir gets
new mail, then `mailtide sync` runs as a process while two client threads work on
the same Maildir until the sync ends.  One acts like mutt at random (seeded)
instants: it changes flags by renaming (F, S, T letters), moves messages between
folders (a rename into the other folder's cur/), deletes, delivers new mail (tmp/
then new/) and moves new/ to cur/.  The other, a "flag storm", toggles R by renames
as fast as it can, so that renames land inside the sync's own directory listings.
Half of all picks are among the files the sync works on in that round (messages the
server flags, new local ones).  Every action is logged.  Then two complete runs, a
third that must find nothing to do, and the checks:

- the racing run itself failed nowhere (a race costs no mailbox its run);
- no message lost: every Message-ID the client did not delete is on both sides,
  once per side, in the folder the client left it in (a moved message is in its
  new folder and not in the old one);
- no resurrected deletion: what the client deleted is gone from both sides;
- every flag the client set or cleared is so on the server (the server's own flag
  change on the same message, a different flag, is kept too).  T is the Maildir
  letter of \\Deleted: it travels as a flag like the others and nobody expunges
  or unlinks for it;
- nothing was deleted and copied again (every message the client did not move or
  delete keeps its server UID);
- both sides hold the same flags everywhere and nothing is left in any tmp/.

The client leaves alone the messages the server expunges in that round (a
deletion racing a change there is a conflict with no single right answer), and
does not move or delete those whose flags the server changes, nor toggle the flag
the server sets on them.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot
from engine_helpers import Setup, clone_into, make_setup, write_config

FOLDERS = ("INBOX", "Work", "Archive")
CLIENT_LETTERS = "FRST"
STORM_LETTERS = "R"
STORM_OWNS = 600  # messages in the big folder the renamer process renames (only it)
FLAG_OF = {"F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
SERVER_FLAG = "F"  # what the server sets on the messages it changes in a round
_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]*>)")
BIG = "Archive"
# The messages: the base corpus per folder and in the big folder, and per round per folder:
# new on the server, new locally, flagged on the server, expunged on the server.  The big
# folder matters: a directory small enough for one getdents() buffer (about 500 of these
# names) is listed atomically, so only a bigger one can lose a file renamed mid-listing.
Sizes = tuple[int, int, int, int, int, int]
FAST: Sizes = (150, 1200, 50, 20, 15, 5)
SLOW: Sizes = (600, 1500, 150, 60, 40, 15)


def letters_of(name: str) -> str:
    return name.split(":2,", 1)[1] if ":2," in name else ""


def message_id_of(path: Path) -> str | None:
    """The Message-ID of the file, or None when it is gone (renamed or deleted meanwhile)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2048)
    except FileNotFoundError:
        return None
    m = _MESSAGE_ID.search(head)
    return m.group(1).decode() if m else None


def client_message(mid: str, n: int) -> bytes:
    return (
        f"Message-ID: {mid}\nFrom: Client <client@example.org>\nTo: me@example.net\n"
        f"Subject: written by the client #{n}\n\nHello {n}.\n"
    ).encode()


@dataclass
class Client:
    """A mail client on the Maildir, driven by a seeded random generator."""

    root: Path
    rng: random.Random
    tag: str
    untouchable: set[str]  # Message-IDs the client must not act on this round
    keep_place: set[str]  # ... nor move or delete (it may still change their flags)
    # files the sync works on this round (messages the server flags, new local ones), by unique
    # name -> folder: half of the client's picks are among these
    hot: dict[str, str] = field(default_factory=dict)
    where: dict[str, str | None] = field(default_factory=dict)  # mid -> folder; None = deleted
    flags: dict[str, dict[str, bool]] = field(default_factory=dict)  # mid -> letter -> set?
    log: list[str] = field(default_factory=list)
    delivered: int = 0
    races: int = 0  # actions that lost a race with the sync (a file renamed meanwhile)

    def folder(self, name: str) -> Path:
        return loc.folder_dir(self.root, "fs", name)

    def pick(
        self, subs: tuple[str, ...] = ("cur", "new"), rng: random.Random | None = None
    ) -> tuple[str, str, str, str] | None:
        """A random message file: (folder, subdir, file name, Message-ID)."""
        rng = rng or self.rng
        if self.hot and rng.random() < 0.5:
            return self.pick_hot(subs, rng)
        folder = rng.choice(FOLDERS)
        sub = rng.choice(subs)
        try:
            names = sorted(n for n in os.listdir(self.folder(folder) / sub) if n[0] != ".")
        except FileNotFoundError:
            return None
        if not names:
            return None
        return self.identified(folder, sub, rng.choice(names))

    def pick_hot(
        self, subs: tuple[str, ...], rng: random.Random
    ) -> tuple[str, str, str, str] | None:
        unique = rng.choice(sorted(self.hot))
        folder = self.hot.get(unique)
        if folder is None:
            return None
        for sub in subs:
            for name in os.listdir(self.folder(folder) / sub):
                if name.split(":2,", 1)[0] == unique:
                    return self.identified(folder, sub, name)
        return None

    def identified(self, folder: str, sub: str, name: str) -> tuple[str, str, str, str] | None:
        mid = message_id_of(self.folder(folder) / sub / name)
        if mid is None:
            self.races += 1
            return None
        if mid in self.untouchable:
            return None
        return folder, sub, name, mid

    def act(self) -> None:
        action = self.rng.choices(
            [self.change_flag, self.move, self.delete, self.deliver, self.read_new],
            weights=[50, 12, 8, 15, 15],
        )[0]
        try:
            action()
        except FileNotFoundError:  # the file was renamed (by the sync or the storm) meanwhile
            self.races += 1

    def storm(self, rng: random.Random) -> None:
        """One flag change of a second client thread that renames as fast as it can, so that
        renames land inside the sync's directory listings.  It alone changes R (so each
        letter's changes are logged in the order they were made)."""
        try:
            self.change_flag(rng, STORM_LETTERS)
        except FileNotFoundError:
            self.races += 1

    def change_flag(self, rng: random.Random | None = None, letters_from: str = "") -> None:
        rng = rng or self.rng
        picked = self.pick(rng=rng)
        if picked is None:
            return
        folder, sub, name, mid = picked
        letters = set(letters_of(name))
        choices = letters_from or CLIENT_LETTERS.replace(STORM_LETTERS, "")
        if mid in self.keep_place:
            choices = choices.replace(SERVER_FLAG, "")
        letter = rng.choice(choices)
        on = letter not in letters
        letters ^= {letter}
        base = name.split(":2,", 1)[0]
        target = f"{base}:2,{''.join(sorted(letters))}"
        os.rename(self.folder(folder) / sub / name, self.folder(folder) / "cur" / target)
        self.flags.setdefault(mid, {})[letter] = on
        self.log.append(f"flag {folder} {mid} {'+' if on else '-'}{letter}")

    def move(self) -> None:
        picked = self.pick()
        if picked is None or picked[3] in self.keep_place:
            return
        folder, sub, name, mid = picked
        dest = self.rng.choice([f for f in FOLDERS if f != folder])
        target = name if ":2," in name else name + ":2,"
        os.rename(self.folder(folder) / sub / name, self.folder(dest) / "cur" / target)
        unique = name.split(":2,", 1)[0]
        if unique in self.hot:
            self.hot[unique] = dest
        self.where[mid] = dest
        self.log.append(f"move {folder} -> {dest} {mid}")

    def delete(self) -> None:
        picked = self.pick()
        if picked is None or picked[3] in self.keep_place:
            return
        folder, sub, name, mid = picked
        os.unlink(self.folder(folder) / sub / name)
        self.hot.pop(name.split(":2,", 1)[0], None)
        self.where[mid] = None
        self.log.append(f"delete {folder} {mid}")

    def deliver(self) -> None:
        folder = self.rng.choice(FOLDERS)
        self.delivered += 1
        mid = f"<client-{self.tag}-{self.delivered}@race.test>"
        name = f"{int(time.time())}.R{self.delivered}P{os.getpid()}.client-{self.tag}"
        tmp = self.folder(folder) / "tmp" / name
        tmp.write_bytes(client_message(mid, self.delivered))
        os.rename(tmp, self.folder(folder) / "new" / name)
        self.where[mid] = folder
        self.log.append(f"deliver {folder} {mid}")

    def read_new(self) -> None:
        """Open a new message: new/ -> cur/ with S (Seen)."""
        picked = self.pick(("new",))
        if picked is None:
            return
        folder, _, name, mid = picked
        os.rename(self.folder(folder) / "new" / name, self.folder(folder) / "cur" / f"{name}:2,S")
        self.flags.setdefault(mid, {})["S"] = True
        self.log.append(f"read {folder} {mid} +S")


# A second process renaming its own messages' R letter as fast as it can (it keeps their
# names, so it needs no listing, and has a core of its own): renames then land inside the
# sync's directory listings, where readdir may return neither name of a file.
RENAMER = r"""
import os, random, signal, sys
rng = random.Random(int(sys.argv[1]))
paths = sys.argv[2:]
running = True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while running:
    i = rng.randrange(len(paths))
    folder, name = os.path.split(os.path.dirname(paths[i]))[0], os.path.basename(paths[i])
    base, _, letters = name.partition(":2,")
    target = os.path.join(folder, "cur", base + ":2," + "".join(sorted(set(letters) ^ {"R"})))
    os.rename(paths[i], target)
    paths[i] = target
"""


# ---- one round ---------------------------------------------------------------------------------


def everywhere(s: Setup) -> tuple[dict[str, list[tuple[str, frozenset[str]]]], ...]:
    """Both sides as Message-ID -> [(folder, flags)], one entry per copy."""
    server: dict[str, list[tuple[str, frozenset[str]]]] = {}
    local: dict[str, list[tuple[str, frozenset[str]]]] = {}
    with srv.session(s.imap) as c:
        for folder in FOLDERS:
            for m in srv.fetch_all(s.imap, folder, imap=c):
                server.setdefault(m.message_id, []).append((folder, m.flags))
    for folder in FOLDERS:
        names = loc.keyword_names(s.root, "fs", folder)
        for lm in loc.messages(s.root, "fs", folder):
            local.setdefault(lm.message_id, []).append((folder, loc.imap_flags(lm, names)))
    return server, local


def server_uids(s: Setup) -> dict[str, tuple[str, int]]:
    """Message-ID -> (folder, UID) on the server."""
    out: dict[str, tuple[str, int]] = {}
    with srv.session(s.imap) as c:
        for folder in FOLDERS:
            for m in srv.fetch_all(s.imap, folder, imap=c):
                out[m.message_id] = (folder, m.uid)
    return out


def prepare_round(s: Setup, rng: random.Random, n: int, sizes: Sizes) -> tuple[set[str], ...]:
    """The round's changes on both sides; returns (expunged, flagged) Message-IDs."""
    _, _, new_remote, new_local, flagged, expunged = sizes
    server, _ = everywhere(s)
    by_folder: dict[str, list[str]] = {f: [] for f in FOLDERS}
    for mid, copies in server.items():
        folder, flags = copies[0]
        if "\\Flagged" not in flags and not mid.startswith("<client-"):
            by_folder[folder].append(mid)
    gone: set[str] = set()
    changed: set[str] = set()
    with srv.session(s.imap) as c:
        for folder in FOLDERS:
            ids = sorted(by_folder[folder])
            rng.shuffle(ids)
            picked_gone, picked_flag = ids[:expunged], ids[expunged : expunged + flagged]
            srv._ok(c.select(srv._quote(folder)))
            for mid in picked_gone + picked_flag:
                uids = b",".join(srv._uids_of(c, mid)).decode()
                if mid in picked_gone:
                    srv._ok(c.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)"))
                    srv._ok(c.uid("EXPUNGE", uids))
                else:
                    srv._ok(c.uid("STORE", uids, "+FLAGS.SILENT", "(\\Flagged)"))
            gone |= set(picked_gone)
            changed |= set(picked_flag)
            start = 10_000 * n
            for i in range(start, start + new_remote):
                srv.append(s.imap, folder, srv.make_message(i, folder), [], imap=c)
    for folder in FOLDERS:
        start = 10_000 * n + 5_000
        for i in range(start, start + new_local):
            loc.deliver(s.root, "fs", folder, srv.make_message(i, folder), rng.choice(["", "S"]))
    return gone, changed


def race(s: Setup, client: Client, owned: list[Path]) -> tuple[int, str]:
    """`mailtide sync` as a process while the client acts (two threads: the mutt-like one,
    and the flag storm); the mutt-like thread's action count and the sync's output."""
    renamer = subprocess.Popen(
        [sys.executable, "-c", RENAMER, str(client.rng.randrange(1 << 30)), *map(str, owned)],
        stdout=subprocess.PIPE,
    )
    assert renamer.stdout is not None and renamer.stdout.readline() == b"ready\n"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(write_config(s))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    done = threading.Event()
    actions = 0

    def work() -> None:
        nonlocal actions
        while not done.is_set():
            client.act()
            actions += 1
            time.sleep(client.rng.uniform(0, 0.003))

    def storm() -> None:
        rng = random.Random(client.rng.random())
        while not done.is_set():
            client.storm(rng)

    threads = [threading.Thread(target=work), threading.Thread(target=storm)]
    for thread in threads:
        thread.start()
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
        renamer.terminate()
        renamer.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
    assert renamer.returncode == 0, "the renamer process failed"
    return actions, out.decode(errors="replace")


def run_round(s: Setup, seed: int, n: int, sizes: Sizes) -> Client:
    rng = random.Random(seed * 1000 + n)
    gone, changed = prepare_round(s, rng, n, sizes)
    server, local = everywhere(s)
    uids = server_uids(s)
    client = Client(s.root, rng, f"{seed}.{n}", untouchable=set(gone), keep_place=changed)
    quiet_ones = []
    for folder in FOLDERS:
        for m in loc.messages(s.root, "fs", folder):
            if m.message_id in changed or m.message_id not in server:
                client.hot[m.path.name.split(":2,", 1)[0]] = folder
            elif m.message_id not in gone and folder == BIG:
                quiet_ones.append(m)
    owned = rng.sample(quiet_ones, min(STORM_OWNS, len(quiet_ones)))
    client.untouchable |= {m.message_id for m in owned}
    actions, output = race(s, client, [m.path for m in owned])
    # the renamer's flags are as it left its files
    now = {m.message_id: m for f in FOLDERS for m in loc.messages(s.root, "fs", f)}
    for m in owned:
        client.flags[m.message_id] = {"R": "R" in now[m.message_id].letters}
    assert actions > 0
    # a race costs nothing: no mailbox of the racing run fails because of the client
    failed = [line for line in output.splitlines() if "mailbox.failed" in line]
    assert not failed, failed
    for attempt in range(2):
        report = s.sync()
        assert not report.failed, (attempt, report.failures(), client.log[-20:])
    quiet = s.sync()
    assert not quiet.failed and all(not any(m.summary().values()) for m in quiet.mailboxes), (
        quiet,
        output[-3000:],
    )
    check(s, client, server, local, gone, changed)
    # nothing deleted and copied again: a message the client did not move or delete keeps its
    # UID (a scan missing a file being renamed would delete it on the server, and the next
    # run would upload it again)
    now = server_uids(s)
    churned = {
        m: (was, now.get(m))
        for m, was in uids.items()
        if m not in client.where and m not in gone and now.get(m) != was
    }
    assert not churned, churned
    return client


def check(
    s: Setup,
    client: Client,
    server_before: dict[str, list[tuple[str, frozenset[str]]]],
    local_before: dict[str, list[tuple[str, frozenset[str]]]],
    gone: set[str],
    changed: set[str],
) -> None:
    server, local = everywhere(s)
    history = "\n".join(client.log[-40:])
    # each message once per side, the same folder and flags on both sides
    twice = {m: c for m, c in {**server, **local}.items() if len(c) > 1}
    assert not {m: c for m, c in server.items() if len(c) != 1}, f"duplicates: {twice}"
    assert not {m: c for m, c in local.items() if len(c) != 1}, f"duplicates: {twice}"
    assert server.keys() == local.keys(), (
        f"only on the server: {sorted(server.keys() - local.keys())[:10]}, "
        f"only local: {sorted(local.keys() - server.keys())[:10]}\n{history}"
    )
    for mid, [(folder, flags)] in server.items():
        assert local[mid] == [(folder, flags)], (mid, local[mid], folder, flags, history)
    # where the client left each message (or where it was before the round)
    expected: dict[str, str] = {
        mid: copies[0][0]
        for mid, copies in {**local_before, **server_before}.items()
        if mid not in gone
    }
    for mid, folder in client.where.items():
        if folder is None:
            expected.pop(mid, None)
        else:
            expected[mid] = folder
    actual = {mid: copies[0][0] for mid, copies in server.items()}
    missing = sorted(expected.keys() - actual.keys())
    assert not missing, f"lost: {missing[:10]}\n{history}"
    resurrected = sorted(actual.keys() & {m for m, f in client.where.items() if f is None})
    assert not resurrected, f"deleted by the client, back again: {resurrected[:10]}"
    misplaced = {m: (actual[m], f) for m, f in expected.items() if actual[m] != f}
    assert not misplaced, f"(now, expected): {misplaced}\n{history}"
    # every flag the client set or cleared, as it left it; the server's own change kept
    for mid, letters in client.flags.items():
        if client.where.get(mid, "") is None or mid in gone:
            continue
        [(_, flags)] = server[mid]
        for letter, on in letters.items():
            assert (FLAG_OF[letter] in flags) == on, (mid, letter, on, flags, history)
        if mid in changed:
            assert "\\Flagged" in flags, (mid, flags)
    for folder in FOLDERS:
        assert os.listdir(loc.folder_dir(s.root, "fs", folder) / "tmp") == []
    assert sorted(Counter(c[0][0] for c in server.values())) == sorted(FOLDERS)


def corpus(s: Setup, sizes: Sizes) -> None:
    with srv.session(s.imap) as c:
        for folder in FOLDERS:
            for i in range(sizes[1] if folder == BIG else sizes[0]):
                flags = ["\\Seen"] if i % 3 else []
                srv.append(s.imap, folder, srv.make_message(i, folder, 1500), flags, imap=c)
    report = s.sync()
    assert not report.failed, report.failures()


def run_seed(s: Setup, seed: int, rounds: int, sizes: Sizes) -> list[Client]:
    return [run_round(s, seed, n, sizes) for n in range(1, rounds + 1)]


# On xdist, the tests that share this corpus run on one worker: it takes the longest set-up of
# the suite (20-45 s), which each worker running one of them would otherwise build again.
pytestmark = pytest.mark.xdist_group("client-races-corpus")


@pytest.fixture(scope="module")
def synced(dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """The FAST corpus, synced once; each test works on a copy (``clone_into``)."""
    account = dovecot.account(f"races-{os.getpid()}-template")
    s = make_setup(account, tmp_path_factory.mktemp("races-template"), "fs")
    corpus(s, FAST)
    return s


@pytest.mark.parametrize("seed", [1, 2])
def test_client_renames_moves_deletes_and_delivers_during_the_sync(
    seed: int, synced: Setup, dovecot: Dovecot, fs_setup: Setup
) -> None:
    clone_into(dovecot, synced, fs_setup)
    clients = run_seed(fs_setup, seed, 1, FAST)
    acted = sum(len(c.log) for c in clients)
    assert acted >= 50, [c.log for c in clients]  # the client really worked during the sync


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 11))
def test_client_races_many_seeds(seed: int, fs_setup: Setup) -> None:
    corpus(fs_setup, SLOW)
    run_seed(fs_setup, seed, 4, SLOW)
