"""A run cancelled while its state database opens (a daemon stopping or restarting an account)
must not leave the account locked: the next run in the same process opens it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mailtide.config.model import Account, Config, General, ImapRepository, MaildirRepository
from mailtide.state.db import StateDB
from mailtide.wiring import open_state


def config_in(tmp_path: Path) -> tuple[Config, Account]:
    local = MaildirRepository(name="local", path=tmp_path / "Mail")
    remote = ImapRepository(name="remote", host="127.0.0.1", user="u", password="p", tls="none")
    account = Account(name="acc", local=local, remote=remote)
    general = General(accounts=("acc",), state_dir=tmp_path / "state")
    return Config(tmp_path / "c.toml", general, (account,), (local, remote)), account


async def test_cancelled_while_the_state_opens_leaves_no_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, account = config_in(tmp_path)
    opened = StateDB.for_account.__func__  # type: ignore[attr-defined]

    def slowly(cls: type[StateDB], *args: object) -> StateDB:
        time.sleep(0.3)  # the open is still in its thread when the cancel comes
        return opened(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(StateDB, "for_account", classmethod(slowly))
    task = asyncio.ensure_future(open_state(config, account))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()
    await asyncio.sleep(0.5)  # the cancelled open's thread has finished by now, fix or not
    state = await open_state(config, account)  # StateError "another mailtide" without the fix
    await state.close()
