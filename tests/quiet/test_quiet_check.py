"""The quiet check (mailtide/quiet/): a ``mailtide sync`` of an account that is as its last
quiet run left it ends before the engine loads, and any change on either side, to the
configuration, the state or the credentials makes the sync run as usual and carry it.

Through the real Dovecot and the real command line (a forked ``mailtide sync``)."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount, private_dovecot
from engine_helpers import assert_in_sync, run_sync
from password_sources import SOURCES, Writer, random_password, use_source
from quiet_helpers import Quiet, ended_quietly, provable, quiet_account, sync


@pytest.fixture
def quiet(imap_account: ImapAccount, tmp_path: Path) -> Quiet:
    return quiet_account(imap_account, tmp_path)


@pytest.mark.parametrize("layout", ["fs", "maildir++"])
def test_a_sync_after_a_quiet_run_ends_at_the_check_with_the_same_report(
    imap_account: ImapAccount, tmp_path: Path, layout: str
) -> None:
    quiet = quiet_account(imap_account, tmp_path, layout)
    output = sync(quiet)
    assert ended_quietly(output), output
    # The server's answers came from the session begun before the modules loaded (early.py).
    assert "event=quiet.session side=FAR begun=early" in output, output
    done = [line for line in output.splitlines() if "event=account.done" in line]
    assert len(done) == 1
    assert re.sub(r"^timestamp=\S+ ", "", done[0]) == (
        "level=info event=account.done account=test mailboxes=3 failed=0 stranded=0"
        " new_remote=0 new_local=0 moved_remote=0 moved_local=0 dry_run=false"
    )
    assert ended_quietly(sync(quiet)), "a quiet check leaves its proof as it was"
    assert_in_sync(quiet.setup)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_the_check_speaks_tls_as_the_store_does(
    imap_account: ImapAccount, tmp_path: Path, tls: str
) -> None:
    assert imap_account.ca_file is not None
    port = imap_account.imaps_port if tls == "implicit" else imap_account.port
    q = quiet_account(imap_account, tmp_path, tls=tls, port=port, ca_file=imap_account.ca_file)
    assert ended_quietly(sync(q))
    _server_flag(q)
    assert not ended_quietly(sync(q))
    assert_in_sync(q.setup)


def test_the_proof_is_private_and_holds_no_secret(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path
) -> None:
    password = "Quiet-proof-password-7731"
    q = quiet_account(dovecot.account(imap_account.user, password), tmp_path)
    assert stat.S_IMODE(q.proof.stat().st_mode) == 0o600
    assert password.encode() not in q.proof.read_bytes()


def _server_message(q: Quiet) -> None:
    srv.append(q.setup.imap, "INBOX", srv.make_message(7, "INBOX"))


def _server_flag(q: Quiet) -> None:
    srv.set_flags(q.setup.imap, "INBOX", srv.message_id(0, "INBOX"), ["\\Flagged"])


def _server_expunge(q: Quiet) -> None:
    srv.expunge(q.setup.imap, "Archive", srv.message_id(1, "Archive"))


def _server_folder(q: Quiet) -> None:
    srv.append(q.setup.imap, "Later", srv.make_message(8, "Later"))


def _local_message(q: Quiet) -> None:
    loc.deliver(q.setup.root, q.setup.layout, "INBOX", srv.make_message(9, "INBOX"))


def _local_flag(q: Quiet) -> None:
    (message,) = loc.messages(q.setup.root, q.setup.layout, "Archive")
    loc.set_letters(message, "FS")


def _local_deletion(q: Quiet) -> None:
    (message,) = loc.messages(q.setup.root, q.setup.layout, "INBOX")
    message.path.unlink()


def _local_folder(q: Quiet) -> None:
    loc.deliver(q.setup.root, q.setup.layout, "Drafts", srv.make_message(10, "Drafts"))


CHANGES: dict[str, Callable[[Quiet], None]] = {
    "server: a new message": _server_message,
    "server: a flag": _server_flag,
    "server: a message expunged": _server_expunge,
    "server: a new folder": _server_folder,
    "local: a new message": _local_message,
    "local: a flag": _local_flag,
    "local: a message deleted": _local_deletion,
    "local: a new folder": _local_folder,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_on_either_side_is_synced_by_the_engine(
    quiet: Quiet, change: Callable[[Quiet], None]
) -> None:
    change(quiet)
    output = sync(quiet)
    assert not ended_quietly(output), output
    assert_in_sync(quiet.setup)


def test_the_run_after_the_one_that_wrote_to_the_server_leaves_the_proof(quiet: Quiet) -> None:
    """It carries nothing (the server shows the first one's own writes again) and records the
    statuses it read: the run after it ends at the check."""
    _local_flag(quiet)
    assert not ended_quietly(sync(quiet))  # carries the change to the server
    assert not quiet.proof.exists()  # the server's answers changed by its own writes
    provable(quiet)
    output = sync(quiet)
    assert not ended_quietly(output)
    assert "event=quiet.proof_left" in output, output
    assert ended_quietly(sync(quiet))
    assert_in_sync(quiet.setup)


SERVER_CHANGES = {k: v for k, v in CHANGES.items() if k.startswith("server") and "folder" not in k}


@pytest.mark.parametrize("change", SERVER_CHANGES.values(), ids=SERVER_CHANGES.keys())
def test_a_run_that_only_wrote_to_the_maildir_leaves_the_proof_and_hides_nothing(
    quiet: Quiet, change: Callable[[Quiet], None]
) -> None:
    """A run that carried the server's change into the Maildir, and wrote nothing to the
    server, leaves the proof at once: the server's answers as it read them, each folder it
    wrote with the stamp it recorded after its writes.  The next run ends at the check; a
    change after that, on either side, is still synced."""
    change(quiet)
    output = sync(quiet)
    assert not ended_quietly(output)
    assert "event=quiet.proof_left" in output, output
    assert_in_sync(quiet.setup)
    provable(quiet)
    assert ended_quietly(sync(quiet))
    _local_message(quiet)
    assert not ended_quietly(sync(quiet))
    _server_flag(quiet)
    assert not ended_quietly(sync(quiet))
    assert_in_sync(quiet.setup)


def test_a_maildir_change_is_found_before_the_server_is_asked(quiet: Quiet) -> None:
    """The Maildir's stat calls come first: a change there (the sync after reading mail)
    ends the check without waiting for the server's answers (the session begun early is
    left untaken)."""
    _server_flag(quiet)
    _local_flag(quiet)
    output = sync(quiet)
    assert 'why="the local side reads otherwise"' in output, output
    assert "event=quiet.session" not in output, output
    assert_in_sync(quiet.setup)


def test_an_edited_configuration_is_read_by_a_sync(quiet: Quiet) -> None:
    text = quiet.config.read_text()
    quiet.config.write_text(text.replace('layout = "fs"', 'layout = "fs"  # edited'))
    assert not ended_quietly(sync(quiet))


def test_a_state_written_since_the_quiet_run_is_read_by_a_sync(quiet: Quiet) -> None:
    db = sqlite3.connect(quiet.setup.config.general.state_dir / "test.sqlite")
    db.execute("INSERT INTO meta (key, value) VALUES ('written', 'by another program')")
    db.commit()
    db.close()
    assert not ended_quietly(sync(quiet))


def test_an_account_with_hooks_is_always_synced(quiet: Quiet) -> None:
    ran = quiet.config.parent / "postsync-ran"
    hook = f'postsync_hook = ["touch", "{ran}"]\n'
    text = quiet.config.read_text().replace('remote = "remote"\n', f'remote = "remote"\n{hook}', 1)
    quiet.config.write_text(text)
    sync(quiet)  # the config changed: this one runs in any case, and its run is quiet
    ran.unlink()
    assert not ended_quietly(sync(quiet))
    assert ran.exists()


PASSWORD_KEYS = {
    "password_file": lambda secret: f'password_file = "{secret}"',
    "password_command": lambda secret: f'password_command = ["cat", "{secret}"]',
}


@pytest.mark.parametrize("key", PASSWORD_KEYS.values(), ids=PASSWORD_KEYS.keys())
def test_a_password_that_no_longer_works_is_reported_not_hidden(
    quiet: Quiet, key: Callable[[Path], str]
) -> None:
    """The proof says nothing about the credentials: a login the server refuses makes the
    sync run, and it says why."""
    secret = quiet.config.parent / "password"
    secret.write_text(quiet.setup.imap.password + "\n")
    secret.chmod(0o600)
    text = re.sub(r"(?m)^password = .*$", key(secret), quiet.config.read_text())
    quiet.config.write_text(text)
    sync(quiet)
    assert ended_quietly(sync(quiet)), "the check logs in with the password the key gives"
    secret.write_text("not the password\n")
    code, output = run_sync(quiet.config, None, True)
    assert code != 0
    assert not ended_quietly(output)
    assert "refused" in output.lower() or "authentication" in output.lower(), output


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_the_check_reads_every_password_source_as_the_sync_does(
    dovecot: Dovecot,
    imap_account: ImapAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: Writer,
) -> None:
    password = random_password()
    account = dovecot.account(imap_account.user, password)
    q = quiet_account(account, tmp_path, password=password)
    use_source(q.config, source(tmp_path, account, password, monkeypatch))
    sync(q)  # the config changed: this one runs, and is quiet
    output = sync(q)
    assert ended_quietly(output), output
    # A source that runs a program (a command, the keyring) is asked once, by the check
    # itself; the others' password is read before the modules load (early.py).
    begun = "now" if source in (SOURCES["password_command"], SOURCES["keyring"]) else "early"
    assert f"event=quiet.session side=FAR begun={begun}" in output, output


def test_an_account_another_mailtide_holds_is_refused_as_ever(quiet: Quiet) -> None:
    lock = quiet.setup.config.general.state_dir / "test.lock"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, output = run_sync(quiet.config, None, True)
    finally:
        os.close(fd)
    assert code != 0
    assert "already syncing this account" in output


def test_a_maildir_gone_is_reported(quiet: Quiet) -> None:
    quiet.setup.root.rename(quiet.setup.root.with_name("Mail.moved"))
    code, output = run_sync(quiet.config, None, True)
    assert code != 0
    assert "does not exist" in output
    assert not ended_quietly(output)


def test_a_damaged_proof_is_ignored_and_made_anew(quiet: Quiet) -> None:
    quiet.proof.write_bytes(b'{"format": 1, "sides": [null')
    output = sync(quiet)
    assert not ended_quietly(output)
    assert 'why="no proof of a quiet run"' in output
    assert ended_quietly(sync(quiet))


@pytest.mark.parametrize("change", [_local_message, _server_folder], ids=["upload", "folder"])
def test_a_run_that_wrote_to_the_server_or_made_a_folder_leaves_no_proof(
    quiet: Quiet, change: Callable[[Quiet], None]
) -> None:
    change(quiet)
    sync(quiet)
    assert not quiet.proof.exists()


# A stock Dovecot's capabilities but LIST-STATUS: each mailbox's status comes from its own
# STATUS or SELECT, which the check does not read again.
WITHOUT_LIST_STATUS = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS CHILDREN"
    " LIST-EXTENDED CONDSTORE QRESYNC ESEARCH MOVE SPECIAL-USE UNSELECT"
)


@pytest.fixture(scope="module")
def no_list_status() -> Iterator[Dovecot]:
    yield from private_dovecot(capability_override=WITHOUT_LIST_STATUS)


def test_a_server_without_list_status_is_never_taken_as_quiet(
    no_list_status: Dovecot, tmp_path: Path
) -> None:
    q = quiet_account(no_list_status.account(f"nols-{os.getpid()}"), tmp_path, proof=False)
    _server_flag(q)
    assert not ended_quietly(sync(q))
    assert_in_sync(q.setup)
