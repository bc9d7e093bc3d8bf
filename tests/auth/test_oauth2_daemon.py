"""A daemon outlives its access token: the syncs after the token expired log in with a
refreshed one, and mail keeps arriving (the OAuth2 Dovecot refuses an expired token)."""

from __future__ import annotations

from pathlib import Path

import imap_helpers as srv
import maildir_helpers as loc
from daemon_helpers import Daemon, eventually
from dovecot import ImapAccount
from oauth2_provider import CLIENT_ID

from .conftest import OAuth2Servers
from .oauth2_helpers import write_config


def test_a_daemon_refreshes_the_token_it_outlived(
    oauth2: OAuth2Servers, oauth2_account: ImapAccount, tmp_path: Path
) -> None:
    provider = oauth2.provider
    provider.lifetime = 2.0
    extra = (
        'autorefresh = "1s"\nidle_folders = []\nhold_connection_open = false\n'
        "watch_maildir = false\n"
    )
    config = write_config(tmp_path, provider, oauth2_account, CLIENT_ID, extra)
    token = tmp_path / "refresh-token"
    token.write_text(provider.refresh_token_for(oauth2_account.user) + "\n")
    token.chmod(0o600)

    def arrived(n: int) -> bool:
        try:
            return len(loc.messages(tmp_path / "Mail", "fs", "INBOX")) == n
        except FileNotFoundError:
            return False

    daemon = Daemon(config)
    try:
        srv.append(oauth2_account, "INBOX", srv.make_message(1, "INBOX"))
        eventually(lambda: arrived(1), 20, "the first message", daemon)
        first_refreshes = len(provider.token_requests)
        srv.append(oauth2_account, "INBOX", srv.make_message(2, "INBOX"))
        # Past the token's life: later syncs need a new one.
        eventually(
            lambda: len(provider.token_requests) >= first_refreshes + 2, 20, "refreshes", daemon
        )
        eventually(lambda: arrived(2), 20, "the second message", daemon)
    finally:
        daemon.close()
    assert "authentication failed" not in daemon.output
    assert provider.refused_tokens == []  # refreshed before it expired, never after a refusal
