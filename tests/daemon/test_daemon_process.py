"""`mailtide daemon` as a real process against the private Dovecot: the first sync, SIGUSR1,
SIGTERM when idle and in the middle of a large first sync, SIGUSR2, and systemd's READY=1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, cli, eventually, local_ids, settled, with_account_keys
from dovecot import ImapAccount
from engine_helpers import Setup, assert_in_sync, make_setup, write_config
from fault_proxy import FaultProxy


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


@pytest.fixture
def start(setup: Setup, daemons: Callable[..., Daemon]) -> Callable[..., Daemon]:
    def run(env: dict[str, str] | None = None, *args: str) -> Daemon:
        return daemons(write_config(setup), env, *args)

    return run


def big_first_sync_under_way(s: Setup, start: Callable[..., Daemon]) -> Daemon:
    """A daemon in the middle of its first sync of two folders of 600 messages."""
    for folder in ("INBOX", "Archive"):
        srv.append_many(s.imap, folder, [srv.make_message(i, folder) for i in range(600)])
    d = start()
    eventually(lambda: len(local_ids(s)) > 0, 30, "the first sync under way", d)
    return d


def test_first_sync_then_sigusr1_then_sigterm_when_idle(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    d = start()
    eventually(lambda: srv.message_id(1, "INBOX") in local_ids(s), 20, "first sync", d)
    eventually(lambda: "event=account.done" in d.output, 10, "first sync's summary", d)
    settled(d)  # a new folder's creation may be seen twice by inotify: one more, empty, sync
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    time.sleep(0.5)  # nothing but a signal (or the 15 min timer) syncs it
    assert srv.message_id(2, "INBOX") not in local_ids(s)
    d.signal(signal.SIGUSR1)
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 10, "SIGUSR1's sync", d)
    eventually(lambda: d.output.count("event=account.done") >= 2, 10, "second summary", d)
    d.signal(signal.SIGTERM)
    code, took = d.wait_exit(10)
    assert code == 0, d.output[-3000:]
    assert took < 2, took  # idle: out at once
    assert "event=daemon.stopped" in d.output
    assert_in_sync(s)


def test_sigterm_in_a_large_first_sync_exits_at_once_and_the_next_run_converges(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    s = setup
    d = big_first_sync_under_way(s, start)
    d.signal(signal.SIGTERM)
    code, took = d.wait_exit(10)
    assert code == 0, d.output[-3000:]
    assert took < 5, took
    assert "event=account.stopped" in d.output, d.output[-3000:]
    held = len(local_ids(s)) + len(local_ids(s, "Archive"))
    assert held < 1200, "the sync had finished before the stop: no test"
    # the next run (a one-shot sync) converges: nothing lost, nothing twice
    result = cli(d.config, "sync", "-c", str(d.config))
    assert result.returncode == 0, result.stderr
    assert_in_sync(s)


def test_sigusr2_finishes_the_sync_in_flight_then_exits(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    s = setup
    d = big_first_sync_under_way(s, start)
    d.signal(signal.SIGUSR2)
    code, _ = d.wait_exit(60)
    assert code == 0, d.output[-3000:]
    assert "event=account.stopped" not in d.output
    assert_in_sync(s)  # finished, not cut


def test_ready_and_status_reach_systemd(
    setup: Setup, start: Callable[..., Daemon], tmp_path: Path
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    try:
        d = start({"NOTIFY_SOCKET": str(path)})
        got: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("last sync" in g for g in got):
            got.append(sock.recv(4096).decode())
        assert got and got[0] == "READY=1", got
        assert any("STATUS=test: idle" in g and "last sync" in g for g in got), got
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10)[0] == 0
        rest = []
        with_timeout = time.monotonic() + 5
        while time.monotonic() < with_timeout and "STOPPING=1" not in rest:
            rest.append(sock.recv(4096).decode())
        assert "STOPPING=1" in rest, rest
    finally:
        sock.close()


def test_status_sync_now_and_a_plain_sync_go_through_the_running_daemon(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    d = start()
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    assert d.output.count("event=account.done") == 1, "mailtide's own writes made a sync"
    out = cli(d.config, "status", "--json")
    assert out.returncode == 0, out.stderr
    (daemon,) = json.loads(out.stdout)["daemons"]
    assert daemon["pid"] == d.proc.pid
    (account,) = daemon["accounts"]
    assert account["account"] == "test" and account["state"] == "idle", account
    assert account["last_sync"]["mode"] == "full" and account["last_sync"]["result"] == "ok"
    assert account["last_sync"]["counts"]["new_local"] == 1
    text = cli(d.config, "status")
    assert text.returncode == 0 and "test: idle" in text.stdout, text.stdout
    # sync --now: the daemon syncs at once and the caller gets its result
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    now = cli(d.config, "-c", str(d.config), "sync", "--now", "-v")
    assert now.returncode == 0, now.stderr
    assert "sync.handed_over" in now.stderr, now.stderr
    assert srv.message_id(2, "INBOX") in local_ids(s)
    # a plain sync while the daemon holds the account's lock is handed over too, and its
    # outcome is the daemon's: a folder that does not exist is a usage mistake (exit 2)
    srv.append(s.imap, "INBOX", srv.make_message(3, "INBOX"), ["\\Seen"])
    plain = cli(d.config, "sync", "-c", str(d.config))
    assert plain.returncode == 0, plain.stderr
    assert srv.message_id(3, "INBOX") in local_ids(s)
    wrong = cli(d.config, "sync", "-c", str(d.config), "-f", "INBX")
    assert wrong.returncode == 2 and 'did you mean "INBOX"' in wrong.stderr, wrong.stderr
    assert d.proc.poll() is None, "the daemon keeps running after a bad request"


def test_status_counts_the_messages_moved(setup: Setup, daemons: Callable[..., Daemon]) -> None:
    """A message moved on the server is renamed locally: ``status --json`` counts it as
    moved (carried on the local side), not as a deletion and a new message."""
    s = setup
    for i in (1, 2):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"])
    srv.create_folder(s.imap, "Archive")
    # no push: only SIGUSR1 syncs, and it syncs every folder (a move needs both)
    config = with_account_keys(
        write_config(s), idle_folders=[], notify=False, poll="1h", watch_maildir=False
    )
    d = daemons(config)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    with srv.session(s.imap) as c:
        srv._ok(c.select("INBOX"))
        uids = b",".join(srv._uids_of(c, srv.message_id(1, "INBOX"))).decode()
        srv._ok(c.uid("MOVE", uids, "Archive"))
    before = d.output.count("event=account.done")
    d.signal(signal.SIGUSR1)
    eventually(lambda: d.output.count("event=account.done") > before, 20, "SIGUSR1's sync", d)
    settled(d)
    (account,) = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]["accounts"]
    counts = account["last_sync"]["counts"]
    assert (counts["moved_local"], counts["moved_remote"]) == (1, 0), counts
    assert counts["new_local"] == counts["deleted_local"] == 0, counts
    assert srv.message_id(1, "INBOX") in loc.by_message_id(s.root, "fs", "Archive")


def test_a_second_daemon_for_the_same_account_refuses_to_start(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    first = start()
    eventually(lambda: "event=daemon.started" in first.output, 20, "first daemon", first)
    second = start()
    code, _ = second.wait_exit(20)
    assert code == 1, second.output
    assert f"{first.proc.pid}" in second.output and "daemon.cannot_start" in second.output
    assert first.proc.poll() is None
    assert cli(first.config, "status").returncode == 0


def test_without_xdg_runtime_dir_status_and_a_sync_find_the_daemon_in_the_temporary_dir(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    """The sockets are then in ``<tmp>/mailtide-<uid>`` (tempfile's directory: $TMPDIR here),
    and a client finds them there, though it looks for sockets before it asks tempfile."""
    tmp = setup.root.parent / "tmp"
    tmp.mkdir()
    env = {"XDG_RUNTIME_DIR": "", "TMPDIR": str(tmp)}
    d = start(env)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    assert [p.name for p in (tmp / f"mailtide-{os.getuid()}").iterdir()] == [
        f"daemon-{d.proc.pid}.sock"
    ]
    client = {**os.environ, **env}
    status = subprocess.run(
        [sys.executable, "-m", "mailtide", "status", "--json"],
        capture_output=True, text=True, timeout=60, env=client,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert [daemon["pid"] for daemon in json.loads(status.stdout)["daemons"]] == [d.proc.pid]
    srv.append(setup.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    plain = subprocess.run(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(d.config), "-v"],
        capture_output=True, text=True, timeout=120, env=client,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "sync.handed_over" in plain.stderr, plain.stderr
    assert srv.message_id(1, "INBOX") in local_ids(setup)


def test_status_without_a_daemon(setup: Setup) -> None:
    config = write_config(setup)
    out = cli(config, "status")
    assert out.returncode == 1 and "no mailtide daemon is running" in out.stdout
    assert json.loads(cli(config, "status", "--json").stdout) == {"daemons": []}


def test_sighup_reloads_accounts_and_a_bad_config_keeps_the_old_one(
    setup: Setup, start: Callable[..., Daemon], imap_account: ImapAccount
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    d = start()
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    good = d.config.read_text()
    # a config that does not load: reported with its line, the daemon runs on
    d.config.write_text(good + "\n[account.test]\nbogus = 1\n")
    d.signal(signal.SIGHUP)
    eventually(lambda: "event=daemon.reload_failed" in d.output, 10, "the reload refused", d)
    assert "config.toml:" in d.output.split("daemon.reload_failed", 1)[1].splitlines()[0]
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), ["\\Seen"])
    d.signal(signal.SIGUSR1)
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 10, "still syncing", d)
    # a second account added: it starts; the first one is not disturbed
    other_root = s.root.parent / "Other"
    d.config.write_text(
        good
        + f"""
[account.other]
local = "other-local"
remote = "remote"

[repository.other-local]
type = "maildir"
path = "{other_root}"
"""
    )
    before = d.output.count("event=daemon.account_ended")
    d.signal(signal.SIGHUP)
    eventually(lambda: (other_root / "INBOX").is_dir(), 20, "the new account's first sync", d)
    assert d.output.count("event=daemon.account_ended") == before, "test was restarted"
    status = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]
    assert sorted(a["account"] for a in status["accounts"]) == ["other", "test"]
    # removed again: it stops, the daemon runs on
    d.config.write_text(good)
    d.signal(signal.SIGHUP)
    eventually(
        lambda: "account=other" in d.output.split("event=daemon.account_ended")[-1][:200],
        20,
        "the removed account stopped",
        d,
    )
    status = json.loads(cli(d.config, "status", "--json").stdout)["daemons"][0]
    assert [a["account"] for a in status["accounts"]] == ["test"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_a_change_in_the_maildir_reaches_the_server_without_a_signal(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])
    d = start()
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    # a new message, a flag rename and a new nested folder, as a mail client makes them
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(2, "INBOX"), "S")
    eventually(
        lambda: (
            srv.message_id(2, "INBOX") in {m.message_id for m in srv.fetch_all(s.imap, "INBOX")}
        ),
        10,
        "a new local message on the server",
        d,
    )
    (first,) = [
        m for m in loc.messages(s.root, "fs", "INBOX") if m.message_id == srv.message_id(1, "INBOX")
    ]
    loc.set_letters(first, "FS")
    eventually(
        lambda: (
            {"\\Seen", "\\Flagged"}
            <= next(
                m.flags for m in srv.fetch_all(s.imap, "INBOX") if m.message_id == first.message_id
            )
        ),
        10,
        "a flag set in the Maildir on the server",
        d,
    )
    loc.deliver(s.root, "fs", "Projects/New", srv.make_message(3, "Projects/New"), "S")
    eventually(
        lambda: "Projects/New" in srv.list_folders(s.imap, selectable=True),
        10,
        "a new local folder on the server",
        d,
    )
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_a_resume_from_suspend_syncs_every_account_at_once(
    setup: Setup, start: Callable[..., Daemon], tmp_path: Path
) -> None:
    s = setup
    slept = tmp_path / "slept"
    d = start({"MAILTIDE_TEST_SLEPT_FILE": str(slept)})
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    srv.append(s.imap, "INBOX", srv.make_message(7, "INBOX"), ["\\Seen"])
    slept.write_text("3600\n")  # the boot clock ran an hour ahead of the monotonic one
    eventually(lambda: "event=daemon.resumed" in d.output, 15, "the resume seen", d)
    eventually(lambda: srv.message_id(7, "INBOX") in local_ids(s), 10, "a sync after it", d)
    # and push still works after the resume (OfflineIMAP #20, #56: IDLE never fetches again)
    settled(d)
    srv.append(s.imap, "INBOX", srv.make_message(8, "INBOX"), ["\\Seen"])
    eventually(lambda: srv.message_id(8, "INBOX") in local_ids(s), 10, "push after resume", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


@pytest.mark.parametrize(
    ("keys", "push"),
    [
        pytest.param({}, "NOTIFY", id="notify"),
        pytest.param({"notify": False}, "IDLE on INBOX + poll every 10s", id="idle"),
        pytest.param({"notify": False, "idle_folders": []}, "poll every 10s", id="poll"),
    ],
)
def test_new_server_mail_arrives_without_a_signal(
    setup: Setup, daemons: Callable[..., Daemon], keys: dict[str, object], push: str
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), [])
    srv.append(s.imap, "Work", srv.make_message(1, "Work"), [])
    d = daemons(with_account_keys(write_config(s), poll=10, **keys))
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    eventually(
        lambda: push in json.dumps(json.loads(cli(d.config, "status", "--json").stdout)),
        10,
        f"status shows {push}",
        d,
    )
    srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"), [])
    if push.startswith("poll"):  # the next poll round, once: the rest is the poll again
        srv.append(s.imap, "Work", srv.make_message(2, "Work"), [])
        eventually(lambda: srv.message_id(2, "Work") in local_ids(s, "Work"), 15, "polled", d)
        assert srv.message_id(2, "INBOX") in local_ids(s)
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10)[0] == 0
        return
    eventually(lambda: srv.message_id(2, "INBOX") in local_ids(s), 5, "INBOX pushed", d)
    # a folder without IDLE: NOTIFY reports it at once, else the poll within its 10 s
    srv.append(s.imap, "Work", srv.make_message(2, "Work"), [])
    eventually(lambda: srv.message_id(2, "Work") in local_ids(s, "Work"), 15, "Work pushed", d)
    srv.set_flags(s.imap, "INBOX", srv.message_id(2, "INBOX"), ["\\Flagged"])
    eventually(
        lambda: "F" in loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(2, "INBOX")].letters,
        15,
        "a flag pushed",
        d,
    )
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_server_push_is_compressed_where_the_repository_asks(
    proxied: tuple[Setup, FaultProxy], daemons: Callable[..., Daemon]
) -> None:
    """``compress = true`` covers the push connection too: NOTIFY over COMPRESS=DEFLATE
    reports at once (each renewal of its watch also reports what changed while none ran)."""
    s, proxy = proxied
    proxy.record = True
    direct = replace(s.imap, port=proxy.target[1])  # the test's own changes: not recorded
    config = write_config(s)
    config.write_text(config.read_text().replace('tls = "none"', 'tls = "none"\ncompress = true'))
    d = daemons(config)
    eventually(lambda: "sources=NOTIFY" in d.output, 20, "NOTIFY running", d)
    settled(d)
    for i in range(3):  # each report renews the watch: news after news still comes
        srv.append(direct, "Work", srv.make_message(i, "Work"), [])
        pushed = srv.message_id(i, "Work")
        eventually(lambda m=pushed: m in local_ids(s, "Work"), 5, "pushed", d)  # type: ignore[misc]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0
    ups: dict[int, bytes] = {}
    for direction, _, connection, data in proxy.recorded:
        if direction == "up":
            ups[connection] = ups.get(connection, b"") + data
    assert ups and all(b" COMPRESS DEFLATE\r\n" in up for up in ups.values()), ups.keys()
    assert not any(b"NOTIFY" in up or b"IDLE" in up for up in ups.values())  # none in clear
