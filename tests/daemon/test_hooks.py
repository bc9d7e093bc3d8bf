"""The hooks around a sync, through `mailtide sync` against the private Dovecot: what they are
given (environment, changed files on stdin, new mail as JSON lines), and that a failing or
hanging hook is reported and never stops the sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import with_account_keys
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, write_config


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")


def recorder(tmp: Path, name: str) -> Path:
    """A hook program that writes its environment and its standard input into files."""
    script = tmp / f"{name}.py"
    script.write_text(
        "import json, os, sys\n"
        f"out = {str(tmp / name)!r}\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('MAILTIDE_')}\n"
        "open(out + '.env', 'a').write(json.dumps(env) + '\\n')\n"
        "open(out + '.stdin', 'ab').write(sys.stdin.buffer.read())\n"
    )
    return script


def with_hooks(s: Setup, **hooks: list[str] | float) -> Path:
    return with_account_keys(write_config(s), **hooks)


def sync(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hooks_are_told_what_changed(setup: Setup, tmp_path: Path) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    raw = srv.make_message(2, "INBOX").replace(
        b"Subject:", b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= und", 1
    )
    srv.append(s.imap, "INBOX", raw, [])
    py = sys.executable
    config = with_hooks(
        s,
        presync_hook=[py, str(recorder(tmp_path, "pre"))],
        postsync_hook=[py, str(recorder(tmp_path, "post"))],
        newmail_hook=[py, str(recorder(tmp_path, "new"))],
    )
    result = sync(config)
    assert result.returncode == 0, result.stderr
    pre = json.loads((tmp_path / "pre.env").read_text())
    assert pre["MAILTIDE_ACCOUNT"] == "test" and pre["MAILTIDE_MODE"] == "quick"
    assert pre["MAILTIDE_ALL_MAILBOXES"] == "1" and "MAILTIDE_RESULT" not in pre
    post = json.loads((tmp_path / "post.env").read_text())
    assert post["MAILTIDE_RESULT"] == "ok" and post["MAILTIDE_NEW_LOCAL"] == "2", post
    files = {p.path for p in loc.messages(s.root, "fs", "INBOX")}
    lines = (tmp_path / "post.stdin").read_text().splitlines()
    assert sorted(lines) == sorted(f"added\t{p}" for p in files), lines
    new = [json.loads(line) for line in (tmp_path / "new.stdin").read_text().splitlines()]
    assert {n["path"] for n in new} == {str(p) for p in files}
    by_id = {n["message_id"]: n for n in new}
    greeting = by_id[srv.message_id(2, "INBOX")]
    assert greeting["folder"] == "INBOX" and greeting["account"] == "test"
    assert greeting["subject"].startswith("Grüße und"), greeting
    assert greeting["from"] and greeting["date"], greeting
    # a flag changed on the server: a rename; no new mail, so no newmail hook this time
    srv.set_flags(s.imap, "INBOX", srv.message_id(2, "INBOX"), ["\\Flagged"])
    (tmp_path / "post.stdin").write_text("")
    assert sync(config).returncode == 0
    (line,) = (tmp_path / "post.stdin").read_text().splitlines()
    kind, old, new_path = line.split("\t")
    assert kind == "renamed" and Path(new_path).exists() and not Path(old).exists()
    assert len((tmp_path / "new.env").read_text().splitlines()) == 1


def test_a_failing_or_hanging_hook_is_reported_and_the_sync_goes_on(
    setup: Setup, tmp_path: Path
) -> None:
    s = setup
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"), ["\\Seen"])
    failing = tmp_path / "fail.py"
    failing.write_text("import sys\nprint('no index here', file=sys.stderr)\nsys.exit(3)\n")
    hanging = tmp_path / "hang.py"
    hanging.write_text("import time\ntime.sleep(60)\n")
    config = with_hooks(
        s,
        presync_hook=[sys.executable, str(hanging)],
        postsync_hook=[sys.executable, str(failing)],
        newmail_hook=["/nonexistent/notify-me"],
        hook_timeout=1,
    )
    result = sync(config)
    assert result.returncode == 0, result.stderr
    assert srv.message_id(1, "INBOX") in loc.by_message_id(s.root, "fs", "INBOX")
    err = result.stderr
    assert "event=hook.timeout" in err and "hook=presync" in err, err
    assert "event=hook.failed" in err and "status=3" in err and "no index here" in err, err
    assert "hook=newmail" in err and "cannot run /nonexistent/notify-me" in err, err


def test_moves_are_counted_and_a_local_move_is_a_removal_and_an_addition(
    setup: Setup, tmp_path: Path
) -> None:
    """One message moved locally (carried on the server), one moved on the server (carried
    locally): the postsync hook's counts and the summary line say so, not a delete and a copy;
    the local rename reaches its stdin as the old path removed and the new one added (so
    notmuch sees the folder change), and no newmail hook runs for it."""
    s = setup
    for i in (1, 2, 3):
        srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"])
    srv.create_folder(s.imap, "Archive")
    py = sys.executable
    config = with_hooks(
        s,
        postsync_hook=[py, str(recorder(tmp_path, "post"))],
        newmail_hook=[py, str(recorder(tmp_path, "new"))],
    )
    assert sync(config).returncode == 0
    mine = loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(1, "INBOX")].path
    (s.root / "Archive" / "cur").mkdir(parents=True, exist_ok=True)
    mine.rename(s.root / "Archive" / "cur" / mine.name)
    old = loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(2, "INBOX")].path
    with srv.session(s.imap) as c:
        srv._ok(c.select("INBOX"))
        uids = b",".join(srv._uids_of(c, srv.message_id(2, "INBOX"))).decode()
        srv._ok(c.uid("MOVE", uids, "Archive"))
    (tmp_path / "post.stdin").write_text("")

    result = sync(config)

    assert result.returncode == 0, result.stderr
    post = json.loads((tmp_path / "post.env").read_text().splitlines()[-1])
    assert (post["MAILTIDE_MOVED_REMOTE"], post["MAILTIDE_MOVED_LOCAL"]) == ("1", "1"), post
    assert {k: v for k, v in post.items() if k.startswith(("MAILTIDE_NEW", "MAILTIDE_DEL"))} == {
        "MAILTIDE_NEW_LOCAL": "0",
        "MAILTIDE_NEW_REMOTE": "0",
        "MAILTIDE_DELETED_LOCAL": "0",
        "MAILTIDE_DELETED_REMOTE": "0",
    }, post
    (summary,) = [line for line in result.stderr.splitlines() if "event=account.done" in line]
    assert "moved_remote=1" in summary and "moved_local=1" in summary, summary
    new = loc.by_message_id(s.root, "fs", "Archive")[srv.message_id(2, "INBOX")].path
    lines = (tmp_path / "post.stdin").read_text().splitlines()
    assert lines == [f"removed\t{old}", f"added\t{new}"], lines
    assert len((tmp_path / "new.env").read_text().splitlines()) == 1  # the first sync's only
