"""The quiet check's server session begun before the command's modules load
(mailtide/quiet/early.py): begun only where the check will read that side, taken only for the
same repository and proof, never in the way of the command, and before structlog loads.

Through the real Dovecot; the check's own tests (test_quiet_check.py) run every case through
the command's entry, so through this session too."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from engine_helpers import run_sync
from fault_proxy import FaultProxy
from mailtide.config import ImapRepository, load_config
from mailtide.core.model import Side
from mailtide.quiet import early
from mailtide.state import quiet as proof
from mailtide.stores.imap.probe import Unavailable
from password_sources import SOURCES, use_source
from quiet_helpers import Quiet, ended_quietly, quiet_account, sync


@pytest.fixture(autouse=True)
def fresh_early(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no session begun and no configuration read, and ends with every
    session it began ended."""
    monkeypatch.setattr(early, "_sessions", {})
    monkeypatch.setattr(early, "_read", None)
    yield
    end()


def end() -> None:
    """Hand every session begun over and wait for each to end, as the sync's stores do."""
    for begun in early.hand_over().values():
        begun.ended()


@pytest.fixture
def quiet(imap_account: ImapAccount, tmp_path: Path) -> Quiet:
    return quiet_account(imap_account, tmp_path)


def remote(q: Quiet) -> ImapRepository:
    repo = load_config(str(q.config)).account("test").remote
    assert isinstance(repo, ImapRepository)
    return repo


def recorded(q: Quiet) -> proof.Proof:
    found = proof.read(q.setup.config.general.state_dir / "test.sqlite")
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["sync"], (None, None)),
        (["sync", "-c", "c.toml"], ("c.toml", None)),
        (["-c", "c.toml", "-q", "sync"], ("c.toml", None)),
        (["--config=c.toml", "sync", "-vv", "--now"], ("c.toml", None)),
        (["sync", "-a", "work, home", "--account=gmail"], (None, ["work", "home", "gmail"])),
        (["--log-format", "json", "sync", "--verbose"], (None, None)),
        (["sync", "-c", "a.toml", "-c", "b.toml"], ("b.toml", None)),  # the last, as argparse
        # The check does not run, or the scan cannot be sure what the command line says.
        (["sync", "--full"], None),
        (["sync", "--dry-run"], None),
        (["sync", "-f", "INBOX"], None),
        (["sync", "--allow-mass-delete"], None),
        (["sync", "--restore-deleted"], None),
        (["sync", "-a", r"a\,b"], None),
        (["sync", "-c"], None),
        (["sync", "-vq"], None),
        (["sync", "--help"], None),
        (["status"], None),
        (["daemon"], None),
        (["sync", "sync"], None),
        ([], None),
    ],
)
def test_only_a_sync_the_check_applies_to_begins_a_session(
    argv: list[str], wanted: tuple[str | None, list[str] | None] | None
) -> None:
    assert early.plain_sync(argv) == wanted


def test_the_session_begins_before_structlog_loads_and_the_check_takes_it(quiet: Quiet) -> None:
    """The point of it: the server answers while structlog and the command line load."""
    program = """
import json, sys
from mailtide.quiet import early
early.start(sys.argv[1:])
begun = sorted(f"{a}:{s}" for a, s in early._sessions)
structlog = type(sys.modules.get("structlog")).__name__
from mailtide.cli import main
print(json.dumps({"begun": begun, "structlog": structlog, "code": main(sys.argv[1:])}))
"""
    done = subprocess.run(
        [sys.executable, "-c", program, "sync", "-c", str(quiet.config), "-v"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"begun": ["test:0"], "structlog": "_OnFirstUse", "code": 0}, done.stderr
    assert ended_quietly(done.stderr), done.stderr
    assert "event=quiet.session side=FAR begun=early" in done.stderr


def test_the_answers_are_taken_for_the_proof_and_repository_they_were_read_for(
    quiet: Quiet,
) -> None:
    repo, read = remote(quiet), recorded(quiet)
    early.start(["sync", "-c", str(quiet.config)])
    taken = early.take("test", Side.FAR, repo, read)
    assert taken is not None
    answers, credentials = taken
    assert answers == read.sides[Side.FAR]["answers"]  # the server as the quiet run left it
    assert credentials.user == repo.user
    assert early.take("test", Side.FAR, repo, read) is None, "taken once"


def test_a_session_begun_for_another_proof_or_repository_is_not_taken(quiet: Quiet) -> None:
    repo, read = remote(quiet), recorded(quiet)
    other = proof.Proof(read.code, read.config, read.state, read.mailboxes + 1, read.sides)
    early.start(["sync", "-c", str(quiet.config)])
    assert early.take("test", Side.FAR, repo, other) is None  # a sync ran in between
    early.start(["sync", "-c", str(quiet.config)])
    moved = dataclasses.replace(repo, port=repo.port + 1)
    assert early.take("test", Side.FAR, moved, read) is None
    early.start(["sync", "-c", str(quiet.config)])
    assert early.take("test", Side.NEAR, repo, read) is None  # the Maildir side has none


def test_nothing_begins_for_another_account(quiet: Quiet) -> None:
    early.start(["sync", "-c", str(quiet.config), "-a", "elsewhere"])
    assert not early._sessions
    assert early.config(str(quiet.config)) is not None  # read all the same, for the command


def test_without_a_proof_the_session_begins_for_the_sync_alone(quiet: Quiet) -> None:
    repo, read = remote(quiet), recorded(quiet)
    quiet.proof.unlink()
    early.start(["sync", "-c", str(quiet.config)])
    assert list(early._sessions) == [("test", Side.FAR)]
    assert early.take("test", Side.FAR, repo, read) is None  # not the check's
    handed = early.hand_over()
    assert not early._sessions
    [(key, (repo_read, state, ended))] = handed.items()
    listing = ended()
    assert key == ("test", Side.FAR) and repo_read == repo
    assert state is not None  # the state's signature before the session began
    assert listing is not None and listing.answers() == read.sides[Side.FAR]["answers"]


# A sync whose session begun early ended before the rest of the command went on; ``between``:
# what happened in between.
PROGRAM = """
import subprocess, sys
from mailtide.quiet import early
between, argv = sys.argv[1], sys.argv[2:]
early.start(argv)
for session in early._sessions.values():
    session.done.wait()
if between == "a sync":
    config = argv[argv.index("-c") + 1]
    subprocess.run([sys.executable, "-m", "mailtide", "sync", "-c", config], check=True)
elif between == "too long":
    early.FRESH = 0.0
from mailtide.cli import main
sys.exit(main(argv))
"""


@pytest.mark.parametrize("proved", [True, False], ids=["with a proof", "without"])
@pytest.mark.parametrize("between", ["nothing", "a sync", "too long"])
def test_the_sync_lists_from_the_session_begun_early_unless_it_may_be_stale(
    quiet: Quiet, proved: bool, between: str
) -> None:
    """The store's first listing is the session's answers, not a LIST of its own (the check,
    where there is a proof, found the server changed); not where a sync ran in between (it
    may have written the server since) or the answers were read too long ago."""
    if not proved:
        quiet.proof.unlink()
    imap = quiet.setup.imap
    srv.append(imap, "Archive", srv.make_message(7, "new"), [])
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, between, "sync", "-c", str(quiet.config), "-vv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed_early = "event=imap.listed_before" in done.stderr
    lists_sent = re.findall(r'event=imap.sent .*line="\w+ LIST ', done.stderr)
    assert listed_early == (between == "nothing"), done.stderr
    if between == "a sync":  # it carried the message and left a proof: the check may end it
        assert len(lists_sent) == (0 if "event=account.quiet" in done.stderr else 1)
    else:
        assert len(lists_sent) == (0 if listed_early else 1), done.stderr
    files = [
        *(quiet.folder("Archive") / "new").iterdir(),
        *(quiet.folder("Archive") / "cur").iterdir(),
    ]
    wanted = srv.message_id(7, "new").encode()
    assert sum(wanted in f.read_bytes() for f in files) == 1  # there once, whoever carried it


def test_a_password_from_a_program_begins_no_session(
    quiet: Quiet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command (or the keyring) is asked once, by the check itself: nothing connects early
    for it."""
    imap = quiet.setup.imap
    use_source(
        quiet.config, SOURCES["password_command"](tmp_path, imap, imap.password, monkeypatch)
    )
    early.start(["sync", "-c", str(quiet.config)])
    assert quiet.proof.exists() and early.config(str(quiet.config)) is not None
    assert not early._sessions


def test_the_heap_is_set_before_the_first_session_thread_starts(quiet: Quiet) -> None:
    threads_then: list[list[str]] = []
    early.start(
        ["sync", "-c", str(quiet.config)],
        before_threads=lambda: threads_then.append([t.name for t in threading.enumerate()]),
    )
    assert len(threads_then) == 1
    assert "mailtide-quiet" not in threads_then[0]
    assert early._sessions


def test_a_session_handed_over_has_ended_once_its_wait_returns(quiet: Quiet) -> None:
    """What a sync's store waits for before its first connection (``max_connections``)."""
    early.start(["sync", "-c", str(quiet.config)])
    end()
    assert not early._sessions
    assert "mailtide-quiet" not in [t.name for t in threading.enumerate()]


@pytest.mark.parametrize(
    "text",
    ["[general\n", "[account.x]\nlocal = 3\n", ""],
    ids=["not TOML", "wrong keys", "empty"],
)
def test_a_bad_configuration_begins_nothing_and_the_command_says_why(
    tmp_path: Path, text: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    early.start(["sync", "-c", str(config)])  # never raises
    assert not early._sessions and early.config(str(config)) is None
    done = subprocess.run(
        [sys.executable, "-m", "mailtide", "sync", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"mailtide: {config}"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_server_gone_since_the_quiet_run_is_reported_by_the_sync(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """The session cannot connect: the check finds nothing quiet, and the sync says why."""
    with FaultProxy(imap_account.port) as proxy:
        q = quiet_account(imap_account, tmp_path, port=proxy.port)
        output = sync(q)
        assert ended_quietly(output), "quiet through the proxy"
        proxy.down()
        repo, read = remote(q), recorded(q)
        early.start(["sync", "-c", str(q.config)])
        with pytest.raises(Unavailable, match="cannot connect"):
            early.take("test", Side.FAR, repo, read)
        code, output = run_sync(q.config, None, True)
    assert code != 0
    assert not ended_quietly(output)
    assert "quiet.unavailable" in output, output


def test_without_a_proof_a_session_begins_only_after_a_run_that_logged_in(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password the server refuses is tried by the session begun early and again by the
    sync only in the first run that meets the refusal; from the next on, once per run
    (state/quiet.py ``record_reached``)."""
    with FaultProxy(imap_account.port, record=True) as proxy:
        q = quiet_account(imap_account, tmp_path, port=proxy.port)
        imap = q.setup.imap
        use_source(q.config, SOURCES["password_file"](tmp_path, imap, imap.password, monkeypatch))
        secret = tmp_path / "secrets" / "password"

        def logins_of_a_run(ok: bool) -> int:
            before = proxy.stream("up").count(b" LOGIN ")
            code, output = run_sync(q.config, None, True)
            assert (code == 0) == ok, output
            return proxy.stream("up").count(b" LOGIN ") - before

        assert logins_of_a_run(True) >= 1  # the configuration changed: it logs in anew
        q.proof.unlink()
        early.start(["sync", "-c", str(q.config)])
        assert list(early._sessions) == [("test", Side.FAR)]  # the last run logged in
        end()
        secret.write_text("wrong\n")  # the configuration file stays as it is
        assert logins_of_a_run(False) == 2  # the session's, the sync's
        assert logins_of_a_run(False) == 1
        secret.write_text(imap.password + "\n")
        assert logins_of_a_run(True) == 1  # logged in: the next run may begin one again
        q.proof.unlink()
        early.start(["sync", "-c", str(q.config)])
        assert list(early._sessions) == [("test", Side.FAR)]
