"""The built-in OAuth2 flow against a provider served by the test and a Dovecot that
validates each token at the provider (tests/auth/conftest.py): the access token is
refreshed before it expires and after the server refused it, a refused refresh token is
reported with the provider's words and not sent again, a rotated one is written back."""

from __future__ import annotations

import asyncio
import base64
import stat
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup
from fault_proxy import FaultProxy
from log_helpers import capture, pristine_logging
from mailtide.config import ImapRepository
from mailtide.config.oauth2 import OAuth2
from mailtide.stores.imap.client import ImapClient
from mailtide.wiring import imap_settings, sync_account
from oauth2_provider import CLIENT_ID, CLIENT_SECRET, Provider
from stores.imap.imap_store_helpers import pretend

from .conftest import OAuth2Servers


def refresh_token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "refresh-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def flow(provider: Provider, file: Path) -> OAuth2:
    return OAuth2(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=provider.token_url,
        refresh_token_file=file,
    )


def setup(account: ImapAccount, tmp: Path, oauth2: OAuth2, port: int | None = None) -> Setup:
    return make_setup(account, tmp, port=port or account.port, password=None, oauth2=oauth2)


def sync(s: Setup) -> list[str]:
    report = asyncio.run(asyncio.wait_for(sync_account(s.config, s.account), 60))
    return report.failures()


@pytest.mark.parametrize("mechanism", ["OAUTHBEARER", "XOAUTH2"])
async def test_a_refreshed_token_logs_in_with_each_mechanism(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path, mechanism: str
) -> None:
    provider = oauth2.provider
    file = refresh_token_file(tmp_path, provider.refresh_token_for(oauth2_account.user))
    s = setup(oauth2_account, tmp_path, flow(provider, file))
    assert isinstance(s.account.remote, ImapRepository)
    client = ImapClient(imap_settings(s.account.remote))
    other = "XOAUTH2" if mechanism == "OAUTHBEARER" else "OAUTHBEARER"
    pretend(client, remove=[f"AUTH={other}"])
    with pristine_logging():
        log = capture(2)
        try:
            await client.connect()
            assert (await client.run("SELECT", "INBOX")).ok
        finally:
            await client.close()
    assert f"AUTHENTICATE {mechanism}" in log.getvalue()
    assert [r["grant_type"] for r in provider.token_requests] == ["refresh_token"]


def test_an_expired_token_is_refreshed_before_the_next_login(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    """Two syncs in one process (as a daemon runs them): the token outlives the first and
    has expired by the second, which refreshes it before logging in; no login is refused."""
    provider = oauth2.provider
    provider.lifetime = 3.0
    file = refresh_token_file(tmp_path, provider.refresh_token_for(oauth2_account.user))
    srv.append(oauth2_account, "INBOX", srv.make_message(1, "INBOX"))
    with FaultProxy(oauth2_account.port, record=True) as proxy:
        s = setup(oauth2_account, tmp_path, flow(provider, file), proxy.port)
        assert sync(s) == []
        assert len(provider.token_requests) == 1
        asyncio.run(asyncio.sleep(3.0))
        srv.append(oauth2_account, "INBOX", srv.make_message(2, "INBOX"))
        assert sync(s) == []
        down = proxy.stream("down")
    assert len(provider.token_requests) == 2
    local = loc.messages(s.root, s.layout, "INBOX")
    assert sorted(m.message_id for m in local) == [srv.message_id(i, "INBOX") for i in (1, 2)]
    assert b"AUTHENTICATIONFAILED" not in down  # refreshed before, not after a refusal


def test_a_token_the_server_refuses_is_refreshed_once(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    """The provider revokes the access token behind the client's back: the refused login is
    followed by one refresh and one more login, which succeeds."""
    provider = oauth2.provider
    file = refresh_token_file(tmp_path, provider.refresh_token_for(oauth2_account.user))
    s = setup(oauth2_account, tmp_path, flow(provider, file))
    assert sync(s) == []
    for token in list(provider.access_tokens):
        provider.revoke(token)
    srv.append(oauth2_account, "INBOX", srv.make_message(1, "INBOX"))
    assert sync(s) == []
    assert len(provider.token_requests) == 2
    local = loc.messages(s.root, s.layout, "INBOX")
    assert [m.message_id for m in local] == [srv.message_id(1, "INBOX")]


def test_a_revoked_refresh_token_is_reported_and_not_sent_again(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    provider = oauth2.provider
    revoked = provider.refresh_token_for(oauth2_account.user)
    provider.revoke(revoked)
    file = refresh_token_file(tmp_path, revoked)
    s = setup(oauth2_account, tmp_path, flow(provider, file)).with_account(
        retries=5, retry_delay=0.05
    )
    expected = [
        f"account test: the token endpoint {provider.token_url} refused the refresh token:"
        " invalid_grant: Token has been expired or revoked."
    ]
    assert sync(s) == expected
    assert sync(s) == expected  # a daemon's next sync: the same words, the endpoint not asked
    assert len(provider.token_requests) == 1
    # The user authorizes again: the new refresh token in the file is used at once.
    file.write_text(provider.refresh_token_for(oauth2_account.user) + "\n")
    assert sync(s) == []
    assert len(provider.token_requests) == 2
    assert revoked not in expected[0] and CLIENT_SECRET not in expected[0]


def test_a_rotated_refresh_token_is_written_back(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    provider = oauth2.provider
    provider.rotate, provider.lifetime = True, 1.0
    first = provider.refresh_token_for(oauth2_account.user)
    file = refresh_token_file(tmp_path, first)
    s = setup(oauth2_account, tmp_path, flow(provider, file))
    with pristine_logging():
        log = capture(2)
        assert sync(s) == []
        second = file.read_text().strip()
        assert second != first and second in provider.refresh_tokens
        asyncio.run(asyncio.sleep(1.0))  # the access token expires: the rotated one refreshes
        assert sync(s) == []
    third = file.read_text().strip()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert third not in (first, second)
    secrets = [first, second, third, CLIENT_SECRET, *provider.access_tokens]
    shown = log.getvalue()
    assert "oauth2.refresh_token_rotated" in shown
    for secret in secrets:
        assert secret not in shown and base64.b64encode(secret.encode()).decode() not in shown


def read_only_place(
    tmp_path: Path, place: str, token: str, env: pytest.MonkeyPatch
) -> dict[str, object]:
    """The OAuth2 keys of a refresh token in a systemd credential or printed by a command."""
    file = refresh_token_file(tmp_path, token)
    if place == "credential":
        env.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
        return {"refresh_token_credential": file.name}
    return {"refresh_token_command": ("head", "-n", "1", str(file))}


def flow_from(provider: Provider, keys: dict[str, object]) -> OAuth2:
    """The built-in flow with its secrets from ``keys``, the client secret from a command."""
    command = ("sh", "-c", f"echo {CLIENT_SECRET}")
    base = OAuth2(client_id=CLIENT_ID, client_secret_command=command, token_url=provider.token_url)
    return replace(base, **keys)  # type: ignore[arg-type]


@pytest.mark.parametrize("place", ["credential", "command"])
def test_the_secrets_come_from_a_credential_or_commands(
    oauth2: OAuth2Servers,
    oauth2_account: ImapAccount,
    tmp_path: Path,
    place: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = oauth2.provider
    token = provider.refresh_token_for(oauth2_account.user)
    keys = read_only_place(tmp_path, place, token, monkeypatch)
    srv.append(oauth2_account, "INBOX", srv.make_message(1, "INBOX"))
    s = setup(oauth2_account, tmp_path, flow_from(provider, keys))
    assert sync(s) == []
    (asked,) = provider.token_requests
    assert (asked["refresh_token"], asked["client_secret"]) == (token, CLIENT_SECRET)
    local = loc.messages(s.root, s.layout, "INBOX")
    assert [m.message_id for m in local] == [srv.message_id(1, "INBOX")]


@pytest.mark.parametrize("place", ["credential", "command"])
def test_a_rotated_refresh_token_that_cannot_be_written_is_kept_in_memory(
    oauth2: OAuth2Servers,
    oauth2_account: ImapAccount,
    tmp_path: Path,
    place: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider rotates at every refresh and revokes the old token: each refresh sends
    the one before it, from memory, and the user is warned once, not at every rotation."""
    provider = oauth2.provider
    provider.rotate, provider.lifetime = True, 1.0
    first = provider.refresh_token_for(oauth2_account.user)
    keys = read_only_place(tmp_path, place, first, monkeypatch)
    s = setup(oauth2_account, tmp_path, flow_from(provider, keys))
    with pristine_logging():
        log = capture(2)
        for _ in range(3):
            assert sync(s) == []
            asyncio.run(asyncio.sleep(1.0))  # the access token expires: the next sync refreshes
    sent = [r["refresh_token"] for r in provider.token_requests]
    assert len(sent) == 3 and sent[0] == first and len(set(sent)) == 3
    assert (tmp_path / "refresh-token").read_text() == first + "\n"  # read-only: not written
    shown = log.getvalue()
    assert shown.count("oauth2.refresh_token_rotated_unsaved") == 1, shown
    named = {"credential": "systemd credential refresh-token", "command": "_token_command"}
    assert named[place] in shown  # where to put the new one
    for secret in [*sent, CLIENT_SECRET, *provider.refresh_tokens, *provider.access_tokens]:
        assert secret not in shown
