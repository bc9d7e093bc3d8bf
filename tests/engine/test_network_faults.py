"""Network faults through a real Dovecot: the connection cut, reset or stalled at any byte, the
server restarted mid-sync.  Within the run the sync retries on a new connection and converges;
when the retries run out it fails with one clear line and the next run converges.

The scenario has work both ways: a synced base, then on the server new mail in two folders,
flag changes and a deletion; locally new mail in those folders and in a new one, flag changes
and a deletion.  It is prepared once (a template server user, Maildir and state) and copied for
every trial, so each trial's byte stream is the same as the measured clean run's: the fault
points are spread evenly over the whole run in each direction, plus points in the middle of an
APPEND literal and of a FETCH body literal.

Every trial checks real outcomes: what the server holds and the files on disk (each Message-ID
exactly once per side and folder, the expected flags, the same bodies), that the fault really
fired, and that a further run changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import structlog.testing

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, private_dovecot
from engine_helpers import Setup, make_setup
from fault_proxy import Direction, Fault, FaultProxy, Kind
from mailtide.config.model import DaemonSettings
from mailtide.engine.account import AccountReport
from mailtide.wiring import sync_account

SEEN, ANSWERED, FLAGGED = "\\Seen", "\\Answered", "\\Flagged"
Flags = frozenset[str]
Mailboxes = Mapping[str, Mapping[str, Flags]]

RETRY = {"retries": 3, "retry_delay": 0.01}
# The sweeps name byte offsets of one run's streams: one mailbox at a time keeps them the
# same run after run.  PARALLEL syncs three mailboxes at once (one-shot's default).
SERIAL = DaemonSettings(max_connections=2)
PARALLEL = DaemonSettings(max_connections=4)
POINTS_PER_DIRECTION = 25  # evenly spread over the run, plus the literal and folder points
SLOW_POINTS_PER_DIRECTION = 300  # `make torture` (the slow marker)


def mid(i: int, folder: str) -> str:
    return srv.message_id(i, folder)


def body(i: int, folder: str) -> bytes:
    # Bodies of 1-2.5 KB: a fault point in the middle of a literal stays inside it even if
    # the byte stream of a trial differed from the measured one by a few bytes.
    return srv.make_message(i, folder, size=1000 + (i * 157) % 1500)


# ---- the scenario -------------------------------------------------------------------------

BASE_SERVER: dict[str, list[tuple[int, set[str]]]] = {
    "INBOX": [(1, {SEEN}), (2, {SEEN}), (3, set()), (4, {SEEN}), (5, set()), (6, {SEEN})],
    "Archive": [(101, {SEEN}), (102, set()), (103, {SEEN, "Work"})],
}
NEW_SERVER: dict[str, list[tuple[int, set[str]]]] = {
    "INBOX": [(i, {SEEN} if i % 3 else {FLAGGED, "$Forwarded"}) for i in range(11, 35)],
    "Archive": [(i, {SEEN, "Work"} if i % 2 else set()) for i in range(111, 119)],
}
NEW_LOCAL: dict[str, list[tuple[int, str]]] = {
    "INBOX": [(i, "S" if i % 2 else "FS") for i in range(41, 53)],
    "Archive": [(i, "") for i in range(121, 125)],
    "Lokal": [(i, "R") for i in range(131, 135)],
}


def expected() -> dict[str, dict[str, Flags]]:
    out: dict[str, dict[str, Flags]] = {}
    for folders in (BASE_SERVER, NEW_SERVER):
        for folder, msgs in folders.items():
            for i, flags in msgs:
                out.setdefault(folder, {})[mid(i, folder)] = frozenset(flags)
    for folder, lmsgs in NEW_LOCAL.items():
        for i, letters in lmsgs:
            out.setdefault(folder, {})[mid(i, folder)] = frozenset(loc.LETTERS[c] for c in letters)
    inbox, archive = out["INBOX"], out["Archive"]
    # the server's changes
    inbox[mid(1, "INBOX")] |= {FLAGGED}
    inbox[mid(2, "INBOX")] -= {SEEN}
    archive[mid(101, "Archive")] |= {ANSWERED, "Work"}
    del inbox[mid(5, "INBOX")]
    # the local changes
    inbox[mid(3, "INBOX")] |= {FLAGGED}
    inbox[mid(4, "INBOX")] -= {SEEN}
    archive[mid(102, "Archive")] |= {ANSWERED}
    del inbox[mid(6, "INBOX")]
    return out


EXPECTED = expected()


def prepare(s: Setup) -> None:
    """The base, synced; then the changes on both sides that the run under test carries."""
    with srv.session(s.imap) as c:
        for folder, msgs in BASE_SERVER.items():
            for i, flags in msgs:
                srv.append(s.imap, folder, body(i, folder), flags, imap=c)
    report = s.sync()
    assert not report.failed, report.failures()
    with srv.session(s.imap) as c:
        for folder, msgs in NEW_SERVER.items():
            for i, flags in msgs:
                srv.append(s.imap, folder, body(i, folder), flags, imap=c)
    srv.set_flags(s.imap, "INBOX", mid(1, "INBOX"), [FLAGGED])
    srv.clear_flags(s.imap, "INBOX", mid(2, "INBOX"), [SEEN])
    srv.set_flags(s.imap, "Archive", mid(101, "Archive"), [ANSWERED, "Work"])
    srv.expunge(s.imap, "INBOX", mid(5, "INBOX"))
    for folder, lmsgs in NEW_LOCAL.items():
        for i, letters in lmsgs:
            loc.deliver(s.root, s.layout, folder, body(i, folder), letters)

    def local(folder: str, i: int) -> loc.LocalMessage:
        return loc.by_message_id(s.root, s.layout, folder)[mid(i, folder)]

    m = local("INBOX", 3)
    loc.set_letters(m, "".join(sorted(set(m.letters) | {"F"})))
    m = local("INBOX", 4)
    loc.set_letters(m, m.letters.replace("S", ""))
    m = local("Archive", 102)
    loc.set_letters(m, "".join(sorted(set(m.letters) | {"R"})))
    local("INBOX", 6).path.unlink()


# ---- what both sides hold -----------------------------------------------------------------


def check_converged(s: Setup, want: Mailboxes = EXPECTED) -> None:
    """Both sides hold exactly ``want``: each Message-ID once per folder, flags and bodies."""
    with srv.session(s.imap) as c:
        server = {
            f: srv.fetch_all(s.imap, f, imap=c)
            for f in srv.list_folders(s.imap, c, selectable=True)
        }
    local = {f: loc.messages(s.root, s.layout, f) for f in loc.folders(s.root, s.layout)}
    assert sorted(server) == sorted(want), "server folders"
    assert sorted(local) == sorted(want), "local folders"
    for folder, messages in want.items():
        r_ids = Counter(m.message_id for m in server[folder])
        l_ids = Counter(m.message_id for m in local[folder])
        missing = (sorted(set(messages) - set(r_ids)), sorted(set(messages) - set(l_ids)))
        twice = [
            (k, [m.uid for m in server[folder] if m.message_id == k])
            for k, n in r_ids.items()
            if n > 1
        ]
        assert twice == [], f"twice on the server in {folder} (UIDs): {twice}; missing: {missing}"
        twice = [k for k, n in l_ids.items() if n > 1]
        assert twice == [], f"twice locally in {folder}: {twice}; missing: {missing}"
        assert sorted(r_ids) == sorted(messages), f"server messages in {folder}"
        assert sorted(l_ids) == sorted(messages), f"local messages in {folder}"
        keywords = loc.keyword_names(s.root, s.layout, folder)
        for m in server[folder]:
            assert m.flags == messages[m.message_id], f"server flags of {m.message_id}"
        for lm in local[folder]:
            flags = loc.imap_flags(lm, keywords)
            assert flags == messages[lm.message_id], f"local flags of {lm.message_id}"
        by_id = {lm.message_id: lm.body for lm in local[folder]}
        for m in server[folder]:
            assert m.body.replace(b"\r\n", b"\n") == by_id[m.message_id], m.message_id


def holdings(s: Setup) -> tuple[dict[str, list[tuple[int, Flags]]], set[str]]:
    with srv.session(s.imap) as c:
        remote = {
            f: [(m.uid, m.flags) for m in srv.fetch_all(s.imap, f, imap=c)]
            for f in srv.list_folders(s.imap, c, selectable=True)
        }
    files = {str(p.relative_to(s.root)) for p in s.root.rglob("*") if p.is_file()}
    return remote, files


def check_idempotent(s: Setup) -> None:
    """A further (clean) run finds nothing to do and changes nothing."""
    before = holdings(s)
    report = sync(s)
    assert not report.failed, report.failures()
    assert all(not any(m.summary().values()) for m in report.mailboxes), [
        (m.name, m.summary()) for m in report.mailboxes
    ]
    assert holdings(s) == before, "a further run changed something"


# ---- trials -------------------------------------------------------------------------------


@dataclass
class Template:
    """The prepared scenario, copied for each trial (same bytes on the wire every time)."""

    dovecot: Dovecot
    user: str
    dir: Path


_trials = iter(range(1, 10_000))
_trial_lock = threading.Lock()


def clone(
    t: Template,
    tmp: Path,
    proxy: FaultProxy | None,
    daemon: DaemonSettings = SERIAL,
    **imap: object,
) -> Setup:
    """A copy of the template: a new server user with the same mail, index and UIDVALIDITY, the
    same Maildir and state; the account's remote goes through ``proxy``."""
    with _trial_lock:
        n = next(_trials)
    user = f"{t.user[:-4]}{n:04d}"  # same length as the template's: the same bytes on the wire
    home = t.dovecot.home
    subprocess.run(["cp", "-a", str(home / t.user), str(home / user)], check=True)
    trial = tmp / f"trial{n}"
    trial.mkdir()
    changes = {"timeout": 10.0, **imap}
    if proxy is not None:
        changes["port"] = proxy.port
    s = make_setup(t.dovecot.account(user), trial, **changes)
    shutil.copytree(t.dir / "Mail", s.root, dirs_exist_ok=True, symlinks=True)
    shutil.copytree(t.dir / "state", s.config.general.state_dir, symlinks=True)
    return s.with_account(daemon=daemon, **RETRY)


@pytest.fixture(scope="module")
def template(dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Template:
    tmp = tmp_path_factory.mktemp("network-faults")
    user = f"nf{os.getpid()}-tmpl"[-12:] + "0000"
    s = make_setup(dovecot.account(user), tmp)
    prepare(s)
    return Template(dovecot, user, tmp)


def sync(s: Setup) -> AccountReport:
    """One run, with a hang guard far above any retry schedule here (every wait in mailtide
    has its own timeout; this only turns a hang into a failure)."""
    return asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 120))


def converges_without_faults(s: Setup, proxy: FaultProxy) -> None:
    """With the faults gone, a run converges and a further one changes nothing."""
    proxy.arm()
    report = sync(s)
    assert not report.failed, report.failures()
    check_converged(s)
    check_idempotent(s)


def run_with(s: Setup, proxy: FaultProxy, *faults: Fault) -> AccountReport:
    proxy.arm(*faults)
    return sync(s)


@dataclass(frozen=True, slots=True)
class Measure:
    total: dict[str, int]
    up: bytes
    down: bytes


@pytest.fixture(scope="module")
def measured(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Measure:
    """One clean run through the proxy: how many bytes each way, and the streams themselves."""
    tmp = tmp_path_factory.mktemp("measure")
    with FaultProxy(template.dovecot.port, record=True) as proxy:
        s = clone(template, tmp, proxy)
        report = run_with(s, proxy)
        assert not report.failed, report.failures()
        check_converged(s)
        return Measure(dict(proxy.total), proxy.stream("up"), proxy.stream("down"))


def literal_points(m: Measure) -> list[tuple[Direction, int]]:
    """Offsets in the middle of the first APPEND literal (up) and of the first FETCH body (down)."""
    up_at = m.up.index(b" APPEND ")
    up_at = m.up.index(b"}\r\n", up_at) + 3
    down_at = m.down.index(b"BODY[] {")
    down_at = m.down.index(b"}\r\n", down_at) + 3
    return [("up", up_at + 500), ("down", down_at + 500), ("up", up_at), ("down", down_at)]


def folder_points(m: Measure) -> list[tuple[Direction, int]]:
    """Offsets inside the folder listing and the folder creation, on the store's own first
    connection (a retry must not reuse it once it broke)."""
    return [
        ("up", m.up.index(b" LIST ") + 3),
        ("down", m.down.index(b"* LIST ") + 4),
        ("up", m.up.index(b" CREATE ") + 4),
        ("down", m.down.index(b" OK ", m.down.index(b"* LIST ")) + 2),
    ]


def sweep_points(m: Measure, per_direction: int) -> list[tuple[Direction, int]]:
    points: list[tuple[Direction, int]] = []
    for direction in ("up", "down"):
        step = m.total[direction] / per_direction
        points += [(direction, int(k * step)) for k in range(per_direction)]
    return points + literal_points(m) + folder_points(m)


def trial(
    t: Template,
    tmp: Path,
    kind: Kind,
    direction: Direction,
    after: int,
    daemon: DaemonSettings = SERIAL,
    **imap: object,
) -> str:
    """One fault in the run; the same run must converge (retrying); a further run is a no-op.
    Returns what went wrong, or "retried" (the sync connected again after the fault) or
    "done" (it did not need to: the fault hit the final LOGOUT)."""
    where = f"{kind} after {after} bytes {direction}"
    try:
        with FaultProxy(t.dovecot.port) as proxy:
            s = clone(t, tmp, proxy, daemon, **imap)
            report = run_with(s, proxy, Fault(kind, direction, after))
            assert len(proxy.fired) == 1, "the fault did not fire"
            # a fault during the final LOGOUT needs no new connection; any other does
            retried = proxy.connections > proxy.fired[0].opened
            assert not report.failed, report.failures()
            check_converged(s)
            check_idempotent(s)
    except AssertionError as exc:
        return f"{where}: {exc}"
    return "retried" if retried else "done"


def run_trials(
    jobs: list[tuple[Kind, Direction, int]],
    t: Template,
    tmp: Path,
    daemon: DaemonSettings = SERIAL,
    **imap: object,
) -> tuple[list[str], int]:
    """The failures, and how many trials connected again after their fault."""
    # Each trial is its own server user, directory and proxy: two at a time halve the wall time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: trial(t, tmp, *j, daemon, **imap), jobs))
    failures = [r for r in results if r not in ("retried", "done")]
    return failures, results.count("retried")


# ---- the tests ----------------------------------------------------------------------------


def sweep(
    kind: Kind, points: list[tuple[Direction, int]], t: Template, tmp: Path, m: Measure
) -> None:
    started = time.monotonic()
    timeout = {"timeout": 1.0} if kind == "stall" else {}
    failures, retried = run_trials([(kind, d, n) for d, n in points], t, tmp, **timeout)
    print(
        f"{kind}: {len(points)} fault trials ({retried} retried within the run) over "
        f"{m.total['up']} bytes up and {m.total['down']} down "
        f"in {time.monotonic() - started:.1f} s"
    )
    assert not failures, "\n".join(failures)
    # only a fault in the final LOGOUT (the last point of each direction) needs no retry
    assert retried >= len(points) - 2, retried


def test_connection_cut_at_any_byte_is_retried_within_the_run(
    template: Template, measured: Measure, tmp_path: Path
) -> None:
    points = sweep_points(measured, POINTS_PER_DIRECTION)
    assert len(points) >= 2 * 25
    sweep("cut", points, template, tmp_path, measured)


def test_a_cut_while_mailboxes_sync_at_once_is_retried_and_converges(
    template: Template, measured: Measure, tmp_path: Path
) -> None:
    """Three mailboxes at once, each on its own connection: a cut anywhere costs a retry of
    the mailbox it hit (on a new connection or one another mailbox gave back), never mail.
    The offsets land on other commands from run to run; each trial must converge."""
    points = sweep_points(measured, 8)
    failures, _ = run_trials([("cut", d, n) for d, n in points], template, tmp_path, PARALLEL)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cut", "reset", "stall"])
def test_fault_at_any_byte_torture(
    template: Template, measured: Measure, tmp_path: Path, kind: Kind
) -> None:
    per_direction = SLOW_POINTS_PER_DIRECTION // (10 if kind == "stall" else 1)
    sweep(kind, sweep_points(measured, per_direction), template, tmp_path, measured)


def test_reset_and_stall_are_retried(template: Template, measured: Measure, tmp_path: Path) -> None:
    total = measured.total
    literal = literal_points(measured)
    jobs: list[tuple[Kind, Direction, int]] = [
        ("reset", "down", 0),
        ("reset", "up", total["up"] // 3),
        ("reset", *literal[0]),
        ("reset", *literal[1]),
        ("reset", "down", total["down"] * 2 // 3),
    ]
    failures, retried = run_trials(jobs, template, tmp_path)
    # A stall ends only by the command timeout (2 s here), then the sync retries.
    stalls: list[tuple[Kind, Direction, int]] = [
        ("stall", "down", total["down"] // 2),
        ("stall", *literal[0]),
        ("stall", "down", 0),
    ]
    stall_failures, stall_retried = run_trials(stalls, template, tmp_path, timeout=2.0)
    print(f"reset/stall: {len(jobs) + len(stalls)} fault trials")
    assert not failures + stall_failures, "\n".join(failures + stall_failures)
    assert (retried, stall_retried) == (len(jobs), len(stalls))


@pytest.mark.parametrize("direction", ["up", "down"])
def test_retries_run_out_then_the_next_run_converges(
    template: Template, measured: Measure, tmp_path: Path, direction: Direction
) -> None:
    with FaultProxy(template.dovecot.port) as proxy:
        s = clone(template, tmp_path, proxy)
        # mid-run the network goes away: the connections open are cut, later ones refused.
        # Inside the first message carried that way, which the run cannot do without (the
        # middle of the bytes measured may fall after a run's last needed byte: its traffic
        # is not the measured run's to the byte, with mailboxes planned in different places).
        after = dict(literal_points(measured)[:2])[direction]
        with structlog.testing.capture_logs() as logs:
            report = run_with(s, proxy, Fault("cut", direction, after, then=proxy.gone))
        assert len(proxy.fired) == 1
        assert report.failed
        # each retry is logged with its attempt and its wait, which doubles
        retries = [(e["attempt"], e["delay"]) for e in logs if e["event"] == "mailbox.retry"]
        assert retries == [(2, 0.01), (3, 0.02), (4, 0.04)], retries
        lines = report.failures()
        assert len(lines) == 1, lines
        assert f"connection refused by 127.0.0.1:{proxy.port}" in lines[0], lines[0]
        assert f"gave up after {RETRY['retries'] + 1} attempts" in lines[0], lines[0]
        assert "secret" not in lines[0]
        proxy.up()
        converges_without_faults(s, proxy)


def test_a_mailbox_out_of_retries_does_not_stop_the_account(
    template: Template, tmp_path: Path
) -> None:
    # Every connection is cut as it selects Archive (a mailbox that always breaks the server's
    # process, say): Archive fails after its retries, INBOX before it and Lokal after it sync.
    with FaultProxy(template.dovecot.port) as proxy:
        s = clone(template, tmp_path, proxy)
        report = run_with(s, proxy, Fault("cut", "up", before=b'SELECT "Archive"'))
        # one cut ends the planning of moves across the account (engine/moves.py), then the
        # mailbox's own attempts
        assert len(proxy.fired) == 1 + RETRY["retries"] + 1
        (line,) = report.failures()
        assert line.startswith("account test: mailbox 'Archive': connection to 127.0.0.1:")
        assert line.endswith(f"gave up after {RETRY['retries'] + 1} attempts"), line
        assert {m.name: m.error for m in report.mailboxes} == {
            "INBOX": None,
            "Archive": line.removeprefix("account test: "),
            "Lokal": None,
        }
        lokal = srv.fetch_all(s.imap, "Lokal")
        assert sorted(m.message_id for m in lokal) == sorted(EXPECTED["Lokal"])
        converges_without_faults(s, proxy)


def test_every_connection_cut_then_the_next_run_converges(
    template: Template, measured: Measure, tmp_path: Path
) -> None:
    # Every connection is cut once 1,500 bytes came down it (after the folder listing, in the
    # middle of a mailbox's first FETCH): no attempt gets further, so the retries run out.
    attempts = RETRY["retries"] + 1
    with FaultProxy(template.dovecot.port) as proxy:
        s = clone(template, tmp_path, proxy)
        faults = [Fault("cut", "down", 1500, connection=k) for k in range(1, 40)]
        report = run_with(s, proxy, *faults)
        assert len(proxy.fired) >= attempts  # the store's own first connection carries less
        lines = report.failures()
        assert len(lines) == 1, lines
        assert f"connection to 127.0.0.1:{proxy.port} lost" in lines[0], lines[0]
        assert f"gave up after {attempts} attempts" in lines[0], lines[0]
        converges_without_faults(s, proxy)


# ---- server restart -----------------------------------------------------------------------


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot()


@pytest.mark.parametrize("held_down", [False, True], ids=["back-within-run", "down-too-long"])
def test_server_restart_mid_sync(own_dovecot: Dovecot, tmp_path: Path, held_down: bool) -> None:
    t = Template(own_dovecot, "restart-0000", tmp_path / "template")
    t.dir.mkdir()
    prepare(make_setup(own_dovecot.account(t.user), t.dir))
    starter: list[threading.Thread] = []

    def stop_then_start() -> None:
        own_dovecot.stop()
        if not held_down:
            # Back after a second: the first retries are refused, a later one gets through.
            def start() -> None:
                time.sleep(1.0)
                own_dovecot.start()

            starter.append(threading.Thread(target=start))
            starter[0].start()

    with FaultProxy(own_dovecot.port, record=True) as proxy:
        s = clone(t, tmp_path, proxy).with_account(retries=8, retry_delay=0.05)
        if held_down:
            s = s.with_account(retries=2, retry_delay=0.05)
        # The server goes away after the first body was sent to it (mid-sync, both ways busy).
        measure = clone(t, tmp_path, proxy)
        proxy.arm()
        assert not sync(measure).failed
        down = proxy.stream("down")
        at = down.index(b"BODY[] {") + 200
        report = run_with(s, proxy, Fault("none", "down", at, then=stop_then_start))
        for thread in starter:
            thread.join(20)
        assert len(proxy.fired) == 1
        assert proxy.connections > proxy.fired[0].opened, "no new connection after the stop"
        if held_down:
            assert report.failed
            (line,) = report.failures()
            assert "gave up after 3 attempts" in line, line
            own_dovecot.start()
            proxy.arm()
            report = sync(s)
        assert not report.failed, report.failures()
        check_converged(s)
        check_idempotent(s)


# ---- what is never retried ----------------------------------------------------------------


@pytest.mark.parametrize("what", ["password", "certificate"])
def test_permanent_failures_are_not_retried(template: Template, tmp_path: Path, what: str) -> None:
    """A wrong password or a certificate that does not verify fails at once, on one
    connection: retrying would only fail the same way (and could lock the account)."""
    port = template.dovecot.port if what == "password" else template.dovecot.imaps_port
    with FaultProxy(port) as proxy:
        s = clone(template, tmp_path, proxy)
        if what == "password":
            s = s.with_account(remote=replace(s.account.remote, password="wrong-Pa55"))
            expected = "authentication failed for user"
        else:
            s = s.with_account(remote=replace(s.account.remote, tls="implicit"))  # no ca_file
            expected = "certificate verify failed"
        report = run_with(s, proxy)
        (line,) = report.failures()
        assert expected in line and "wrong-Pa55" not in line, line
        # a certificate failure adds one unverified connection that reads the certificate
        # for the message (stores/imap/tls_failure.py)
        expected_connections = 1 if what == "password" else 2
        assert proxy.connections == expected_connections, "a permanent failure was retried"
