"""A soak of the daemon: random changes on both sides for minutes (new mail, flags, deletions,
new folders), each message changed only by the side it was born on, then a full comparison
(nothing lost, nothing twice, every change carried) and the daemon's memory not growing.

`make test` runs it for 40 s (MAILTIDE_SOAK_SECONDS), `make torture` for 30 minutes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, eventually, with_account_keys
from dovecot import ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup, write_config

FOLDERS = ["INBOX", "Archive", "Lists/dev"]
SEEDED = 50  # messages in each folder at the start, numbered 0..49; the churn numbers on from 50


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Churn:
    """Seeded random changes; remembers who owns each message."""

    def __init__(self, s: Setup, seed: int, cap: int | None = None) -> None:
        """``cap``: once the account holds that many messages, each step deletes one (so the
        corpus stays put, and memory that still grows is not the mail's)."""
        self.s = s
        self.cap = cap
        self.rng = random.Random(seed)
        self.n = SEEDED  # numbers (Message-IDs) after those of the messages there at the start
        self.server: dict[str, list[str]] = {f: [] for f in FOLDERS}  # message ids born there
        self.local: dict[str, list[str]] = {f: [] for f in FOLDERS}
        self.folders = list(FOLDERS)

    def messages(self) -> int:
        """How many messages the account holds (each on both sides once synced): the soak's
        corpus grows as it runs, and the daemon's memory may rightly grow with it."""
        born = sum(map(len, self.server.values())) + sum(map(len, self.local.values()))
        return SEEDED * len(FOLDERS) + born

    def local_message(self, folder: str, mid: str) -> loc.LocalMessage | None:
        """The local message ``mid`` of ``folder``, or None.  The daemon renames files (new/ to
        cur/, flags) while they are listed and read: a file gone meanwhile means look again."""
        for _ in range(10):
            with contextlib.suppress(FileNotFoundError):
                return loc.by_message_id(self.s.root, "fs", folder).get(mid)
        return None

    def step(self) -> None:
        r = self.rng.random()
        folder = self.rng.choice(self.folders)
        if self.cap is not None and self.messages() >= self.cap:
            r = self.rng.uniform(0.7, 0.86)  # a deletion on either side
            folder = self.rng.choice([f for f in self.folders if self.server.get(f)] or [folder])
        self.n += 1
        if r < 0.25:
            srv.append(self.s.imap, folder, srv.make_message(self.n, folder), [])
            self.server.setdefault(folder, []).append(srv.message_id(self.n, folder))
        elif r < 0.5:
            loc.deliver(self.s.root, "fs", folder, srv.make_message(self.n, folder), "")
            self.local.setdefault(folder, []).append(srv.message_id(self.n, folder))
        elif r < 0.6 and self.server.get(folder):
            mid = self.rng.choice(self.server[folder])
            srv.set_flags(self.s.imap, folder, mid, [self.rng.choice(["\\Seen", "\\Flagged"])])
        elif r < 0.7 and self.local.get(folder):
            mid = self.rng.choice(self.local[folder])
            here = self.local_message(folder, mid)
            if here is not None:
                with contextlib.suppress(FileNotFoundError):  # renamed by the daemon meanwhile
                    loc.set_letters(here, self.rng.choice(["S", "F", "RS"]))
        elif r < 0.78 and self.server.get(folder):
            mid = self.server[folder].pop(self.rng.randrange(len(self.server[folder])))
            srv.expunge(self.s.imap, folder, mid)
        elif r < 0.86 and self.local.get(folder):
            mid = self.local[folder].pop(self.rng.randrange(len(self.local[folder])))
            here = self.local_message(folder, mid)
            if here is not None:
                with contextlib.suppress(FileNotFoundError):  # renamed by the daemon meanwhile
                    here.path.unlink()
        elif r < 0.88 and len(self.folders) < 8:
            new = f"Soak/{self.n}"
            self.folders.append(new)
            if self.rng.random() < 0.5:
                srv.append(self.s.imap, new, srv.make_message(self.n, new), [])
                self.server[new] = [srv.message_id(self.n, new)]
            else:
                loc.deliver(self.s.root, "fs", new, srv.make_message(self.n, new), "")
                self.local[new] = [srv.message_id(self.n, new)]


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


@pytest.fixture
def daemon(setup: Setup, daemons: Callable[..., Daemon]) -> Callable[[], Daemon]:
    return lambda: daemons(with_account_keys(write_config(setup), autorefresh="3s", quick=5))


def soak(s: Setup, start: Callable[[], Daemon], seconds: float, steady: int | None = None) -> int:
    """Churn for ``seconds`` (the account kept at ``steady`` messages if given); the daemon's
    RSS growth after the warm-up, in KiB."""
    for folder in FOLDERS:
        srv.append_many(s.imap, folder, [srv.make_message(i, folder) for i in range(SEEDED)])
    d = start()
    eventually(lambda: "event=account.done" in d.output, 60, "first sync", d)
    churn = Churn(s, seed=7, cap=steady)
    warm = time.monotonic() + min(20.0, seconds / 4)
    baseline = None
    corpus = churn.messages()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        churn.step()
        time.sleep(0.05)
        if baseline is None and time.monotonic() > warm and churn.messages() >= (steady or 0):
            baseline = rss_kb(d.proc.pid)
            corpus = churn.messages()
        assert d.proc.poll() is None, d.output[-3000:]
    grown = rss_kb(d.proc.pid) - (baseline or 0)
    print(
        f"soak: {churn.n} changes in {seconds:.0f} s, RSS growth {grown} KiB while the account"
        f" grew from {corpus} to {churn.messages()} messages",
        flush=True,
    )
    # quiet now: one more sync of everything, then both sides must agree
    done = d.output.count("event=account.done")
    d.signal(signal.SIGUSR1)
    eventually(lambda: d.output.count("event=account.done") > done, 60, "a last sync", d)
    time.sleep(1.0)
    done = d.output.count("event=account.done")
    d.signal(signal.SIGUSR1)
    eventually(lambda: d.output.count("event=account.done") > done, 60, "a settled sync", d)
    assert "level=error" not in d.output, [x for x in d.output.splitlines() if "error" in x][:5]
    assert_in_sync(s)
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over {seconds:.0f} s"
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
    return grown


def test_soak(setup: Setup, daemon: Callable[[], Daemon]) -> None:
    soak(setup, daemon, float(os.environ.get("MAILTIDE_SOAK_SECONDS", "40")))


@pytest.mark.slow
def test_soak_long(setup: Setup, daemon: Callable[[], Daemon]) -> None:
    soak(setup, daemon, float(os.environ.get("MAILTIDE_SOAK_LONG_SECONDS", "1800")))


@pytest.mark.slow
def test_soak_steady(setup: Setup, daemon: Callable[[], Daemon]) -> None:
    """The corpus kept at 600 messages (the RSS baseline taken once it is there): what the
    daemon's memory still gains is not the mail's (issue target: 2 MB over 30 minutes)."""
    seconds = float(os.environ.get("MAILTIDE_SOAK_LONG_SECONDS", "1800"))
    grown = soak(setup, daemon, seconds, steady=600)
    assert grown < 2 * 1024, f"RSS grew by {grown} KiB over {seconds:.0f} s"
