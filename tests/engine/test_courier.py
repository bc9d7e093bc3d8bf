"""Through a real Courier-IMAP 5.0 (tests/courier.py): another server's dialect ("INBOX."
namespace, "." separator, its own keyword store) and no UIDPLUS advertised.

Courier still answers APPEND with an APPENDUID code when UIDPLUS is not advertised, so every
test also runs through a relay that strips that code from the server's replies
(``no-appenduid``): then mailtide learns nothing of an upload's UID, and only the content
identity of what it finds on the next run keeps it from uploading twice.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from courier import Courier
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_sync, steps_of, write_config

SEEN, ANSWERED, FLAGGED, DELETED = "\\Seen", "\\Answered", "\\Flagged", "\\Deleted"


# ---- a server that never says which UID an APPEND got ---------------------------------------

_APPENDUID = re.compile(rb"^(\S+ OK )\[APPENDUID [^\]]*\] ?")


class WithoutAppendUid:
    """A TCP relay to a real server that removes ``[APPENDUID ...]`` from tagged OK replies.
    Server output is relayed a whole line at a time (a literal's bytes pass through as lines
    too; the test messages never hold a line like a tagged reply)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stripped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=60)
            except OSError:  # the server is gone: this client sees the connection close
                client.close()
                continue
            self._sockets += [client, server]
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _down(self, src: socket.socket, dst: socket.socket) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                pending += data
                *lines, pending = pending.split(b"\n")
                out = []
                for line in lines:
                    line, n = _APPENDUID.subn(rb"\1", line)
                    self.stripped += n
                    out.append(line + b"\n")
                dst.sendall(b"".join(out))
            dst.sendall(pending)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture(scope="module")
def relay(courier: Courier) -> Iterator[WithoutAppendUid]:
    r = WithoutAppendUid(courier.host, courier.port)
    yield r
    r.close()


_users = itertools.count(1)


@pytest.fixture(params=["appenduid", "no-appenduid"])
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def account(courier: Courier, relay: WithoutAppendUid, variant: str, name: str) -> ImapAccount:
    """A fresh Courier user, reached directly or through the relay."""
    user = f"c{os.getpid()}-{next(_users)}-{name}"[:40]
    acc = courier.account(user)
    if variant == "no-appenduid":
        return ImapAccount(acc.host, relay.port, 0, acc.user, acc.password, "")
    return acc


def fresh(courier: Courier, relay: WithoutAppendUid, variant: str, tmp: Path, name: str) -> Setup:
    tmp.mkdir(parents=True)
    return make_setup(account(courier, relay, variant, name), tmp, "fs")


def test_the_server_is_courier_without_uidplus(courier: Courier, relay: WithoutAppendUid) -> None:
    """What the other tests rely on: Courier's dialect, no UIDPLUS (nor CONDSTORE, QRESYNC,
    MOVE) advertised, an APPENDUID all the same, and none through the relay."""
    direct = courier.account(f"c{os.getpid()}-dialect")
    relayed = ImapAccount(direct.host, relay.port, 0, direct.user, direct.password, "")
    for acc, code in ((direct, True), (relayed, False)):
        with srv.session(acc) as c:
            caps = set(c.capabilities)
            assert "IMAP4REV1" in caps and "NAMESPACE" in caps, caps
            assert not caps & {"UIDPLUS", "CONDSTORE", "QRESYNC", "MOVE"}, caps
            typ, namespace = c.namespace()
            assert namespace[0].startswith(b'(("INBOX." "."))'), namespace
            typ, data = c.append("INBOX", "()", None, srv.make_message(1, "INBOX"))
            assert typ == "OK"
            assert (b"[APPENDUID " in b" ".join(d for d in data if isinstance(d, bytes))) == code


# ---- the server side in canonical names -----------------------------------------------------


def on_server(folder: str) -> str:
    """Courier's name of a canonical folder: "INBOX.Archive.2024" for "Archive/2024"."""
    return "INBOX" if folder == "INBOX" else "INBOX." + folder.replace("/", ".")


def canonical(name: str) -> str:
    return "INBOX" if name == "INBOX" else name.removeprefix("INBOX.").replace(".", "/")


def put_server(acc: ImapAccount, folder: str, numbers: list[int], flags: list[str]) -> None:
    with srv.session(acc) as c:
        if folder != "INBOX":
            c.create(srv._quote(on_server(folder)))  # "already exists" is fine
        for i in numbers:
            srv._ok(
                c.append(
                    srv._quote(on_server(folder)),
                    srv._flag_list(flags),
                    None,
                    srv.make_message(i, folder),
                )
            )


def server_side(acc: ImapAccount) -> dict[str, list[srv.ServerMessage]]:
    with srv.session(acc) as c:
        return {
            canonical(f): srv.fetch_all(acc, f, imap=c)
            for f in srv.list_folders(acc, c, selectable=True)
        }


def server_flags(acc: ImapAccount, folder: str) -> dict[str, frozenset[str]]:
    return {m.message_id: m.flags for m in server_side(acc).get(folder, [])}


def local_flags(s: Setup, folder: str) -> dict[str, frozenset[str]]:
    keywords = loc.keyword_names(s.root, s.layout, folder)
    return {
        m.message_id: loc.imap_flags(m, keywords) for m in loc.messages(s.root, s.layout, folder)
    }


def assert_same_everywhere(s: Setup) -> None:
    """Both sides hold the same folders, each Message-ID once per folder, same flags, same
    bytes (but line ends)."""
    server = server_side(s.imap)
    local = {f: loc.messages(s.root, s.layout, f) for f in loc.folders(s.root, s.layout)}
    assert sorted(server) == sorted(local)
    for folder in server:
        r_ids = Counter(m.message_id for m in server[folder])
        l_ids = Counter(m.message_id for m in local[folder])
        assert [k for k, n in r_ids.items() if n > 1] == [], f"twice on the server in {folder}"
        assert [k for k, n in l_ids.items() if n > 1] == [], f"twice locally in {folder}"
        assert sorted(r_ids) == sorted(l_ids), folder
        assert server_flags(s.imap, folder) == local_flags(s, folder), folder
        by_id = {m.message_id: m.body for m in local[folder]}
        for m in server[folder]:
            assert m.body.replace(b"\r\n", b"\n") == by_id[m.message_id], m.message_id


def quiet(s: Setup) -> None:
    report = s.sync()
    assert not report.failed, report
    assert all(not any(m.summary().values()) for m in report.mailboxes), report


def synced(s: Setup) -> None:
    report = s.sync()
    assert not report.failed, report


# ---- (a) a two-way sync at all ----------------------------------------------------------------


def test_two_way_sync(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    s = fresh(courier, relay, variant, tmp_path / "s", "twoway")
    mid = srv.message_id
    put_server(s.imap, "INBOX", [1, 2], [SEEN])
    put_server(s.imap, "INBOX", [3], [FLAGGED, "Work"])
    put_server(s.imap, "Archive/2024", [11, 12], [SEEN, "$Forwarded"])
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(21, "INBOX"), "S")
    loc.deliver(s.root, "fs", "Lokal", srv.make_message(31, "Lokal"), "F")
    loc.deliver(s.root, "fs", "Lokal", srv.make_message(32, "Lokal"), "")
    loc.deliver(s.root, "fs", "Lokal/Tief", srv.make_message(41, "Lokal/Tief"), "S")

    synced(s)
    assert_same_everywhere(s)
    # without APPENDUID the next run pairs the uploads by identity: nothing is copied again
    second = s.sync()
    assert not second.failed, second
    assert sum(sum(m.copied) for m in second.mailboxes) == 0, second
    assert_same_everywhere(s)
    assert server_flags(s.imap, "INBOX")[mid(3, "INBOX")] == {FLAGGED, "Work"}
    assert sorted(server_flags(s.imap, "Lokal")) == [mid(31, "Lokal"), mid(32, "Lokal")]
    assert local_flags(s, "Archive/2024")[mid(11, "Archive/2024")] == {SEEN, "$Forwarded"}
    quiet(s)

    # flags and keywords both ways
    srv.set_flags(s.imap, on_server("INBOX"), mid(1, "INBOX"), [ANSWERED, "Later"])
    srv.clear_flags(s.imap, on_server("INBOX"), mid(3, "INBOX"), ["Work"])
    local = loc.by_message_id(s.root, "fs", "Archive/2024")
    loc.set_letters(local[mid(12, "Archive/2024")], "FPS")
    local = loc.by_message_id(s.root, "fs", "Lokal")
    loc.set_letters(local[mid(31, "Lokal")], "S")
    synced(s)
    assert server_flags(s.imap, "INBOX")[mid(1, "INBOX")] == {SEEN, ANSWERED, "Later"}
    assert local_flags(s, "INBOX")[mid(1, "INBOX")] == {SEEN, ANSWERED, "Later"}
    assert local_flags(s, "INBOX")[mid(3, "INBOX")] == {FLAGGED}
    assert server_flags(s.imap, "Archive/2024")[mid(12, "Archive/2024")] == {
        SEEN,
        FLAGGED,
        "$Forwarded",
    }
    assert server_flags(s.imap, "Lokal")[mid(31, "Lokal")] == {SEEN}
    assert_same_everywhere(s)
    quiet(s)

    # deletions both ways
    srv.expunge(s.imap, on_server("INBOX"), mid(2, "INBOX"))
    loc.by_message_id(s.root, "fs", "Lokal")[mid(32, "Lokal")].path.unlink()
    synced(s)
    assert mid(2, "INBOX") not in local_flags(s, "INBOX")
    assert sorted(server_flags(s.imap, "Lokal")) == [mid(31, "Lokal")]
    assert_same_everywhere(s)
    quiet(s)


# ---- (b) no duplicate uploads after a crash between APPEND and its record -------------------


UPLOADS = {"INBOX": [(1, "S"), (2, ""), (3, "FS")], "Lokal": [(11, ""), (12, "R"), (13, "S")]}
DOWNLOADS = {"INBOX": [5, 6]}


def prepare_uploads(s: Setup) -> None:
    """Local mail to upload (the point of the test) and a little server mail to download."""
    for folder, msgs in UPLOADS.items():
        for i, letters in msgs:
            loc.deliver(s.root, "fs", folder, srv.make_message(i, folder), letters)
    for folder, numbers in DOWNLOADS.items():
        put_server(s.imap, folder, numbers, [SEEN])


def local_names(s: Setup) -> dict[str, set[str]]:
    """Every local message file by folder, by the unique part of its name."""
    return {
        f: {m.path.name.split(":2,", 1)[0] for m in loc.messages(s.root, "fs", f)}
        for f in loc.folders(s.root, "fs")
    }


def check_uploaded_once(s: Setup, uploaded: dict[str, set[str]]) -> None:
    """Every expected Message-ID once on each side, and every local file that was there before
    the first run is still there under its own name (nothing came back as a new file)."""
    want = {f: sorted(srv.message_id(i, f) for i, _ in msgs) for f, msgs in UPLOADS.items()}
    for f, numbers in DOWNLOADS.items():
        want[f] = sorted(want.get(f, []) + [srv.message_id(i, f) for i in numbers])
    server = server_side(s.imap)
    assert {f: sorted(m.message_id for m in msgs) for f, msgs in server.items()} == want
    local = {f: loc.messages(s.root, "fs", f) for f in loc.folders(s.root, "fs")}
    assert {f: sorted(m.message_id for m in msgs) for f, msgs in local.items()} == want
    names = local_names(s)
    for folder, before in uploaded.items():
        downloads = len(DOWNLOADS.get(folder, []))
        assert before <= names[folder] and len(names[folder]) == len(before) + downloads, folder
    assert_same_everywhere(s)


def test_no_duplicate_uploads_without_a_crash(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    s = fresh(courier, relay, variant, tmp_path / "s", "nocrash")
    prepare_uploads(s)
    uploaded = local_names(s)
    stripped = relay.stripped
    first = s.sync()
    assert not first.failed, first
    if variant == "no-appenduid":
        assert relay.stripped - stripped == 6, "the relay did not hide every APPENDUID"
    second = s.sync()
    assert not second.failed, second
    assert sum(m.copied[0] + m.copied[1] for m in second.mailboxes) == 0, second
    check_uploaded_once(s, uploaded)
    quiet(s)


def crash_sweep(
    courier: Courier,
    relay: WithoutAppendUid,
    variant: str,
    tmp: Path,
    prepare: Callable[[Setup], Callable[[Setup], None]],
) -> list[str]:
    """For every durable step N of a run: a fresh account prepared by ``prepare`` (which returns
    the check of the outcome), ``mailtide sync`` killed right after step N, a complete run, the
    check, and a further run that changes nothing.  One uninterrupted run counts the steps."""
    s = fresh(courier, relay, variant, tmp / "count", "count")
    check = prepare(s)
    code, out = run_sync(write_config(s), verbose=True)
    assert code == 0, out
    check(s)
    steps = steps_of(out)

    def attempt(n: int) -> str | None:
        t = fresh(courier, relay, variant, tmp / f"n{n}", f"n{n}")
        check = prepare(t)
        config = write_config(t)
        try:
            code, out = run_sync(config, crash_after=n)
            assert code == -9, f"not killed (exit {code}):\n{out}"
            code, out = run_sync(config)
            assert code == 0, f"the run after the crash failed:\n{out}"
            check(t)
            quiet(t)
        except AssertionError as exc:
            return f"after step {n} ({steps[n - 1]}): {exc}"
        return None

    started = time.monotonic()
    # each point is its own server user and directory; two at a time roughly halve the wall time
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(attempt, range(1, len(steps) + 1)) if f]
    print(f"{variant}: {len(steps)} interruption points in {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)
    return steps


def test_identical_local_copies_go_up_once_each(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    """Two files with the same bytes (a Maildir another tool filled with duplicates): both go
    up, once each; without APPENDUID the next run pairs two intents with two server twins of
    one identity and copies nothing more."""
    s = fresh(courier, relay, variant, tmp_path / "s", "twins")
    twin = srv.make_message(1, "INBOX")
    for _ in range(2):
        loc.deliver(s.root, "fs", "INBOX", twin, "S")
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(2, "INBOX"), "")
    before = local_names(s)
    for _ in range(2):
        synced(s)
    want = Counter({srv.message_id(1, "INBOX"): 2, srv.message_id(2, "INBOX"): 1})
    assert Counter(m.message_id for m in server_side(s.imap)["INBOX"]) == want
    assert Counter(m.message_id for m in loc.messages(s.root, "fs", "INBOX")) == want
    assert local_names(s) == before
    quiet(s)


# Directly (with Courier's APPENDUID) this is much the path test_steps.py sweeps on Dovecot:
# only in the slow tier.  Without APPENDUID nothing else sweeps it.
@pytest.mark.parametrize(
    "variant", [pytest.param("appenduid", marks=pytest.mark.slow), "no-appenduid"]
)
def test_crash_after_every_step_uploads_nothing_twice(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    def prepare(s: Setup) -> Callable[[Setup], None]:
        prepare_uploads(s)
        uploaded = local_names(s)
        return lambda t: check_uploaded_once(t, uploaded)

    steps = crash_sweep(courier, relay, variant, tmp_path, prepare)
    assert "append remote" in steps, steps


WC = "Work/Clients"


def prepare_changes(s: Setup) -> Callable[[Setup], None]:
    """A synced account, then new mail, flags and deletions on both sides and a new folder."""
    mid = srv.message_id
    put_server(s.imap, "INBOX", [1, 2], [SEEN])
    put_server(s.imap, "INBOX", [3, 4], [FLAGGED])
    put_server(s.imap, WC, [11, 12, 13], [SEEN])
    synced(s)
    put_server(s.imap, "INBOX", [5], [ANSWERED])
    srv.set_flags(s.imap, "INBOX", mid(3, "INBOX"), [SEEN, "$Junk"])
    srv.clear_flags(s.imap, "INBOX", mid(4, "INBOX"), [FLAGGED])
    srv.expunge(s.imap, on_server(WC), mid(12, WC))
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(6, "INBOX"), "S")
    loc.deliver(s.root, "fs", WC, srv.make_message(14, WC), "")
    loc.deliver(s.root, "fs", "Lokal", srv.make_message(61, "Lokal"), "F")
    inbox = loc.by_message_id(s.root, "fs", "INBOX")
    loc.set_letters(inbox[mid(1, "INBOX")], "FS")
    inbox[mid(2, "INBOX")].path.unlink()
    loc.by_message_id(s.root, "fs", WC)[mid(11, WC)].path.unlink()
    want = {
        "INBOX": {
            mid(1, "INBOX"): {SEEN, FLAGGED},
            mid(3, "INBOX"): {SEEN, FLAGGED, "$Junk"},
            mid(4, "INBOX"): set(),
            mid(5, "INBOX"): {ANSWERED},
            mid(6, "INBOX"): {SEEN},
        },
        WC: {mid(13, WC): {SEEN}, mid(14, WC): set()},
        "Lokal": {mid(61, "Lokal"): {FLAGGED}},
    }

    def check(t: Setup) -> None:
        for folder, flags in want.items():
            assert server_flags(t.imap, folder) == flags, folder
        assert_same_everywhere(t)

    return check


@pytest.mark.slow
def test_crash_after_every_step_with_changes_on_both_sides(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    steps = crash_sweep(courier, relay, variant, tmp_path, prepare_changes)
    assert {"delete remote", "delete local", "append remote", "append local"} <= set(steps)


# ---- (c) deleting without UIDPLUS: never another client's \Deleted message -------------------


def test_delete_leaves_other_clients_deleted_messages(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    s = fresh(courier, relay, variant, tmp_path / "s", "delete")
    mid = srv.message_id
    put_server(s.imap, "INBOX", list(range(6)), [SEEN])
    synced(s)
    assert sorted(local_flags(s, "INBOX")) == sorted(server_flags(s.imap, "INBOX"))

    # nobody else has a \Deleted message: ours is expunged
    loc.by_message_id(s.root, "fs", "INBOX")[mid(1, "INBOX")].path.unlink()
    synced(s)
    assert mid(1, "INBOX") not in server_flags(s.imap, "INBOX")

    # another client marked one \Deleted and has not expunged it: it stays, and ours waits
    srv.set_flags(s.imap, "INBOX", mid(2, "INBOX"), [DELETED])
    loc.by_message_id(s.root, "fs", "INBOX")[mid(3, "INBOX")].path.unlink()
    for _ in range(2):
        synced(s)
        server = server_flags(s.imap, "INBOX")
        assert DELETED in server[mid(2, "INBOX")]
        assert DELETED in server[mid(3, "INBOX")]
        local = loc.by_message_id(s.root, "fs", "INBOX")
        assert mid(3, "INBOX") not in local, "our deletion came back"
        assert "T" in local[mid(2, "INBOX")].letters

    # once that client changes its mind (unmarks its message), ours is expunged, theirs stays
    srv.clear_flags(s.imap, "INBOX", mid(2, "INBOX"), [DELETED])
    synced(s)
    want = sorted(mid(i, "INBOX") for i in (0, 2, 4, 5))
    assert sorted(server_flags(s.imap, "INBOX")) == want
    assert_same_everywhere(s)
    quiet(s)


# ---- folder renames without LIST-STATUS ------------------------------------------------------


@pytest.mark.parametrize("renamed_on", ["server", "local"])
def test_a_folder_renamed_on_either_side_is_renamed_on_the_other(
    courier: Courier, tmp_path: Path, renamed_on: str
) -> None:
    """Courier lists no STATUS with LIST: a rename is still recognised and carried, every
    message keeping its file and nothing copied again.  Courier may give the renamed folder
    a new UIDVALIDITY and number its messages anew in directory order (seen when a second had
    passed since the folder's UIDVALIDITY): the same messages then come back under other
    UIDs, and are recognised by content, not downloaded again."""
    s = make_setup(courier.account(f"c{os.getpid()}-rename-{renamed_on}"), tmp_path, "fs")
    put_server(s.imap, "Alt", [1, 2], ["\\Seen"])
    put_server(s.imap, "Alt/Kind", [3], [])
    assert not s.sync().failed
    ids = [m.message_id for ms in server_side(s.imap).values() for m in ms]
    files = {m.path.name for f in ("Alt", "Alt/Kind") for m in loc.messages(s.root, "fs", f)}
    if renamed_on == "server":
        with srv.session(s.imap) as c:
            srv._ok(c.rename(srv._quote(on_server("Alt")), srv._quote(on_server("Neu"))))
    else:
        os.rename(s.root / "Alt", s.root / "Neu")
    report = s.sync()
    assert not report.failed and not report.stranded, report
    assert all(p.copied == [0, 0] and p.deleted == [0, 0] for p in report.mailboxes), report
    assert sorted(server_side(s.imap)) == ["INBOX", "Neu", "Neu/Kind"]
    assert loc.folders(s.root, "fs") == ["INBOX", "Neu", "Neu/Kind"]
    assert sorted(m.message_id for ms in server_side(s.imap).values() for m in ms) == sorted(ids)
    assert {m.path.name for f in ("Neu", "Neu/Kind") for m in loc.messages(s.root, "fs", f)} == (
        files
    )
    assert_same_everywhere(s)


# ---- (d) moves without MOVE and without UIDPLUS ----------------------------------------------


def move_file(s: Setup, folder: str, message_id: str, to: str) -> None:
    """A mail client's move: the file renamed into the other folder (made if missing)."""
    msg = loc.by_message_id(s.root, "fs", folder)[message_id]
    target = loc.folder_dir(s.root, "fs", to)
    for sub in ("cur", "new", "tmp"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    msg.path.rename(target / msg.path.parent.name / msg.path.name)


def prepare_moves(s: Setup) -> Callable[[Setup], None]:
    """Moved locally (into a folder both sides have, into a new one) and on the server by
    another client (COPY, \\Deleted, EXPUNGE: Courier has no MOVE); one also flagged."""
    mid = srv.message_id
    put_server(s.imap, "INBOX", [1, 2, 3], [SEEN])
    put_server(s.imap, "Archive", [11], [SEEN])
    synced(s)
    move_file(s, "INBOX", mid(1, "INBOX"), "Archive")
    move_file(s, "INBOX", mid(2, "INBOX"), "Neu")
    loc.set_letters(loc.by_message_id(s.root, "fs", "Neu")[mid(2, "INBOX")], "FS")
    with srv.session(s.imap) as c:
        srv._ok(c.select(srv._quote(on_server("Archive"))))
        uids = b",".join(srv._uids_of(c, mid(11, "Archive"))).decode()
        srv._ok(c.uid("COPY", uids, srv._quote("INBOX")))
        srv._ok(c.uid("STORE", uids, "+FLAGS.SILENT", "(\\Deleted)"))
        srv._ok(c.expunge())
    want = {
        "INBOX": {mid(3, "INBOX"): {SEEN}, mid(11, "Archive"): {SEEN}},
        "Archive": {mid(1, "INBOX"): {SEEN}},
        "Neu": {mid(2, "INBOX"): {SEEN, FLAGGED}},
    }

    def check(t: Setup) -> None:
        for folder, flags in want.items():
            assert server_flags(t.imap, folder) == flags, folder
        assert_same_everywhere(t)

    return check


def test_moves_both_ways_copy_and_expunge_only_ours(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    """Carried as moves, no body sent or received: COPY + \\Deleted + EXPUNGE on the server (an
    EXPUNGE only while nobody else's \\Deleted message is there), a rename locally."""
    s = fresh(courier, relay, variant, tmp_path / "s", "moves")
    check = prepare_moves(s)
    mid11 = srv.message_id(11, "Archive")
    inode = loc.by_message_id(s.root, "fs", "Archive")[mid11].path.stat().st_ino
    report = s.sync()
    assert not report.failed, report
    totals = report.totals()
    assert (totals["new_remote"], totals["new_local"]) == (0, 0), totals
    check(s)
    assert loc.by_message_id(s.root, "fs", "INBOX")[mid11].path.stat().st_ino == inode
    quiet(s)


@pytest.mark.parametrize(
    "variant", [pytest.param("appenduid", marks=pytest.mark.slow), "no-appenduid"]
)
def test_crash_after_every_step_of_moves(
    courier: Courier, relay: WithoutAppendUid, variant: str, tmp_path: Path
) -> None:
    steps = crash_sweep(courier, relay, variant, tmp_path, prepare_moves)
    assert {"move intent", "move remote", "move local", "move records"} <= set(steps), steps
