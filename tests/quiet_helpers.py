"""An account synced until a run was quiet (the quiet check's tests: quiet/)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_sync, write_config
from mailtide.stores.maildir.stamp import folder_stamp

FOLDERS = ("INBOX", "Archive", "Entwürfe/2024")  # a name in UTF-7 on the server, nested


@dataclass
class Quiet:
    """An account whose last run was quiet: the next sync may end at the quiet check."""

    setup: Setup
    config: Path

    @property
    def proof(self) -> Path:
        return self.setup.config.general.state_dir / "test.sqlite.quiet"

    def folder(self, name: str) -> Path:
        return loc.folder_dir(self.setup.root, self.setup.layout, name)


def ended_quietly(output: str) -> bool:
    return "event=account.quiet" in output


def sync(q: Quiet, *args: str) -> str:
    code, output = run_sync(q.config, None, True, *args)
    assert code == 0, output
    return output


def provable(q: Quiet) -> None:
    """Wait until every folder's times can prove it unchanged (the suite takes every file
    system to keep whole seconds: at most a second or two)."""
    deadline = time.monotonic() + 5
    while any(folder_stamp(str(q.folder(f))) is None for f in FOLDERS):
        assert time.monotonic() < deadline, "a folder kept changing"
        time.sleep(0.05)


def quieted(q: Quiet, proof: bool = True) -> None:
    """Synced until a run was quiet: the first run carries everything, the next records the
    folders' stamps (they prove nothing within the second of its writes), the third finds
    nothing to do and leaves the proof (``proof``: it is expected to)."""
    for _ in range(3):
        sync(q)
        provable(q)
    assert q.proof.exists() == proof


def quiet_account(
    imap_account: ImapAccount,
    tmp_path: Path,
    layout: str = "fs",
    proof: bool = True,
    **remote: object,
) -> Quiet:
    """An account with a message in each of ``FOLDERS``, synced until a run was quiet;
    ``remote``: changes to its IMAP repository."""
    setup = make_setup(imap_account, tmp_path, layout, **remote)
    for i, folder in enumerate(FOLDERS):
        srv.append(imap_account, folder, srv.make_message(i, folder), ["\\Seen"])
    q = Quiet(setup, write_config(setup))
    quieted(q, proof)
    return q
