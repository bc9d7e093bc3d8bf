"""The mailtide command: exit codes, one-line errors, no tracebacks for user mistakes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mailtide
from mailtide import cli
from mailtide.stores.base import StoreError
from mailtide.ui.log import register_secret

GOOD = """\
[general]
state_dir = "state"

[account.mirror]
local = "copy"
remote = "origin"

[repository.origin]
type = "maildir"
path = "origin"

[repository.copy]
type = "maildir"
path = "copy"
layout = "maildir++"

[repository.server]
type = "imap"
host = "127.0.0.1"
tls = "none"
user = "me"
password_command = ["pass", "show", "mail"]
"""

MESSAGE = b"From: a@example.org\nMessage-ID: <1@example.org>\nSubject: hi\n\nbody\n"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailtide", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def write(tmp_path: Path, text: str) -> str:
    file = tmp_path / "config.toml"
    file.write_text(text)
    return str(file)


def test_check_config_good(tmp_path: Path) -> None:
    result = run("check-config", "-c", write(tmp_path, GOOD))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # with a "key = value" line for every key each account resolves to (test_summary.py)
    assert [line for line in lines if " = " not in line] == [
        f"{tmp_path}/config.toml: ok",
        f"state: {tmp_path}/state",
        "account mirror",
        f"  local:  copy (maildir, maildir++, {tmp_path}/copy)",
        f"  remote: origin (maildir, fs, {tmp_path}/origin)",
    ]
    assert '    layout = "maildir++"' in lines and "  retries = 3" in lines


def test_check_config_bad_lists_every_problem(tmp_path: Path) -> None:
    bad = GOOD.replace('layout = "maildir++"', 'layout = "mh"').replace(
        'tls = "none"', 'tls = "none"\nhost_name = "x"'
    )
    bad = bad.replace('host = "127.0.0.1"', 'host = "mail.example.org"')
    file = write(tmp_path, bad)
    result = run("check-config", "-c", file)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f'mailtide: {file}:15: repository.copy.layout: must be one of "fs", "maildir++", not "mh"',
        f'mailtide: {file}:20: repository.server.tls: "none" is refused for host'
        ' "mail.example.org": the password would cross the network in clear text (use'
        ' "implicit" or "starttls"; "none" is only allowed for 127.0.0.1 and ::1)',
        f'mailtide: {file}:21: repository.server.host_name: unknown key (did you mean "host"?)',
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), ("[general\n", "TOML syntax error")],
    ids=["missing file", "syntax error"],
)
def test_check_config_unreadable(tmp_path: Path, content: str | None, reason: str) -> None:
    file = tmp_path / "config.toml"
    if content is not None:
        file.write_text(content)
    result = run("check-config", "-c", str(file))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mailtide: {file}") and reason in line


def test_version() -> None:
    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"mailtide {mailtide.__version__}\n")


def test_sync_config_error_is_exit_2(tmp_path: Path) -> None:
    result = run("sync", "-c", write(tmp_path, GOOD.replace("local =", "lokal =")))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert 'account.mirror.lokal: unknown key (did you mean "local"?)' in result.stderr


@pytest.mark.parametrize(
    ("accounts", "unknown", "hint"),
    [
        ("mirror,mirorr", "mirorr", ' (did you mean "mirror"?)'),
        ("Mirror", "Mirror", ' (did you mean "mirror"?)'),
        ("NoSuchAccount", "NoSuchAccount", ""),
    ],
)
def test_sync_unknown_account_is_exit_2(
    tmp_path: Path, accounts: str, unknown: str, hint: str
) -> None:
    make_origin(tmp_path)
    file = write(tmp_path, GOOD)
    before = sorted(tmp_path.rglob("*"))
    result = run("sync", "-c", file, "-a", accounts)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f'mailtide: no account named "{unknown}" in {file}{hint}; accounts: mirror'
    ]
    assert sorted(tmp_path.rglob("*")) == before  # nothing synced, no state written


@pytest.mark.parametrize("command", ["check-config", "sync"])
def test_two_accounts_on_one_maildir_is_exit_2(tmp_path: Path, command: str) -> None:
    make_origin(tmp_path)
    (tmp_path / "elsewhere").symlink_to(tmp_path / "origin")
    text = GOOD + '\n[account.other]\nlocal = "alias"\nremote = "server"\n'
    text += '\n[repository.alias]\ntype = "maildir"\npath = "elsewhere/"\n'
    file = write(tmp_path, text)
    before = sorted(tmp_path.rglob("*"))
    result = run(command, "-c", file)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"mailtide: {file}:25: account.other.local: Maildir {tmp_path}/origin (repository"
        f' "alias") is also the Maildir of account "mirror" (repository "origin"): two accounts'
        " on one Maildir tree mix their mail (each would upload the other's to its server);"
        " give each account its own directory, side by side"
    ]
    assert sorted(tmp_path.rglob("*")) == before  # no state, no Maildir written


def readable_password_config(tmp_path: Path, mode: int) -> str:
    file = write(
        tmp_path, GOOD.replace('password_command = ["pass", "show", "mail"]', 'password = "Pw-9x"')
    )
    Path(file).chmod(mode)
    return file


READABLE = "the file holds a password and can be read by other users"


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_check_config_prints_a_readable_password_warning(tmp_path: Path, mode: int) -> None:
    file = readable_password_config(tmp_path, mode)
    result = run("check-config", "-c", file)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{file}: ok"
    warning = (
        f"warning: {file}:22: repository.server.password: {READABLE} (mode 0644): run chmod 600"
        f" {file}, or use password_command instead"
    )
    assert lines[1:2] == ([warning] if mode == 0o644 else [f"state: {tmp_path}/state"])
    assert READABLE not in result.stderr


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_sync_logs_a_readable_password_warning_once(tmp_path: Path, mode: int) -> None:
    make_origin(tmp_path)
    (tmp_path / "copy").mkdir()
    result = run("sync", "-c", readable_password_config(tmp_path, mode), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(READABLE) == (1 if mode == 0o644 else 0)
    assert "Pw-9x" not in result.stderr + result.stdout


def make_origin(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "origin/INBOX" / sub).mkdir(parents=True)
    (tmp_path / "origin/INBOX/new/1700000000.1.host").write_bytes(MESSAGE)


def delivered(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp_path / "copy").glob("*/*")) if p.is_file()]


def test_sync_dry_run_then_real(tmp_path: Path) -> None:
    make_origin(tmp_path)
    (tmp_path / "copy").mkdir()
    config = write(tmp_path, GOOD)
    result = run("sync", "-c", config, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert delivered(tmp_path) == []
    result = run("sync", "-c", config, "-a", "mirror", "-f", "INBOX")
    assert result.returncode == 0, result.stderr
    assert delivered(tmp_path) == [MESSAGE]


def test_sync_store_failure_is_exit_1_without_traceback(tmp_path: Path) -> None:
    make_origin(tmp_path)
    (tmp_path / "copy").mkdir()
    config = write(tmp_path, GOOD)
    assert run("sync", "-c", config).returncode == 0
    shutil.rmtree(tmp_path / "origin")  # after a sync, a missing root is an error
    result = run("sync", "-c", config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{tmp_path}/origin" in result.stderr


def test_split_list() -> None:
    assert cli._split_list(["a, b", "c", " ,"]) == ["a", "b", "c"]
    assert cli._split_list(["Sent,Archive/2024", r"Rechnungen\, alt"]) == [
        "Sent",
        "Archive/2024",
        "Rechnungen, alt",
    ]
    assert cli._split_list(None) is None


# In-process: what reaches the user when the engine fails in ways a config cannot cause.


def failing_engine(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    import mailtide.wiring as wiring

    async def sync_accounts(*_args: object, **_kwargs: object) -> int:
        raise error

    monkeypatch.setattr(wiring, "sync_accounts", sync_accounts)


def test_store_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_engine(monkeypatch, StoreError("imap.example.org: connection refused"))
    assert cli.main(["sync", "-c", write(tmp_path, GOOD)]) == 1
    assert capsys.readouterr().err == "mailtide: imap.example.org: connection refused\n"


@pytest.mark.parametrize("verbose", [False, True])
def test_internal_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verbose: bool,
) -> None:
    register_secret("pw-Xy7-Qa9")
    failing_engine(monkeypatch, RuntimeError("state went odd near pw-Xy7-Qa9\nsecond line"))
    args = ["-v"] if verbose else []
    assert cli.main([*args, "sync", "-c", write(tmp_path, GOOD)]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "pw-Xy7-Qa9" not in err
    assert "mailtide: internal error: RuntimeError: state went odd near ***\n" in err
    assert ("Traceback" in err) == verbose
    assert ("run with -v" in err) != verbose


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--help"],
        ["-c", "x.toml", "sync", "--help"],
        ["--log-format", "json", "-q", "folders", "--help"],
        ["password", "set", "--help"],
        ["oauth2", "authorize", "--help"],
        ["import-config", "--help"],
    ],
)
def test_each_command_parses_its_own_options_whatever_comes_before_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The parser is built with the options of the command given alone (start-up, issue 12):
    the command is found after the options before it, and its help shows all of its own."""
    with pytest.raises(SystemExit) as ended:
        cli.main(argv)
    assert ended.value.code == 0
    out = capsys.readouterr().out
    command = [w for w in argv if not w.startswith("-") and w not in ("x.toml", "json")]
    assert out.startswith(f"usage: mailtide {' '.join(command)}")
    if command == ["sync"]:
        for option in ("--account", "--folder", "--dry-run", "--full", "--now"):
            assert option in out


def test_the_top_help_and_a_mistyped_command_still_name_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["check-config", "sync", "folders", "status", "daemon", "password", "oauth2"]
    with pytest.raises(SystemExit) as ended:
        cli.main(["--help"])
    assert ended.value.code == 0
    top = capsys.readouterr().out
    assert all(f"    {name}" in top for name in [*names, "import-config"])
    with pytest.raises(SystemExit) as ended:
        cli.main(["-c", "x.toml", "snyc"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'snyc'" in err and all(f"'{name}'" in err for name in names)
