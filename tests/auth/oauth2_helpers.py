"""An OAuth2 repository's config file for tests that run the mailtide command."""

from __future__ import annotations

from pathlib import Path

from dovecot import ImapAccount
from oauth2_provider import CLIENT_SECRET, Provider


def write_config(
    tmp: Path, provider: Provider, account: ImapAccount, client_id: str, extra: str = ""
) -> Path:
    """Account "work": Maildir "Mail" and the account's IMAP side with the built-in flow
    (the refresh token in the file "refresh-token"); ``extra`` goes into [account.work]."""
    config = tmp / "config.toml"
    config.write_text(
        f"""\
[general]
state_dir = "state"

[account.work]
{extra}local = "work-local"
remote = "work-remote"

[repository.work-local]
type = "maildir"
path = "Mail"

[repository.work-remote]
type = "imap"
host = "{account.host}"
port = {account.port}
tls = "none"
user = "{account.user}"
oauth2_client_id = "{client_id}"
oauth2_client_secret = "{CLIENT_SECRET}"
oauth2_token_url = "{provider.token_url}"
oauth2_auth_url = "{provider.auth_url}"
oauth2_scopes = ["imap"]
oauth2_refresh_token_file = "refresh-token"
"""
    )
    return config
