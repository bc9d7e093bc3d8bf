"""Two-way sync through a real Dovecot into a real Maildir: outcomes on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup

FOLDERS = ["INBOX", "Archive/2024", "Entwürfe", "Project Alpha", "日本語", "Work/Clients/Acme & Co"]


def fill_server(setup: Setup, per_folder: int = 3) -> dict[str, list[str]]:
    """Put messages on the server; returns folder -> Message-IDs."""
    ids: dict[str, list[str]] = {}
    with srv.session(setup.imap) as c:
        for f_index, folder in enumerate(FOLDERS):
            ids[folder] = []
            for i in range(per_folder):
                flags = ["\\Seen"] if i % 2 == 0 else []
                if i == 1:
                    flags += ["\\Flagged", "$Forwarded", "Work"]
                srv.append(
                    setup.imap, folder, srv.make_message(100 * f_index + i, folder), flags, imap=c
                )
                ids[folder].append(srv.message_id(100 * f_index + i, folder))
    return ids


def snapshot_both(setup: Setup) -> tuple[dict[str, list[tuple[int, frozenset[str]]]], set[str]]:
    remote = {
        f: [(m.uid, m.flags) for m in srv.fetch_all(setup.imap, f)]
        for f in srv.list_folders(setup.imap, selectable=True)
    }
    files = {str(p.relative_to(setup.root)) for p in setup.root.rglob("*") if p.is_file()}
    return remote, files


def test_initial_sync_then_nothing_changes(setup: Setup) -> None:
    ids = fill_server(setup)
    report = setup.sync()
    assert not report.failed, report
    assert_in_sync(setup)
    local = loc.by_message_id(setup.root, setup.layout, "INBOX")
    flagged = local[ids["INBOX"][1]]
    assert "F" in flagged.letters
    # keywords land as Dovecot-style letters with a dovecot-keywords file
    keywords = (loc.folder_dir(setup.root, setup.layout, "INBOX") / "dovecot-keywords").read_text()
    assert "Work" in keywords
    before = snapshot_both(setup)
    report = setup.sync()
    assert not report.failed
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert snapshot_both(setup) == before


def test_changes_on_both_sides_in_one_run(setup: Setup) -> None:
    ids = fill_server(setup)
    assert not setup.sync().failed
    root, layout, imap = setup.root, setup.layout, setup.imap
    inbox = loc.by_message_id(root, layout, "INBOX")

    # remote side: a new message, a flag set, a keyword set, a deletion, a new folder
    srv.append(imap, "INBOX", srv.make_message(900, "INBOX"), ["\\Answered"])
    srv.set_flags(imap, "INBOX", ids["INBOX"][1], ["\\Answered", "$Junk"])
    srv.clear_flags(imap, "Archive/2024", ids["Archive/2024"][0], ["\\Seen"])
    srv.expunge(imap, "Entwürfe", ids["Entwürfe"][2])
    srv.append(imap, "Neu/Remote", srv.make_message(901, "Neu/Remote"), ["\\Seen"])
    # local side: a new message, a flag change, a deletion, a new folder
    loc.deliver(root, layout, "INBOX", srv.make_message(950, "INBOX"), "S")
    loc.set_letters(inbox[ids["INBOX"][0]], "FS")
    loc.by_message_id(root, layout, "Project Alpha")[ids["Project Alpha"][1]].path.unlink()
    loc.deliver(root, layout, "Lokal", srv.make_message(951, "Lokal"), "")

    report = setup.sync()
    assert not report.failed, report
    assert_in_sync(setup)
    remote_inbox = {m.message_id: m for m in srv.fetch_all(imap, "INBOX")}
    assert srv.message_id(950, "INBOX") in remote_inbox
    assert remote_inbox[ids["INBOX"][0]].flags >= {"\\Seen", "\\Flagged"}
    assert "$Junk" in remote_inbox[ids["INBOX"][1]].flags
    assert ids["Project Alpha"][1] not in {
        m.message_id for m in srv.fetch_all(imap, "Project Alpha")
    }
    assert ids["Entwürfe"][2] not in loc.by_message_id(root, layout, "Entwürfe")
    assert "Lokal" in srv.list_folders(imap)
    assert srv.message_id(901, "Neu/Remote") in loc.by_message_id(root, layout, "Neu/Remote")
    # and a further run is a no-op
    before = snapshot_both(setup)
    report = setup.sync()
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert snapshot_both(setup) == before


def test_dry_run_changes_nothing(fs_setup: Setup) -> None:
    """A dry run opens both stores read-only: not a file (not even a folder id), not a flag,
    not a state row changes, before the first sync or after one."""
    s = fs_setup
    ids = fill_server(s)
    loc.deliver(s.root, "fs", "Lokal", srv.make_message(500, "Lokal"), "S")
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(501, "INBOX"), "")
    state = s.config.general.state_dir / "test.sqlite"

    before = snapshot_both(s)
    report = s.sync(dry_run=True)
    assert not report.failed, report
    assert sum(m.copied[1] for m in report.mailboxes) == 3 * len(FOLDERS)
    assert sum(m.copied[0] for m in report.mailboxes) == 2
    assert snapshot_both(s) == before
    assert not state.exists()

    assert not s.sync().failed
    srv.set_flags(s.imap, "INBOX", ids["INBOX"][0], ["\\Flagged"])
    loc.by_message_id(s.root, "fs", "Entwürfe")[ids["Entwürfe"][0]].path.unlink()
    before = snapshot_both(s)
    state_before = state.read_bytes()
    report = s.sync(dry_run=True)
    assert not report.failed, report
    (inbox,) = [m for m in report.mailboxes if m.name == "INBOX"]
    (drafts,) = [m for m in report.mailboxes if m.name == "Entwürfe"]
    assert inbox.flagged == [0, 1] and drafts.deleted == [1, 0]
    assert snapshot_both(s) == before
    assert state.read_bytes() == state_before


def test_mass_delete_is_refused_unless_allowed(fs_setup: Setup) -> None:
    s = fs_setup
    with srv.session(s.imap) as c:
        for i in range(30):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), imap=c)
    assert not s.sync().failed
    for m in loc.messages(s.root, "fs", "INBOX")[:20]:
        m.path.unlink()
    srv.append(s.imap, "Archive", srv.make_message(99, "Archive"))  # another mailbox changes
    report = s.sync()
    assert report.failed
    (inbox,) = [m for m in report.mailboxes if m.name == "INBOX"]
    assert inbox.error and "--allow-mass-delete" in inbox.error
    assert len(srv.fetch_all(s.imap, "INBOX")) == 30
    # the refused mailbox does not stop the others
    assert srv.message_id(99, "Archive") in loc.by_message_id(s.root, "fs", "Archive")
    report = s.sync(allow_mass_delete=True)
    assert not report.failed
    assert len(srv.fetch_all(s.imap, "INBOX")) == 10


def test_missing_maildir_root_is_an_error_and_deletes_nothing(fs_setup: Setup) -> None:
    s = fs_setup
    fill_server(s)
    assert not s.sync().failed
    moved = s.root.with_name("Mail.away")
    s.root.rename(moved)
    report = s.sync()
    assert report.failed and report.error and "does not exist" in report.error
    assert len(srv.fetch_all(s.imap, "INBOX")) == 3
    s.root.mkdir()
    (s.root / "not-a-dir").write_text("x")


def test_first_sync_creates_the_root_but_a_later_missing_root_is_an_error(
    fs_setup: Setup,
) -> None:
    s = fs_setup
    fill_server(s, per_folder=1)
    s.root.rmdir()
    assert not s.sync().failed  # never synced: the root is made
    assert_in_sync(s)
    s.root.rename(s.root.with_name("Mail.unmounted"))
    report = s.sync()
    assert report.failed and report.error and "does not exist" in report.error
    assert not s.root.exists()
    assert len(srv.fetch_all(s.imap, "INBOX")) == 1


def test_uidvalidity_change_repairs_by_identity(fs_setup: Setup) -> None:
    s = fs_setup
    fill_server(s)
    assert not s.sync().failed
    files_before = sorted(p.name for p in (s.root / "Archive/2024").rglob("*") if p.is_file())
    old = srv.fetch_all(s.imap, "Archive/2024")
    with srv.session(s.imap) as c:
        srv._ok(c.delete(srv._quote("Archive/2024")))
    for m in old:  # same messages, new UIDVALIDITY
        srv.append(s.imap, "Archive/2024", m.body, m.flags)
    report = s.sync()
    assert not report.failed, report
    (box,) = [m for m in report.mailboxes if m.name == "Archive/2024"]
    assert box.copied == [0, 0] and box.deleted == [0, 0]
    files_after = sorted(p.name for p in (s.root / "Archive/2024").rglob("*") if p.is_file())
    assert files_after == files_before
    assert_in_sync(s)


def test_wrong_password_is_a_clear_error(imap_account, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make_setup(imap_account, tmp_path, "fs", password="Zq8-not-the-password")
    # the test server accepts any user with "secret" only
    report = s.sync()
    assert report.failed and report.error
    assert "Zq8-not-the-password" not in report.error
    assert "authentication failed" in report.error.lower()
    assert loc.folders(s.root, "fs") == []


@pytest.mark.parametrize("layout", ["fs"])
def test_second_run_after_local_only_changes(layout: str, fs_setup: Setup) -> None:
    s = fs_setup
    fill_server(s, per_folder=2)
    assert not s.sync().failed
    msg = loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(1, "INBOX")]
    loc.set_letters(msg, "RS")
    assert not s.sync().failed
    server = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert server[srv.message_id(1, "INBOX")] >= {"\\Answered", "\\Seen"}
    assert "\\Flagged" not in server[srv.message_id(1, "INBOX")]


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_server_changes_reach_local_in_both_modes(mode: str, fs_setup: Setup) -> None:
    """Quick mode builds the server's side from the records plus CHANGEDSINCE/VANISHED; it must
    see exactly what a full listing sees."""
    s = fs_setup
    ids = fill_server(s, per_folder=4)
    assert not s.sync(mode=mode).failed
    assert not s.sync(mode=mode).failed  # settles the cursors after our own writes
    srv.set_flags(s.imap, "INBOX", ids["INBOX"][0], ["\\Flagged", "Work"])
    srv.clear_flags(s.imap, "INBOX", ids["INBOX"][2], ["\\Seen"])
    srv.expunge(s.imap, "INBOX", ids["INBOX"][3])
    srv.append(s.imap, "INBOX", srv.make_message(777, "INBOX"), ["\\Seen"])
    report = s.sync(mode=mode)
    assert not report.failed, report
    (inbox,) = [m for m in report.mailboxes if m.name == "INBOX"]
    assert inbox.copied == [0, 1] and inbox.deleted == [0, 1] and inbox.flagged == [0, 2]
    assert all(not any(m.summary().values()) for m in report.mailboxes if m.name != "INBOX")
    assert_in_sync(s)


def test_hostile_local_folder_names_are_refused_and_the_rest_syncs(fs_setup: Setup) -> None:
    s = fs_setup
    fill_server(s, per_folder=1)
    outside = s.root.parent / "outside"
    for sub in ("cur", "new", "tmp"):
        (outside / sub).mkdir(parents=True)
    (s.root / "escape").symlink_to(outside, target_is_directory=True)
    for bad in ("tab\there", "bell\x07"):
        for sub in ("cur", "new", "tmp"):
            (s.root / bad / sub).mkdir(parents=True)
    loc.deliver(s.root, "fs", "tab\there", srv.make_message(1, "x"), "S")
    report = s.sync()
    assert not report.failed, report
    refused = " ".join(report.stranded_lines())
    assert "escape" in refused and "tab" in refused and "bell" in refused
    server = srv.list_folders(s.imap)
    assert not any("escape" in f or "tab" in f or "bell" in f for f in server)
    assert list((outside / "cur").iterdir()) == []  # nothing written outside the root
    assert_in_sync(s, ignore=frozenset({"tab\there", "bell\x07"}))


@pytest.mark.parametrize(
    "password_line",
    [
        'password = "secret"',  # the right one
        'password = "Zq8-wrong-pw"',  # refused: the error path
        'password_command = ["sh", "-c", "echo secret"]',
    ],
    ids=["right", "wrong", "command"],
)
def test_no_password_in_debug_logs(password_line: str, fs_setup: Setup, tmp_path: Path) -> None:
    """Neither the password nor a wrong one appears anywhere in a -vv run."""
    import subprocess
    import sys

    s = fs_setup
    fill_server(s, per_folder=1)
    config = tmp_path / "secret-test.toml"
    config.write_text(
        f'[general]\nstate_dir = "{s.config.general.state_dir}"\n'
        '[account.t]\nlocal = "l"\nremote = "r"\n'
        f'[repository.l]\ntype = "maildir"\npath = "{s.root}"\n'
        f'[repository.r]\ntype = "imap"\nhost = "{s.imap.host}"\nport = {s.imap.port}\n'
        f'tls = "none"\nuser = "{s.imap.user}"\n{password_line}\n'
    )
    config.chmod(0o600)  # else the warning about a readable password names the file
    out = subprocess.run(
        [sys.executable, "-m", "mailtide", "-vv", "sync", "-c", str(config)],
        capture_output=True,
        timeout=120,
    )
    text = out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")
    assert "imap.connected" in text or "authentication failed" in text.lower(), text
    for secret in ("secret", "Zq8-wrong-pw"):
        assert secret not in text.replace("secrets", ""), text


def test_a_27th_keyword_is_never_removed_from_the_server(fs_setup: Setup) -> None:
    """A Maildir folder holds 26 keywords; the 27th stays on the server untouched."""
    s = fs_setup
    many = [f"kw{i:02d}" for i in range(30)]
    with srv.session(s.imap) as c:
        for i in range(30):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen", many[i]], imap=c)
    for _ in range(2):
        assert not s.sync().failed
    server = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    for i in range(30):
        assert many[i] in server[srv.message_id(i, "INBOX")], i
    held = loc.keyword_names(s.root, "fs", "INBOX")
    assert len(held) == 26
    # a flag change on one of the messages whose keyword did not fit still goes both ways
    unheld = next(i for i in range(30) if many[i] not in held.values())
    local = loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(unheld, "INBOX")]
    loc.set_letters(local, local.letters + "F")
    assert not s.sync().failed
    after = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert {"\\Flagged", many[unheld]} <= after[srv.message_id(unheld, "INBOX")]


def test_empty_server_list_after_a_sync_is_an_error_and_deletes_nothing(fs_setup: Setup) -> None:
    from dataclasses import replace

    from fake_imap import fake_imap

    s = fs_setup
    fill_server(s, per_folder=2)
    assert not s.sync().failed
    files = sorted(p for p in s.root.rglob("*") if p.is_file())
    with fake_imap(b"") as port:
        broken = s.with_account(remote=replace(s.account.remote, port=port))
        report = broken.sync()
    assert report.failed and report.error and "listed no folders" in report.error
    assert sorted(p for p in s.root.rglob("*") if p.is_file()) == files
    assert not s.sync().failed  # the real server again: nothing to do, nothing lost
    assert_in_sync(s)


def test_cancelled_runs_leave_nothing_half_done(fs_setup: Setup) -> None:
    """The engine task cancelled mid-run (as the daemon will cancel it) five times, with new mail
    on both sides before each run, then one complete run: both sides equal, nothing twice, the
    account not left locked."""
    import asyncio
    import random

    from mailtide.wiring import sync_account

    s = fs_setup
    rng = random.Random(7)
    count = 0

    async def cancelled_after(seconds: float) -> bool:
        task = asyncio.ensure_future(sync_account(s.config, s.account))
        await asyncio.sleep(seconds)
        if task.done():
            return False
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    cancels = attempts = 0
    while cancels < 5 and attempts < 30:
        attempts += 1
        with srv.session(s.imap) as c:
            for _ in range(80):
                srv.append(s.imap, "INBOX", srv.make_message(count, "INBOX", 3000), imap=c)
                count += 1
        for _ in range(20):
            loc.deliver(s.root, "fs", "INBOX", srv.make_message(count, "INBOX"), "S")
            count += 1
        cancels += asyncio.run(cancelled_after(rng.uniform(0.01, 0.25)))
    assert cancels == 5, f"only {cancels} cancels landed in {attempts} runs"
    assert not s.sync().failed
    assert_in_sync(s)
    assert len(srv.fetch_all(s.imap, "INBOX")) == count


def test_folder_gone_from_one_side_is_neither_recreated_nor_deleted(fs_setup: Setup) -> None:
    import shutil

    s = fs_setup
    fill_server(s, per_folder=2)
    assert not s.sync().failed
    shutil.rmtree(s.root / "Project Alpha")  # gone locally
    with srv.session(s.imap) as c:  # and another one gone on the server
        srv._ok(c.delete(srv._quote("Entwürfe")))
    for _ in range(2):
        report = s.sync()
        assert not report.failed, report
        said = " ".join(report.stranded)
        assert "'Project Alpha' is gone from the local side" in said
        assert "'Entwürfe' is gone from the remote side" in said
    assert not (s.root / "Project Alpha").exists()
    assert len(srv.fetch_all(s.imap, "Project Alpha")) == 2
    assert "Entwürfe" not in srv.list_folders(s.imap)
    assert len(loc.messages(s.root, "fs", "Entwürfe")) == 2


@pytest.mark.parametrize("layout", ["fs", "maildir++"])
def test_a_settled_mailbox_still_sees_one_small_change(
    layout: str, imap_account: ImapAccount, tmp_path: Path
) -> None:
    """Quick mode skips a pair whose sides are provably as the last sync left them; one rename
    on the local side, one flag on the server, one deletion each must break that proof."""
    s = make_setup(imap_account, tmp_path, layout)
    ids = fill_server(s, per_folder=4)
    for _ in range(3):  # copy, then settle (the digests are kept from a run with nothing to do)
        assert not s.sync().failed
    inbox = ids["INBOX"]

    local = loc.by_message_id(s.root, layout, "INBOX")[inbox[2]]
    loc.set_letters(local, local.letters + "F")
    assert not s.sync().failed
    assert "\\Flagged" in {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}[inbox[2]]

    assert not s.sync().failed
    srv.set_flags(s.imap, "Archive/2024", ids["Archive/2024"][0], ["\\Answered"])
    assert not s.sync().failed
    got = loc.by_message_id(s.root, layout, "Archive/2024")[ids["Archive/2024"][0]]
    assert "R" in got.letters

    assert not s.sync().failed
    loc.by_message_id(s.root, layout, "Entwürfe")[ids["Entwürfe"][3]].path.unlink()
    srv.expunge(s.imap, "日本語", ids["日本語"][3])
    assert not s.sync().failed
    assert ids["Entwürfe"][3] not in {m.message_id for m in srv.fetch_all(s.imap, "Entwürfe")}
    assert ids["日本語"][3] not in loc.by_message_id(s.root, layout, "日本語")
    assert_in_sync(s)


def test_nested_folders_new_on_either_side_settle_without_warnings(setup: Setup) -> None:
    s = setup
    srv.append(s.imap, "Fern/Tief/Unten", srv.make_message(1, "x"), ["\\Seen"])
    loc.deliver(s.root, s.layout, "Nah/Unter", srv.make_message(2, "y"), "S")
    report = s.sync()
    assert not report.failed, report
    assert_in_sync(s)
    for _ in range(2):
        report = s.sync()
        assert not report.failed and report.warnings == [], report.warnings
        assert all(not any(m.summary().values()) for m in report.mailboxes), report


def test_a_folder_the_other_side_cannot_hold_is_skipped_and_the_rest_syncs(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    s = make_setup(imap_account, tmp_path, "fs")  # there "new" is a Maildir's own directory
    srv.append(s.imap, "Projekte/new", srv.make_message(1, "x"), ["\\Seen"])
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    for _ in range(2):
        report = s.sync()
        assert not report.failed, report
        assert any("Projekte/new" in w for w in report.stranded), report.stranded
    assert srv.message_id(2, "INBOX") in loc.by_message_id(s.root, "fs", "INBOX")
    assert len(srv.fetch_all(s.imap, "Projekte/new")) == 1
    assert not (s.root / "Projekte" / "new" / "cur").exists()
    # and the other way round: a local name this server refuses ("." under its layout)
    loc.deliver(s.root, "fs", "v1.2 notes", srv.make_message(3, "y"), "S")
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(4, "INBOX"), "S")
    report = s.sync()
    assert not report.failed, report
    assert any("v1.2 notes" in w for w in report.stranded), report.stranded
    assert srv.message_id(4, "INBOX") in {m.message_id for m in srv.fetch_all(s.imap, "INBOX")}
    assert len(loc.messages(s.root, "fs", "v1.2 notes")) == 1


def test_a_bug_in_one_mailbox_costs_only_that_mailbox(
    fs_setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: planning one mailbox raises an unexpected error; every other mailbox
    still syncs and the failure is reported as that mailbox's."""
    from mailtide.engine.pair import PairSync

    s = fs_setup
    ids = fill_server(s, per_folder=2)
    plan = PairSync._plan

    async def broken(self: PairSync, *args: object) -> object:
        if self.name == "Archive/2024":
            raise RuntimeError("injected")
        return await plan(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PairSync, "_plan", broken)
    report = s.sync()
    assert report.failed and report.error is None
    (bad,) = [m for m in report.mailboxes if m.error]
    assert bad.name == "Archive/2024" and "internal error: RuntimeError" in (bad.error or "")
    for folder in FOLDERS:
        if folder != "Archive/2024":
            assert set(ids[folder]) == set(loc.by_message_id(s.root, "fs", folder)), folder
