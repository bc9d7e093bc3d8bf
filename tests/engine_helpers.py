"""Engine tests: an account pairing a fresh test-Dovecot user with a fresh local Maildir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from mailtide.config.model import Account, Config, General, ImapRepository, MaildirRepository
from mailtide.engine.account import AccountReport
from mailtide.engine.steps import CRASH_ENV
from mailtide.wiring import sync_account


@dataclass
class Setup:
    """The account under test: the server side (``imap``) and the local root."""

    imap: ImapAccount
    root: Path
    layout: str
    config: Config

    @property
    def account(self) -> Account:
        return self.config.accounts[0]

    def with_account(self, **changes: object) -> Setup:
        acc = replace(self.account, **changes)  # type: ignore[arg-type]
        return replace(self, config=replace(self.config, accounts=(acc,)))

    def sync(self, **kwargs: object) -> AccountReport:
        report = asyncio.run(sync_account(self.config, self.account, **kwargs))  # type: ignore[arg-type]
        return report


def make_setup(imap: ImapAccount, tmp: Path, layout: str = "fs", **imap_changes: object) -> Setup:
    root = tmp / "Mail"
    root.mkdir()
    remote = ImapRepository(
        name="remote",
        host=imap.host,
        port=imap.port,
        user=imap.user,
        password=imap.password,
        tls="none",
    )
    remote = replace(remote, **imap_changes)  # type: ignore[arg-type]
    local = MaildirRepository(name="local", path=root, layout=layout)  # type: ignore[arg-type]
    account = Account(name="test", local=local, remote=remote)
    config = Config(
        path=tmp / "config.toml",
        general=General(accounts=("test",), state_dir=tmp / "state"),
        accounts=(account,),
        repositories=(local, remote),
    )
    return Setup(imap, root, layout, config)


def assert_in_sync(setup: Setup, ignore: frozenset[str] = frozenset()) -> None:
    """Both sides hold the same folders, the same messages (by Message-ID, once each), the same
    system flags, and byte-identical bodies modulo line ends."""
    server_folders = set(srv.list_folders(setup.imap, selectable=True))
    local_folders = set(loc.folders(setup.root, setup.layout)) - ignore
    assert local_folders <= server_folders, local_folders - server_folders
    for folder in sorted(server_folders):
        remote = srv.fetch_all(setup.imap, folder)
        local = loc.messages(setup.root, setup.layout, folder) if folder in local_folders else []
        r_ids = sorted(m.message_id for m in remote)
        l_ids = sorted(m.message_id for m in local)
        assert r_ids == l_ids, folder
        assert len(set(r_ids)) == len(r_ids), f"duplicate on the server in {folder}"
        by_id = {m.message_id: m for m in local}
        for m in remote:
            here = by_id[m.message_id]
            assert m.flags & set(loc.LETTERS.values()) == here.system_flags, (folder, m.message_id)
            assert m.body.replace(b"\r\n", b"\n") == here.body, (folder, m.message_id)


def one_message_account(imap: ImapAccount, tmp: Path, tag: str) -> tuple[Setup, Path]:
    """An account whose server holds one message in INBOX, and its config file."""
    setup = make_setup(imap, tmp)
    srv.append(imap, "INBOX", srv.make_message(1, tag))
    return setup, write_config(setup)


def write_config(s: Setup) -> Path:
    """The TOML config of ``s`` next to its local root, for ``python -m mailtide sync -c``: its
    remote's host, port, tls, ca_file, client certificate and password (any characters) as
    ``s`` has them."""
    remote = s.account.remote
    assert isinstance(remote, ImapRepository)
    files = {k: getattr(remote, k) for k in ("ca_file", "client_cert", "client_key")}
    tls_files = "".join(f"{k} = {_toml(str(v))}\n" for k, v in files.items() if v)
    path = s.root.parent / "config.toml"
    path.write_text(
        f"""
[general]
state_dir = {_toml(str(s.config.general.state_dir))}

[account.test]
local = "local"
remote = "remote"

[repository.local]
type = "maildir"
path = {_toml(str(s.root))}
layout = "{s.layout}"

[repository.remote]
type = "imap"
host = "{remote.host}"
port = {remote.port}
tls = "{remote.tls}"
user = {_toml(remote.user)}
password = {_toml(remote.password or "")}
{tls_files}""",
        encoding="utf-8",
    )
    path.chmod(0o600)  # it holds a password: readable by others, mailtide would warn
    return path


def _toml(text: str) -> str:
    """``text`` as a TOML basic string (JSON's escapes are TOML's, for what json.dumps writes)."""
    return json.dumps(text, ensure_ascii=False)


# ---- `mailtide sync` as a process, without paying its start-up each time ----------------------

# A fork server that has imported mailtide once: each run is a fork of it, a separate process
# that SIGKILL ends like any other, minus the ~0.3 s of interpreter start and imports that
# dominate a short sync (the crash tests run hundreds).
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(
    ["mailtide.cli", "mailtide.wiring", "mailtide.stores.imap", "mailtide.stores.maildir"]
)


def _cli_in_child(argv: list[str], env: dict[str, str], output: str) -> None:
    # mailtide runs in a grandchild whose exit status this child writes down itself: the fork
    # server's own report of a child's status was seen lost (exit code 255) under load.
    pid = os.fork()
    if pid:
        Path(output + ".pid").write_text(str(pid))
        _, status = os.waitpid(pid, 0)
        Path(output + ".status").write_text(str(status))
        os._exit(0)
    try:
        os.environ.clear()
        os.environ.update(env)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        from mailtide.entry import command  # as the console script runs it

        code = command(argv)
    except BaseException:
        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_forked(
    config: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    """``mailtide sync -c config *args`` in a forked process; (exit code, output).  The exit code
    is negative for a signal (-9: SIGKILL).  ``env`` is the process's whole environment
    (default: this one's).  ``timeout`` is a hang guard: the run is killed and it fails."""
    with tempfile.TemporaryDirectory(prefix="mailtide-run-") as tmp:
        output = os.path.join(tmp, "output")
        proc = _FORKS.Process(
            target=_cli_in_child,
            args=(["sync", "-c", str(config), *args], dict(env or os.environ), output),
        )
        proc.start()
        proc.join(timeout)
        if proc.exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(Path(output + ".pid").read_text()), signal.SIGKILL)
            proc.kill()
            proc.join()
            raise AssertionError(f"mailtide sync still running after {timeout} s")
        text = Path(output).read_bytes().decode(errors="replace") if Path(output).exists() else ""
        status = Path(output + ".status")
        if not status.exists():
            raise AssertionError(f"the forked run left no exit status ({proc.exitcode}):\n{text}")
        return os.waitstatus_to_exitcode(int(status.read_text())), text


def clone_into(dovecot: Dovecot, template: Setup, fresh: Setup) -> None:
    """Make the new, untouched account ``fresh`` hold exactly what ``template`` holds: the
    server user's storage is copied under the new user's name (Dovecot reads it as it finds it
    at the first login), the local tree and the state directory alongside.  Far cheaper than
    preparing the same mail again, for tests that need many identical starting points."""
    home = dovecot.maildir(template.imap.user).parent
    if home.exists():
        copy = dovecot.maildir(fresh.imap.user).parent
        shutil.copytree(home, copy, symlinks=True)
        owner = home.stat()
        for path in [copy, *copy.rglob("*")]:
            os.lchown(path, owner.st_uid, owner.st_gid)
    shutil.copytree(template.root, fresh.root, symlinks=True, dirs_exist_ok=True)
    state = template.config.general.state_dir
    if state.exists():
        shutil.copytree(state, fresh.config.general.state_dir)


def run_sync(
    config: Path, crash_after: int | None = None, verbose: bool = False, *args: str
) -> tuple[int, str]:
    """``mailtide sync`` of ``config`` (with the options ``args``) in a forked process, killed
    after its durable step ``crash_after`` when given, with ``-v`` (the step log) when
    ``verbose``: (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_after is not None:
        env[CRASH_ENV] = str(crash_after)
    return run_forked(config, *(["-v"] if verbose else []), *args, env=env)


def steps_of(log: str) -> list[str]:
    """What each durable step was, in order, from a ``-v`` log."""
    steps: dict[int, str] = {}
    for line in log.splitlines():
        if "step.done" not in line:
            continue
        n = re.search(r"\bstep=(\d+)", line)
        what = re.search(r"\bwhat=(?:'([^']*)'|\"([^\"]*)\"|(\S+))", line)
        assert n and what, line
        steps[int(n.group(1))] = next(g for g in what.groups() if g is not None)
    assert sorted(steps) == list(range(1, len(steps) + 1)), steps
    return [steps[i] for i in sorted(steps)]


def fill_inbox(dovecot: Dovecot, account: ImapAccount, messages: list[bytes]) -> None:
    """Put messages straight into the server's own Maildir INBOX, as clone_into copies a
    user's storage (Dovecot indexes them at the next SELECT): a thousand in a fraction of a
    second, where a thousand APPENDs take half a minute on a loaded machine."""
    with srv.session(account) as c:  # the first login makes the user's Maildir
        srv._ok(c.select("INBOX"))
    home = dovecot.maildir(account.user)
    owner = home.stat()
    for i, data in enumerate(messages):
        path = home / "cur" / f"{1700000000 + i}.M{i}P1.filled:2,S"
        path.write_bytes(data)
        os.lchown(path, owner.st_uid, owner.st_gid)
