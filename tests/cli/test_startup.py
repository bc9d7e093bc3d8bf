"""What a one-shot ``mailtide sync`` loads: nothing only the daemon, OAuth2, the keyring or the
lint tools need.  Each such package costs every run's start-up, and a no-change re-sync is
mostly start-up (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dovecot import ImapAccount
from engine_helpers import one_message_account

# Loaded only by what needs them: the Maildir watcher (watchdog), the daemon's server push,
# OAuth2's HTTP client (urllib.request, http.client), the keyring, a newmail hook's header
# parser (email.parser); rich and pygments, which structlog loads when they are installed (as
# import-linter's dependencies are in a development venv) for tracebacks mailtide never shows;
# structlog's deprecated threadlocal context and the uuid and platform it loads; shutil (and
# the zlib, bz2 and lzma it loads), which argparse's help width and tempfile (a big literal,
# the daemons' sockets without XDG_RUNTIME_DIR) would load; hashlib (digests: a message's
# identity, a certificate's pin, a listing's) and secrets (a new Maildir folder's id); the
# summary check-config prints.
NOT_AT_START = {
    "watchdog",
    "mailtide.stores.maildir.watch",
    "mailtide.stores.imap.push",
    "mailtide.daemon.supervisor",
    "mailtide.daemon.account_task",
    "urllib.request",
    "http.client",
    "mailtide.auth.oauth2_source",
    "keyring",
    "email.parser",
    "rich",
    "pygments",
    "importlinter",
    "aiofiles",
    "uuid",
    "platform",
    "shutil",
    "tempfile",
    "hashlib",
    "secrets",
    "mailtide.config.summary",
}

# The CLI's entry, run as the console script runs it; then what it loaded.
_RUN = """
import json, sys
from mailtide.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded_by_sync(config: Path) -> tuple[int, set[str], str]:
    # Without XDG_RUNTIME_DIR, as the bench runs it: the daemons' sockets are looked for in the
    # temporary directory, a private one here.
    tmp = config.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"TMPDIR": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, "sync", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.stdout, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    return result["code"], set(result["modules"]), done.stderr


def test_a_password_sync_loads_nothing_only_the_daemon_or_oauth2_needs(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    setup, config = one_message_account(imap_account, tmp_path, "startup")
    code, _, stderr = _loaded_by_sync(config)  # the first sync copies the message
    assert code == 0, stderr[-2000:]
    # The second may find the first's writes too recent to prove by their times, and digest
    # the listings; the third is the no-change sync of the bench, the one measured.
    code, _, stderr = _loaded_by_sync(config)
    assert code == 0, stderr[-2000:]
    # Without the proof a quiet run leaves, the engine makes the no-change sync.
    (setup.config.general.state_dir / "test.sqlite.quiet").unlink(missing_ok=True)
    code, loaded, stderr = _loaded_by_sync(config)
    assert code == 0, stderr[-2000:]
    assert {"mailtide.wiring", "mailtide.stores.imap.client"} <= loaded  # it did sync
    packages = {name.split(".")[0] for name in loaded}
    assert sorted((loaded | packages) & NOT_AT_START) == []
    assert len(list((setup.root / "INBOX").glob("*/*"))) == 1


def test_a_sync_that_ends_at_the_quiet_check_loads_no_event_loop_and_no_engine(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """The quiet check (mailtide/quiet/) is as fast as it is for what it leaves unloaded."""
    setup, config = one_message_account(imap_account, tmp_path, "quiet-startup")
    proof = setup.config.general.state_dir / "test.sqlite.quiet"
    for _ in range(5):  # the first copies; one that is quiet leaves the proof
        code, loaded, stderr = _loaded_by_sync(config)
        assert code == 0, stderr[-2000:]
        if proof.exists() and "mailtide.wiring" in loaded:
            break
    code, loaded, stderr = _loaded_by_sync(config)
    assert code == 0, stderr[-2000:]
    assert "mailtide.quiet.check" in loaded
    engine = {"asyncio", "ssl", "sqlite3", "aioimaplib", "mailtide.wiring", "mailtide.engine"}
    packages = {name.rsplit(".", 1)[0] for name in loaded}
    assert sorted((loaded | packages) & (engine | NOT_AT_START)) == []
    # argparse's phrases are taken as written, not looked up by gettext (cli_help.py)
    assert "locale" not in loaded


def test_rich_stays_importable_after_mailtide_loads() -> None:
    # Hidden from structlog only while it loads: a program that uses mailtide and rich keeps both.
    done = subprocess.run(
        [sys.executable, "-c", "import mailtide.cli, rich; print(rich.__name__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "rich"


# A command's help, as wide as the terminal says, and what building the parser loaded.
_HELP = """
import contextlib, io, json, sys
from mailtide.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main(["sync", "--help"])
print(json.dumps({"help": out.getvalue(), "shutil": "shutil" in sys.modules}))
"""


def test_help_is_as_wide_as_columns_says_without_loading_shutil() -> None:
    widths = {}
    for columns in ("50", "120"):
        done = subprocess.run(
            [sys.executable, "-c", _HELP],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": columns},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["shutil"] is False
        assert "--allow-mass-delete" in result["help"]
        widths[columns] = max(len(line) for line in result["help"].splitlines())
    assert 40 < widths["50"] <= 50 < widths["120"] <= 120, widths
