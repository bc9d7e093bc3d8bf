"""The process's OAuth2 token sessions: one per repository and the settings its refresh
uses, and those of repositories a reloaded configuration no longer has are forgotten."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailtide.auth.oauth2_source import RefreshedToken, TokenSession, keep_sessions, session_for
from mailtide.config import ImapRepository
from mailtide.config.oauth2 import OAuth2
from mailtide.wiring import daemon_loader, imap_settings

FLOW = OAuth2(
    client_id="id-1",
    client_secret="cs-1",
    token_url="http://127.0.0.1:9/token",
    refresh_token_file=Path("rt"),
)


def test_keys_a_refresh_does_not_read_keep_the_session() -> None:
    session = session_for(FLOW, "me", "h")
    for same in [
        replace(FLOW, mechanism="XOAUTH2"),
        replace(FLOW, scopes=("imap",), auth_url="http://127.0.0.1:9/auth"),
    ]:
        assert session_for(same, "me", "h") is session


def test_keys_a_refresh_reads_make_a_new_session() -> None:
    session = session_for(FLOW, "me", "h")
    for changed in [
        replace(FLOW, token_url="http://127.0.0.1:10/token"),
        replace(FLOW, client_id="id-2"),
        replace(FLOW, client_secret="cs-2"),
        replace(FLOW, refresh_token_file=Path("rt2")),
    ]:
        assert session_for(changed, "me", "h") is not session
    assert session_for(FLOW, "you", "h") is not session
    assert session_for(FLOW, "me", "h2") is not session


def test_sessions_not_kept_are_forgotten() -> None:
    kept, gone = session_for(FLOW, "me", "h"), session_for(FLOW, "gone", "h")
    keep_sessions([(FLOW, "me", "h")])
    assert session_for(FLOW, "me", "h") is kept
    assert session_for(FLOW, "gone", "h") is not gone


CONFIG = """\
[general]
state_dir = "state"

[account.work]
local = "work-local"
remote = "work-remote"

[repository.work-local]
type = "maildir"
path = "Mail"

[repository.work-remote]
type = "imap"
host = "127.0.0.1"
user = "me"
oauth2_client_id = "id-1"
oauth2_token_url = "http://127.0.0.1:9/token"
oauth2_refresh_token_file = "rt"
"""


def test_a_reload_with_changed_keys_forgets_the_old_session(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    load = daemon_loader(str(config), None)

    def reload() -> TokenSession:
        """The session a store of the account would log in with after a SIGHUP."""
        (wired,), _ = load()
        assert isinstance(wired.account.remote, ImapRepository)
        source = imap_settings(wired.account.remote).credentials
        assert isinstance(source, RefreshedToken)
        return source.session

    first = reload()
    assert reload() is first  # an unchanged reload keeps the access token
    config.write_text(CONFIG.replace('"id-1"', '"id-2"'))
    assert reload() is not first
    config.write_text(CONFIG)
    assert reload() is not first  # forgotten at the reload before, not kept for ever
