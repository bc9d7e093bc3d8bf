"""``mailtide folders``: both sides of an account through its folder rules, against the test
Dovecot; read-only; the rules' problems on stderr with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, write_config

from .test_cli import run


def message(n: int) -> bytes:
    return f"From: a@example.org\nMessage-ID: <{n}@example.org>\nSubject: {n}\n\nbody\n".encode()


def account_with(setup: Setup, folder_keys: str) -> Path:
    """The setup's config with ``folder_keys`` added to [account.test]."""
    config = write_config(setup)
    text = config.read_text().replace('remote = "remote"\n', f'remote = "remote"\n{folder_keys}')
    config.write_text(text)
    return config


def fill(imap: ImapAccount, setup: Setup) -> None:
    """Server: INBOX 2, "Gesendete Objekte" (\\Sent) 1, Trash (\\Trash) 0, Lists/Python-Dev 1.
    Local: INBOX 1, Notes 2 (a folder made locally)."""
    srv.append_many(imap, "INBOX", [message(1), message(2)])
    srv.append(imap, "Gesendete Objekte", message(3))
    srv.create_folder(imap, "Trash")
    srv.append(imap, "Lists/Python-Dev", message(4))
    loc.deliver(setup.root, setup.layout, "INBOX", message(1))
    for n in (5, 6):
        loc.deliver(setup.root, setup.layout, "Notes", message(n))


RULES = (
    "folders.map_special = true\n"
    'folders.exclude = ["Trash"]\n'
    "folders.rename = [{ from = 'Lists/(.*)', to = 'lists/{1:lower}' }]\n"
)


def test_folders_shows_names_rules_and_counts(imap_account: ImapAccount, tmp_path: Path) -> None:
    setup = make_setup(imap_account, tmp_path)
    fill(imap_account, setup)
    before = sorted(p.relative_to(setup.root) for p in setup.root.rglob("*"))
    result = run("folders", "-c", str(account_with(setup, RULES)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "account test (server remote, local local)",
        "  server folder      special  local folder      server  local  rule",
        "  Gesendete Objekte  \\Sent    Sent                   1      -  map_special (\\Sent)",
        "  INBOX                       INBOX                  2      1  the inbox",
        "  Lists/Python-Dev            lists/python-dev       1      -  folders.rename[1]",
        "  Trash              \\Trash   -                      0      -  not synced: left out by"
        ' folders.exclude "Trash" of [account.test]',
        "  Notes                       Notes                  -      2  local only: made on the"
        ' server as "Notes"',
        "  4 of 5 folders synced; messages: -  the folder is not on that side (yet)",
    ]
    # read-only: nothing made on either side, no state
    assert sorted(p.relative_to(setup.root) for p in setup.root.rglob("*")) == before
    assert not (tmp_path / "state").exists()
    assert "Notes" not in srv.list_folders(imap_account)


def test_folders_json(imap_account: ImapAccount, tmp_path: Path) -> None:
    setup = make_setup(imap_account, tmp_path)
    fill(imap_account, setup)
    result = run("folders", "--json", "-c", str(account_with(setup, RULES)))
    assert result.returncode == 0, result.stderr
    (shown,) = json.loads(result.stdout)["accounts"]
    assert shown["account"] == "test" and shown["problems"] == []
    rows = {row["server"]: row for row in shown["folders"] if row["server"] != "Notes"}
    assert rows["Gesendete Objekte"] == {
        "server": "Gesendete Objekte",
        "special_use": "\\Sent",
        "local": "Sent",
        "synced": True,
        "rule": "map_special (\\Sent)",
        "server_messages": 1,
        "local_messages": None,
    }
    assert rows["Trash"]["synced"] is False


def test_rule_problems_name_the_folders_and_exit_2(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """Two \\Sent folders ("Sent" is one on the test Dovecot) would both be local "Sent"; a
    local folder whose server name is excluded would stay local only."""
    setup = make_setup(imap_account, tmp_path)
    fill(imap_account, setup)
    srv.append(imap_account, "Sent", message(7))
    loc.deliver(setup.root, setup.layout, "Trash", message(8))
    result = run("folders", "-c", str(account_with(setup, RULES)))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        'mailtide: account test: server folders "Gesendete Objekte" (map_special (\\Sent)) and'
        ' "Sent" (map_special (\\Sent)) would all be local folder "Sent": change folders.rename or'
        " exclude all but one of them",
        'mailtide: account test: local folder "Trash" would be server folder "Trash", which is'
        ' left out by folders.exclude "Trash" of [account.test]: add "Trash" to the local'
        " repository's folders.exclude to leave it out, or change the rules",
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_before_the_first_sync_the_local_side_is_empty(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    setup = make_setup(imap_account, tmp_path)
    setup.root.rmdir()
    srv.append(imap_account, "INBOX", message(1))
    result = run("folders", "-c", str(account_with(setup, "")))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == "  INBOX                   INBOX              1      -  the inbox"
    assert lines[-1].startswith("  note: local: ")
    assert not setup.root.exists()


def test_a_server_that_refuses_the_login_is_one_line_and_exit_1(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    setup = make_setup(imap_account, tmp_path)
    config = account_with(setup, "")
    config.write_text(config.read_text().replace('password = "secret"', 'password = "wrong-Pa55"'))
    result = run("folders", "-c", str(config))
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("mailtide: account test: ") and "authentication failed" in line
    assert "wrong-Pa55" not in result.stdout + result.stderr
    assert result.stdout == ""


def test_a_raw_modified_utf7_folder_is_shown_as_renamed_by_the_next_sync(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """OfflineIMAP and mbsync name the local copy of "Entwürfe" "Entw&APw-rfe": the next sync
    renames it, it is not made on the server; beside a local "Entwürfe" it is left alone."""
    setup = make_setup(imap_account, tmp_path)
    srv.append(imap_account, "Entwürfe", message(1))
    loc.deliver(setup.root, setup.layout, "Entw&APw-rfe", message(1))
    config = account_with(setup, "")
    result = run("folders", "-c", str(config))
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[2:-1]
    assert [" ".join(r.split()) for r in rows] == [
        "Entwürfe Entwürfe 1 - same name",
        "INBOX INBOX 0 - the inbox",
        'Entwürfe Entw&APw-rfe - 1 raw modified UTF-7: renamed to "Entwürfe" by the next sync',
    ]
    loc.deliver(setup.root, setup.layout, "Entwürfe", message(1))
    result = run("folders", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stdout.splitlines()[-2].split()) == (
        'Entwürfe Entw&APw-rfe - 1 not synced: raw modified UTF-7 of "Entwürfe", which exists too'
    )
    assert "Entw&APw-rfe" in loc.folders(setup.root, setup.layout)
