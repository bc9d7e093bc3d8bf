"""Moves between folders, both ways, through the real Dovecot: carried as moves (``UID MOVE`` on
the server, ``rename(2)`` locally), never as a delete plus a copy.

Every account here talks to Dovecot through a recording proxy (tests/fault_proxy.py), and every
moved message has a body far longer than what a content identity reads (4 KiB) ending in a
marker of its own: a move that sent a body would carry its marker over the wire, either way.
Locally, a moved file keeps its inode and its unique name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import with_account_keys
from dovecot import Dovecot, ImapAccount
from engine.test_maildir_skip import settled
from engine_helpers import (
    Setup,
    assert_in_sync,
    fill_inbox,
    make_setup,
    run_forked,
    run_sync,
    steps_of,
    write_config,
)
from fault_proxy import FaultProxy
from mailtide.engine.account import AccountReport
from mailtide.engine.moves import kept_all, left_to_its_run
from mailtide.state.db import Cursor
from mailtide.stores.base import MailboxStatus

SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"


def long_message(i: int) -> bytes:
    """A message whose last bytes, ``marker(i)``, lie far past its identity's 4 KiB."""
    filler = b"".join(b"line %05d of a long body that no move may send\r\n" % n for n in range(400))
    return (
        (
            f"Message-ID: <long{i}@moves.test>\r\nFrom: a@example.org\r\nSubject: long {i}\r\n\r\n"
        ).encode()
        + filler
        + marker(i)
        + b"\r\n"
    )


def marker(i: int) -> bytes:
    return b"END-OF-BODY-%06d" % i


def mid(i: int) -> str:
    return f"<long{i}@moves.test>"


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[FaultProxy]:
    with FaultProxy(dovecot.port, record=True) as p:
        yield p


@pytest.fixture
def s(imap_account: ImapAccount, tmp_path: Path, proxy: FaultProxy) -> Setup:
    return make_setup(imap_account, tmp_path, "fs", port=proxy.port)


def synced(s: Setup, proxy: FaultProxy, **kwargs: object) -> AccountReport:
    """One run, which must not fail; the proxy records only this run."""
    proxy.recorded.clear()
    report = s.sync(**kwargs)
    assert not report.failed, report.failures()
    return report


def sent(proxy: FaultProxy) -> bytes:
    return proxy.stream("up") + proxy.stream("down")


def copied(report: AccountReport) -> int:
    t = report.totals()
    return t.get("new_remote", 0) + t.get("new_local", 0)


def inodes(s: Setup, folder: str) -> dict[str, tuple[int, str]]:
    """Message-ID -> (inode, unique part of the file name)."""
    return {
        m.message_id: (m.path.stat().st_ino, m.path.name.split(":2,")[0])
        for m in loc.messages(s.root, "fs", folder)
    }


def move_on_server(s: Setup, folder: str, message_ids: list[str], to: str) -> None:
    with srv.session(s.imap) as c:
        srv.create_folder(s.imap, to, c)
        srv._ok(c.select(srv._quote(folder)))
        uids = b",".join(u for m in message_ids for u in srv._uids_of(c, m)).decode()
        srv._ok(c.uid("MOVE", uids, srv._quote(to)))


def move_locally(s: Setup, folder: str, message_id: str, to: str) -> Path:
    msg = loc.by_message_id(s.root, "fs", folder)[message_id]
    target = loc.folder_dir(s.root, "fs", to)
    for sub in ("cur", "new", "tmp"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    return msg.path.rename(target / msg.path.parent.name / msg.path.name)


def quiet(report: AccountReport) -> bool:
    return all(not any(m.summary().values()) for m in report.mailboxes)


def test_moved_on_the_server_is_renamed_locally_with_flags_merged(
    s: Setup, proxy: FaultProxy
) -> None:
    """Moved and flagged on the server, another flag set locally in the old folder: one rename
    locally (same inode, same name), both flags on both sides, nothing sent."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.append(s.imap, "Archive", long_message(2), [SEEN])
    synced(s, proxy)
    before = inodes(s, "INBOX")[mid(1)]
    move_on_server(s, "INBOX", [mid(1)], "Archive")
    srv.set_flags(s.imap, "Archive", mid(1), [FLAGGED])
    loc.set_letters(loc.by_message_id(s.root, "fs", "INBOX")[mid(1)], "RS")

    report = synced(s, proxy)

    assert copied(report) == 0
    assert marker(1) not in sent(proxy)
    assert inodes(s, "INBOX") == {}
    assert inodes(s, "Archive")[mid(1)] == before
    assert {m.message_id: m.flags for m in srv.fetch_all(s.imap, "Archive")}[mid(1)] == {
        SEEN,
        FLAGGED,
        ANSWERED,
    }
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_moved_locally_is_moved_on_the_server(s: Setup, proxy: FaultProxy) -> None:
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.append(s.imap, "INBOX", long_message(2), [])
    srv.append(s.imap, "Archive", long_message(3), [SEEN])
    synced(s, proxy)
    path = move_locally(s, "INBOX", mid(1), "Archive")
    loc.set_letters(loc.by_message_id(s.root, "fs", "Archive")[mid(1)], "FS")

    report = synced(s, proxy)

    assert copied(report) == 0 and marker(1) not in sent(proxy)
    assert b"UID MOVE" in proxy.stream("up")
    assert [m.message_id for m in srv.fetch_all(s.imap, "INBOX")] == [mid(2)]
    server = {m.message_id: m for m in srv.fetch_all(s.imap, "Archive")}
    assert server[mid(1)].flags == {SEEN, FLAGGED}
    assert server[mid(1)].body == long_message(1)
    assert loc.by_message_id(s.root, "fs", "Archive")[mid(1)].path.name.startswith(
        path.name.split(":2,")[0]
    )
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_moved_into_a_folder_new_on_the_other_side(s: Setup, proxy: FaultProxy) -> None:
    """Both ways at once: a local move into a folder the server does not have yet, a server
    move into a folder the Maildir does not have yet.  Each is created, then moved into."""
    for i in (1, 2, 3):
        srv.append(s.imap, "INBOX", long_message(i), [SEEN])
    synced(s, proxy)
    before = inodes(s, "INBOX")
    move_locally(s, "INBOX", mid(1), "Projekte/Neu")
    move_on_server(s, "INBOX", [mid(2)], "Reisen")

    report = synced(s, proxy)

    assert copied(report) == 0
    assert (report.totals()["moved_local"], report.totals()["moved_remote"]) == (1, 1)
    assert marker(1) not in sent(proxy) and marker(2) not in sent(proxy)
    assert [m.message_id for m in srv.fetch_all(s.imap, "Projekte/Neu")] == [mid(1)]
    assert inodes(s, "Reisen") == {mid(2): before[mid(2)]}
    assert_in_sync(s)


def test_a_thousand_moved_at_once_both_ways(s: Setup, proxy: FaultProxy, dovecot: Dovecot) -> None:
    """500 moved locally, 500 on the server, in one run: seconds, one UID MOVE per chunk."""
    n = 500
    fill_inbox(dovecot, s.imap, [srv.make_message(i, "INBOX") for i in range(2 * n)])
    synced(s, proxy)
    before = inodes(s, "INBOX")
    uid_of = {m.message_id: m.uid for m in srv.fetch_all(s.imap, "INBOX")}
    mine = {k for k, uid in uid_of.items() if uid <= n}  # moved locally
    theirs = {k: before[k] for k in uid_of if k not in mine}  # moved on the server
    for sub in ("cur", "new", "tmp"):
        (s.root / "Old" / sub).mkdir(parents=True)
    for m in loc.messages(s.root, "fs", "INBOX"):
        if m.message_id in mine:
            m.path.rename(s.root / "Old" / m.path.parent.name / m.path.name)
    with srv.session(s.imap) as c:
        srv.create_folder(s.imap, "Done", c)
        srv._ok(c.select("INBOX"))
        srv._ok(c.uid("MOVE", f"{n + 1}:{2 * n}", srv._quote("Done")))

    started = time.monotonic()
    report = synced(s, proxy)
    took = time.monotonic() - started

    assert copied(report) == 0
    assert sorted(inodes(s, "Old")) == sorted(mine)
    assert inodes(s, "Done") == theirs
    assert srv.fetch_all(s.imap, "INBOX") == []
    assert len(srv.fetch_all(s.imap, "Old")) == n
    assert took < 30, took
    assert_in_sync(s)


def test_moved_on_both_sides_to_different_folders_is_kept_in_both(
    s: Setup, proxy: FaultProxy
) -> None:
    """The documented outcome: each side's new location is copied to the other, so both
    folders hold the message on both sides; nothing is lost, nothing doubled in a folder."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    synced(s, proxy)
    move_on_server(s, "INBOX", [mid(1)], "A")
    move_locally(s, "INBOX", mid(1), "B")
    synced(s, proxy)
    for folder in ("A", "B"):
        assert [m.message_id for m in srv.fetch_all(s.imap, folder)] == [mid(1)]
        assert list(inodes(s, folder)) == [mid(1)]
    assert srv.fetch_all(s.imap, "INBOX") == [] and inodes(s, "INBOX") == {}
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_moved_locally_while_another_client_deletes_it_on_the_server(
    s: Setup, proxy: FaultProxy
) -> None:
    """The server copy is gone before the move can be carried: the moved file is uploaded to
    its new folder (never lost), and the old folder is empty on both sides."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    synced(s, proxy)
    move_locally(s, "INBOX", mid(1), "Archive")
    srv.create_folder(s.imap, "Archive")
    srv.expunge(s.imap, "INBOX", mid(1))
    synced(s, proxy)
    assert [m.message_id for m in srv.fetch_all(s.imap, "Archive")] == [mid(1)]
    assert list(inodes(s, "Archive")) == [mid(1)]
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_moved_locally_while_the_server_moves_it_away_during_the_sync(
    s: Setup, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client expunges the server copy after the plan, right before the MOVE: the
    server moves nothing, and the local file still reaches the server's Archive."""
    from mailtide.engine import moves

    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.create_folder(s.imap, "Archive")
    synced(s, proxy)
    move_locally(s, "INBOX", mid(1), "Archive")
    real = moves.MovePass._carry

    async def deleted_first(self, *args):  # type: ignore[no-untyped-def]
        srv.expunge(s.imap, "INBOX", mid(1))
        return await real(self, *args)

    monkeypatch.setattr(moves.MovePass, "_carry", deleted_first)
    synced(s, proxy)
    monkeypatch.setattr(moves.MovePass, "_carry", real)
    assert [m.message_id for m in srv.fetch_all(s.imap, "Archive")] == [mid(1)]
    assert srv.fetch_all(s.imap, "INBOX") == []
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_reuploaded_in_the_same_folder_is_re_paired(s: Setup, proxy: FaultProxy) -> None:
    """Another client replaced every message of a mailbox by a copy under a new UID (as a
    server renumbering without a new UIDVALIDITY looks): re-paired, not refused by the
    mass-delete guard, nothing downloaded, the local files untouched."""
    with srv.session(s.imap) as c:
        for i in range(20):
            srv.append(s.imap, "INBOX", long_message(i), [SEEN], imap=c)
    synced(s, proxy)
    before = inodes(s, "INBOX")
    move_on_server(s, "INBOX", [mid(i) for i in range(20)], "Tmp")
    move_on_server(s, "Tmp", [mid(i) for i in range(20)], "INBOX")
    with srv.session(s.imap) as c:
        srv._ok(c.delete(srv._quote("Tmp")))
    srv.set_flags(s.imap, "INBOX", mid(3), [FLAGGED])

    report = synced(s, proxy)

    assert copied(report) == 0 and all(marker(i) not in sent(proxy) for i in range(20))
    assert inodes(s, "INBOX") == before
    assert loc.by_message_id(s.root, "fs", "INBOX")[mid(3)].letters == "FS"
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_a_plain_deletion_is_still_a_deletion(s: Setup, proxy: FaultProxy) -> None:
    """A message deleted locally whose twin (same content) is new in another folder on the
    other side is no move: the server deletes its copy, the new one is downloaded."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    synced(s, proxy)
    loc.by_message_id(s.root, "fs", "INBOX")[mid(1)].path.unlink()
    srv.append(s.imap, "Archive", long_message(1), [SEEN])
    synced(s, proxy)
    assert srv.fetch_all(s.imap, "INBOX") == []
    assert list(inodes(s, "Archive")) == [mid(1)]
    assert_in_sync(s)


def test_saved_by_a_client_with_content_length_added_is_a_move(s: Setup, proxy: FaultProxy) -> None:
    """neomutt's save writes a new file with Content-Length: added and the original goes: the
    server copy is moved (not replaced by an upload); the local file keeps its extra header."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.create_folder(s.imap, "Archive")
    synced(s, proxy)
    original = loc.by_message_id(s.root, "fs", "INBOX")[mid(1)]
    head, body = original.body.split(b"\n\n", 1)
    saved = head + b"\nContent-Length: %d\nLines: 401\n\n" % len(body) + body
    loc.deliver(s.root, "fs", "Archive", saved, "S")
    original.path.unlink()

    report = synced(s, proxy)

    assert copied(report) == 0 and marker(1) not in sent(proxy)
    assert b"UID MOVE" in proxy.stream("up")
    assert srv.fetch_all(s.imap, "INBOX") == []
    (server,) = srv.fetch_all(s.imap, "Archive")
    assert server.body == long_message(1)
    assert loc.by_message_id(s.root, "fs", "Archive")[mid(1)].body == saved
    assert quiet(synced(s, proxy))


# ---- trash = "Trash": a local deletion is moved to the server's Trash ------------------------


def test_deleted_locally_goes_to_the_servers_trash(s: Setup, proxy: FaultProxy) -> None:
    t = s.with_account(trash="Trash")
    srv.append(t.imap, "INBOX", long_message(1), [SEEN, "Work"])
    srv.append(t.imap, "INBOX", long_message(2), [])
    srv.create_folder(t.imap, "Trash")
    synced(t, proxy)
    loc.by_message_id(t.root, "fs", "INBOX")[mid(1)].path.unlink()

    synced(t, proxy)

    assert b"UID MOVE" in proxy.stream("up")
    assert [m.message_id for m in srv.fetch_all(t.imap, "INBOX")] == [mid(2)]
    (trashed,) = srv.fetch_all(t.imap, "Trash")
    assert (trashed.message_id, trashed.flags) == (mid(1), {SEEN, "Work"})
    assert_in_sync(t)  # the Trash folder syncs like any other
    # a deletion inside the trash itself expunges
    loc.by_message_id(t.root, "fs", "Trash")[mid(1)].path.unlink()
    synced(t, proxy)
    assert srv.fetch_all(t.imap, "Trash") == []


def test_trash_true_is_the_folder_the_server_marks_trash(s: Setup, proxy: FaultProxy) -> None:
    """The test Dovecot marks its "Trash" with the special use \\Trash."""
    t = s.with_account(trash="\\Trash")
    srv.append(t.imap, "INBOX", long_message(1), [SEEN])
    srv.create_folder(t.imap, "Trash")
    synced(t, proxy)
    loc.by_message_id(t.root, "fs", "INBOX")[mid(1)].path.unlink()
    synced(t, proxy)
    assert srv.fetch_all(t.imap, "INBOX") == []
    assert [m.message_id for m in srv.fetch_all(t.imap, "Trash")] == [mid(1)]


def test_no_folder_marked_trash_fails_the_mailbox_and_expunges_nothing(
    s: Setup, proxy: FaultProxy
) -> None:
    t = s.with_account(trash="\\Trash")
    srv.append(t.imap, "INBOX", long_message(1), [SEEN])
    synced(t, proxy)  # the server has no Trash folder yet: nothing is marked \Trash
    loc.by_message_id(t.root, "fs", "INBOX")[mid(1)].path.unlink()
    (line,) = t.sync().failures()
    assert "marks no folder \\Trash" in line and "set the account's trash" in line, line
    assert [m.message_id for m in srv.fetch_all(t.imap, "INBOX")] == [mid(1)]


def test_a_missing_trash_folder_fails_the_mailbox_with_what_to_do(
    s: Setup, proxy: FaultProxy
) -> None:
    t = s.with_account(trash="Papierkorb")
    srv.append(t.imap, "INBOX", long_message(1), [SEEN])
    synced(t, proxy)
    loc.by_message_id(t.root, "fs", "INBOX")[mid(1)].path.unlink()
    report = t.sync()
    (line,) = report.failures()
    assert "trash folder 'Papierkorb'" in line and "create that folder" in line, line
    assert [m.message_id for m in srv.fetch_all(t.imap, "INBOX")] == [mid(1)]  # not expunged


@pytest.mark.parametrize("new_only", [False, True])
def test_trash_new_only_trashes_only_what_no_sync_recorded(
    new_only: bool, s: Setup, proxy: FaultProxy
) -> None:
    """mbsync's TrashNewOnly, our way round.  Two messages deleted locally: one synced before,
    one whose upload a killed run never recorded.  With ``trash_new_only`` only the latter,
    whose deletion no sync ever saw it synced before, goes to the Trash; the other is
    expunged.  Without it, both go to the Trash."""
    t = s.with_account(trash="Trash", trash_new_only=new_only)
    srv.create_folder(t.imap, "Trash")
    srv.append(t.imap, "INBOX", long_message(1), [SEEN])
    synced(t, proxy)
    loc.deliver(t.root, "fs", "INBOX", long_message(2).replace(b"\r\n", b"\n"), "S")
    config = with_account_keys(write_config(t), trash="Trash", trash_new_only=new_only)
    # killed right after the APPEND, before its UID is recorded: intent (with the cursors),
    # append (the inbox alone, so no other mailbox's step comes between)
    code, out = run_sync(config, 2, True, "-f", "INBOX")
    assert code == -9 and steps_of(out)[-1] == "append remote", out
    assert sorted(m.message_id for m in srv.fetch_all(t.imap, "INBOX")) == [mid(1), mid(2)]
    for i in (1, 2):
        loc.by_message_id(t.root, "fs", "INBOX")[mid(i)].path.unlink()

    synced(t, proxy)

    assert srv.fetch_all(t.imap, "INBOX") == []
    trashed = sorted(m.message_id for m in srv.fetch_all(t.imap, "Trash"))
    assert trashed == ([mid(2)] if new_only else [mid(1), mid(2)])
    assert_in_sync(t)
    assert quiet(synced(t, proxy))


# ---- a sync of some folders only (the daemon's triggers, -f) ---------------------------------


@pytest.mark.parametrize("first", ["INBOX", "Archive"])
@pytest.mark.parametrize("moved_on", ["server", "local"])
def test_a_move_across_a_sync_of_one_folder_is_a_delete_and_a_copy(
    first: str, moved_on: str, s: Setup, proxy: FaultProxy
) -> None:
    """When only one of the two folders is synced, the move cannot be seen as one: it is
    carried as before, a deletion in the origin and a copy into the target, whichever runs
    first; the message is never lost and never doubled."""
    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.append(s.imap, "Archive", long_message(2), [SEEN])
    synced(s, proxy)
    if moved_on == "server":
        move_on_server(s, "INBOX", [mid(1)], "Archive")
    else:
        move_locally(s, "INBOX", mid(1), "Archive")
    synced(s, proxy, folders=[first])
    somewhere = [m.message_id for f in ("INBOX", "Archive") for m in srv.fetch_all(s.imap, f)]
    somewhere += [k for f in ("INBOX", "Archive") for k in inodes(s, f)]
    assert mid(1) in somewhere
    synced(s, proxy, folders=["Archive" if first == "INBOX" else "INBOX"])
    assert [m.message_id for m in srv.fetch_all(s.imap, "INBOX")] == []
    assert sorted(m.message_id for m in srv.fetch_all(s.imap, "Archive")) == [mid(1), mid(2)]
    assert_in_sync(s)
    assert quiet(synced(s, proxy))


def test_a_dry_run_reports_moves_as_the_real_run_carries_them(s: Setup, proxy: FaultProxy) -> None:
    """A dry run neither deletes nor copies what the real run moves, so its counts and its
    mass-delete guard are the real run's (a renumbered mailbox is not refused), and it
    changes nothing."""
    with srv.session(s.imap) as c:
        for i in range(20):
            srv.append(s.imap, "INBOX", long_message(i), [SEEN], imap=c)
        srv.append(s.imap, "Lists", long_message(50), [SEEN], imap=c)
    srv.create_folder(s.imap, "Archive")
    synced(s, proxy)
    move_on_server(s, "INBOX", [mid(i) for i in range(20)], "Tmp")
    move_on_server(s, "Tmp", [mid(i) for i in range(20)], "INBOX")
    with srv.session(s.imap) as c:
        srv._ok(c.delete(srv._quote("Tmp")))
    move_locally(s, "Lists", mid(50), "Archive")
    before = (inodes(s, "INBOX"), [m.uid for m in srv.fetch_all(s.imap, "INBOX")])

    report = synced(s, proxy, dry_run=True)

    assert copied(report) == 0
    assert report.totals()["deleted_local"] == report.totals()["deleted_remote"] == 0
    assert (report.totals()["moved_local"], report.totals()["moved_remote"]) == (0, 1)
    assert (inodes(s, "INBOX"), [m.uid for m in srv.fetch_all(s.imap, "INBOX")]) == before
    assert [m.message_id for m in srv.fetch_all(s.imap, "Lists")] == [mid(50)]
    report = synced(s, proxy)
    assert copied(report) == 0
    assert_in_sync(s)


def test_a_bug_in_the_move_pass_costs_the_moves_not_the_sync(
    s: Setup, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong while finding moves, the sync goes on as without them: a deletion
    and a copy, nothing lost, nothing doubled."""
    from mailtide.engine import moves

    srv.append(s.imap, "INBOX", long_message(1), [SEEN])
    srv.create_folder(s.imap, "Archive")
    synced(s, proxy)
    move_locally(s, "INBOX", mid(1), "Archive")

    def broken(plans):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(moves, "find_moves", broken)
    report = synced(s, proxy)
    assert report.totals()["new_remote"] == 1 and report.totals()["deleted_remote"] == 1
    assert srv.fetch_all(s.imap, "INBOX") == []
    assert [m.message_id for m in srv.fetch_all(s.imap, "Archive")] == [mid(1)]
    assert_in_sync(s)


# ---- each folder planned once per run ----------------------------------------------------------


def commands_per_folder(proxy: FaultProxy) -> dict[str, list[str]]:
    """The SELECTs and FETCHes (UID or not) of the recorded run, by the folder selected on
    their connection (mailboxes may sync at once, each on its own connection)."""
    streams: dict[int, bytes] = {}
    for direction, _, link, data in proxy.recorded:
        if direction == "up":
            streams[link] = streams.get(link, b"") + data
    out: dict[str, list[str]] = {}
    for stream in streams.values():
        folder = None
        for line in stream.decode(errors="replace").splitlines():
            words = line.split(" ")[1:]
            if words[:1] == ["UID"]:
                words = words[1:]
            command = words[0].upper() if words else ""
            if command in ("SELECT", "EXAMINE"):
                folder = line.split(" ", 2)[2].split(" (")[0].strip('"')
                out.setdefault(folder, []).append("SELECT")
            elif command == "FETCH" and folder is not None:
                out[folder].append("FETCH")
    return out


def test_a_full_sync_with_nothing_changed_lists_each_folder_once(
    s: Setup, proxy: FaultProxy
) -> None:
    """The move pass plans every pair; the pair's own run takes that plan instead of
    selecting and listing the folder again."""
    for i, folder in enumerate(("INBOX", "Archive", "Lists", "Projekte/Alt")):
        srv.append(s.imap, folder, long_message(i), [SEEN])
    synced(s, proxy)

    synced(s, proxy, mode="full")

    seen = commands_per_folder(proxy)
    assert seen == {
        f: ["SELECT", "FETCH"] for f in ("INBOX", "Archive", "Lists", "Projekte/Alt")
    }, seen


# ---- a dry run ------------------------------------------------------------------------------


@pytest.mark.parametrize("moved_on", ["server", "local"])
def test_a_dry_run_names_a_move_into_a_folder_missing_on_the_other_side(
    moved_on: str, s: Setup, proxy: FaultProxy
) -> None:
    """The folder a real run would create first does not exist in a dry run: the move is still
    seen and printed as one (with the folder it would create), and nothing changes."""
    for i in (1, 2):
        srv.append(s.imap, "INBOX", long_message(i), [SEEN])
    synced(s, proxy)
    if moved_on == "server":
        move_on_server(s, "INBOX", [mid(1)], "Neu")
    else:
        move_locally(s, "INBOX", mid(1), "Neu")

    def both_sides() -> tuple[list[Path], dict[str, list[tuple[int, str]]]]:
        server = {
            f: [(m.uid, m.message_id) for m in srv.fetch_all(s.imap, f)]
            for f in srv.list_folders(s.imap, selectable=True)
        }
        return sorted(s.root.rglob("*")), server

    before = both_sides()

    code, out = run_forked(write_config(s), "--dry-run")

    assert code == 0, out
    carrier, missing = ("local", "local") if moved_on == "server" else ("remote", "remote")
    (would,) = [line for line in out.splitlines() if "event=mailbox.would_move" in line]
    assert "origin=INBOX" in would and "target=Neu" in would and f"side={carrier}" in would, out
    assert any(
        "event=folder.would_create" in line and "folder=Neu" in line and f"side={missing}" in line
        for line in out.splitlines()
    ), out
    (done,) = [line for line in out.splitlines() if "event=account.done" in line]
    assert f"moved_{carrier}=1" in done and "new_local=0" in done and "new_remote=0" in done, done
    assert both_sides() == before


def test_a_change_carried_to_one_side_opens_only_that_side(s: Setup, proxy: FaultProxy) -> None:
    """A flag changed on the server is carried to the Maildir alone: the pair's own run takes
    the move pass's plan and does not select the server folder again."""
    for i in (1, 2):
        srv.append(s.imap, "INBOX", long_message(i), [SEEN])
    synced(s, proxy)
    srv.set_flags(s.imap, "INBOX", mid(1), [SEEN, FLAGGED])

    synced(s, proxy)

    assert commands_per_folder(proxy) == {"INBOX": ["SELECT", "FETCH"]}
    assert "F" in loc.by_message_id(s.root, s.layout, "INBOX")[mid(1)].letters
    assert_in_sync(s)


def test_the_pairs_own_run_asks_no_size_the_move_pass_learnt(s: Setup, proxy: FaultProxy) -> None:
    """The move pass's listing of the changes gives each new message's size; the pair's own
    run, on another open of the folder, fetches the body without asking for the size again
    (a round trip per folder with new mail)."""
    for folder in ("INBOX", "Work"):
        srv.append(s.imap, folder, long_message(1), [SEEN])
    synced(s, proxy)
    srv.append(s.imap, "INBOX", long_message(2), [])
    srv.set_flags(s.imap, "Work", mid(1), [SEEN, FLAGGED])

    synced(s, proxy)

    commands = proxy.stream("up").decode(errors="replace").splitlines()
    assert [c for c in commands if c.endswith("(UID RFC822.SIZE)")] == []
    assert len([c for c in commands if "BODY.PEEK[]" in c]) == 1
    assert mid(2) in loc.by_message_id(s.root, s.layout, "INBOX")
    assert_in_sync(s)


def test_the_pairs_own_run_goes_on_from_the_move_pass_selection(
    s: Setup, proxy: FaultProxy
) -> None:
    """The move pass selects each changed folder to plan it; the pair's own run, carrying
    that plan out, takes the same connection with the folder still selected: one SELECT per
    folder and run, not two (each costs the server a SELECT of the whole folder)."""
    for folder in ("INBOX", "Work"):
        srv.append(s.imap, folder, long_message(1), [SEEN])
    synced(s, proxy)
    srv.append(s.imap, "INBOX", long_message(2), [])
    srv.append(s.imap, "Work", long_message(3), [FLAGGED])
    loc.set_letters(loc.by_message_id(s.root, s.layout, "Work")[mid(1)], "SF")

    synced(s, proxy)

    commands = commands_per_folder(proxy)
    assert commands["INBOX"].count("SELECT") == 1, commands
    assert commands["Work"].count("SELECT") == 1, commands
    assert mid(2) in loc.by_message_id(s.root, s.layout, "INBOX")
    assert "F" in loc.by_message_id(s.root, s.layout, "Work")[mid(3)].letters
    assert_in_sync(s)


def test_server_changes_in_more_folders_than_connections_select_each_folder_once(
    s: Setup, proxy: FaultProxy
) -> None:
    """Flags changed and mail added on the server in more folders than the run has
    connections: nothing left any folder, so no move can exist, and each folder is selected
    once in the run (by its pair's own run), not once by the move pass and again by the pair
    after other folders took the pass's sessions."""
    folders = ["INBOX", "Archive", "Lists", "Work", "Travel", "Receipts"]
    for i, folder in enumerate(folders):
        srv.append(s.imap, folder, long_message(i), [SEEN])
    settled(s, tuple(folders))  # the Maildir folders' stamps recorded: provably unchanged
    for i, folder in enumerate(folders):
        srv.set_flags(s.imap, folder, mid(i), [SEEN, FLAGGED])
        srv.append(s.imap, folder, long_message(10 + i), [])

    synced(s, proxy)

    commands = commands_per_folder(proxy)
    assert {f: commands[f].count("SELECT") for f in folders} == dict.fromkeys(folders, 1), commands
    for i, folder in enumerate(folders):
        local = loc.by_message_id(s.root, s.layout, folder)
        assert "F" in local[mid(i)].letters
        assert mid(10 + i) in local
    assert_in_sync(s)


def test_a_server_deletion_among_changed_folders_still_finds_the_move(
    s: Setup, proxy: FaultProxy
) -> None:
    """Moved on the server into a folder that also changed otherwise, among other changed
    folders: the folder it left shows a message gone, so every pair is planned by the move
    pass after all and the message is moved locally, not deleted and downloaded."""
    folders = ["INBOX", "Archive", "Lists", "Work", "Travel"]
    for i, folder in enumerate(folders):
        srv.append(s.imap, folder, long_message(i), [SEEN])
    settled(s, tuple(folders))
    before = inodes(s, "Work")[mid(3)]
    for i, folder in enumerate(folders):
        srv.set_flags(s.imap, folder, mid(i), [SEEN, FLAGGED])
    move_on_server(s, "Work", [mid(3)], "Travel")

    report = synced(s, proxy)

    assert copied(report) == 0
    assert marker(3) not in sent(proxy)
    assert inodes(s, "Travel")[mid(3)] == before
    assert_in_sync(s)


SERVER_BEFORE = Cursor("7", uidnext=11, modseq=50, count=10)
MAILDIR_BEFORE = Cursor("id", stamp="s1")


@pytest.mark.parametrize(
    ("server_now", "maildir_now", "left"),
    [
        # flags changed and 3 added: nothing lost, a SELECT needed -> its own run
        (MailboxStatus("7", 14, 60, 13), MailboxStatus("id", stamp="s1"), True),
        # nothing changed on the server: planned by the pass without a SELECT
        (MailboxStatus("7", 11, 50, 10), MailboxStatus("id", stamp="s1"), False),
        # one expunged, one added: the count falls short of the UIDs given
        (MailboxStatus("7", 12, 60, 10), MailboxStatus("id", stamp="s1"), False),
        # two added, one of them expunged again: short too (it cannot tell which went)
        (MailboxStatus("7", 13, 60, 11), MailboxStatus("id", stamp="s1"), False),
        # a new UIDVALIDITY
        (MailboxStatus("8", 14, 60, 13), MailboxStatus("id", stamp="s1"), False),
        # the Maildir changed (another stamp, or none that proves anything)
        (MailboxStatus("7", 14, 60, 13), MailboxStatus("id", stamp="s2"), False),
        (MailboxStatus("7", 14, 60, 13), MailboxStatus("id"), False),
    ],
)
def test_a_pair_is_left_to_its_run_only_when_its_statuses_prove_nothing_left(
    server_now: MailboxStatus, maildir_now: MailboxStatus, left: bool
) -> None:
    before = [SERVER_BEFORE, MAILDIR_BEFORE]
    assert left_to_its_run([server_now, maildir_now], before, [True, False]) is left
    # a server side selected already (a session held from an earlier run): planned at once
    assert not left_to_its_run([server_now, maildir_now], before, [False, False])


def test_a_server_side_without_counts_recorded_is_never_taken_for_unchanged() -> None:
    """A plan cut short leaves only validities recorded: nothing is proven then."""
    assert not kept_all(MailboxStatus("7", 14, 60, 13), Cursor("7"))
