"""The quiet check itself (see the package doc): whether an account is as its last quiet run
left it, read without the engine and without an event loop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from mailtide.config.model import Account, Config, ImapRepository, MaildirRepository, Repository
from mailtide.state import quiet as proof
from mailtide.state.lock import StateError, lock_account, state_file
from mailtide.ui.log import register_secret

if TYPE_CHECKING:
    from mailtide.stores.imap.credentials import Credentials
    from mailtide.stores.imap.probe import Server

log = structlog.get_logger(__name__)


def quiet_mailboxes(config: Config, account: Account) -> int | None:
    """The number of mailbox pairs of ``account`` when it is as its last quiet run left it
    (a sync would do nothing), else None: the sync runs as usual (``-v`` says why)."""
    why = _why_not(config, account)
    if isinstance(why, str):
        log.debug("quiet.no", account=account.name, why=why)
        return None
    return why


def _why_not(config: Config, account: Account) -> int | str:
    """The number of mailbox pairs, or why the account may not be as its last quiet run."""
    if _not_covered(account):
        return "hooks or Gmail"
    db = state_file(config.general.state_dir, account.name)
    recorded = proof.read(db)
    if recorded is None:
        return "no proof of a quiet run"
    try:
        lock = lock_account(db)
    except StateError:
        return "another mailtide holds the account"  # the sync says so
    try:
        if proof.signatures(db, config.path) != (recorded.code, recorded.config, recorded.state):
            return "the code, the config or the state changed"
        sides = zip(
            ("remote", "local"), recorded.sides, (account.remote, account.local), strict=True
        )
        # A Maildir first: its stat calls cost far less than a server's session, which a
        # change of the Maildir (the sync after reading mail) then does not pay.
        for side, facts, repo in sorted(sides, key=lambda s: s[1].get("kind") != "maildir"):
            if not _still(facts, repo):
                return f"the {side} side reads otherwise"
    finally:
        os.close(lock)
    return recorded.mailboxes


def _not_covered(account: Account) -> bool:
    """Whether the check leaves the account to the engine whatever its state (package doc)."""
    hooks = account.hooks
    if hooks.presync or hooks.postsync or hooks.newmail:
        return True
    for repo in (account.remote, account.local):
        if isinstance(repo, ImapRepository) and (repo.kind != "imap" or repo.gmail_labels):
            return True
    return False


def _still(facts: Mapping[str, Any], repo: Repository) -> bool:
    """Whether the store of ``repo`` reads now what ``facts`` say it read."""
    kind = facts.get("kind")
    if kind == "maildir" and isinstance(repo, MaildirRepository):
        from mailtide.stores.maildir import seen

        return facts.get("root") == os.path.expanduser(str(repo.path)) and seen.still(facts)
    if kind == "imap" and isinstance(repo, ImapRepository):
        from mailtide.stores.imap.probe import Unavailable, answers_now

        try:
            return answers_now(_server(repo), _credentials(repo)) == facts.get("answers")
        except Unavailable as e:
            log.debug("quiet.unavailable", reason=str(e))
            return False
    return False


def _server(repo: ImapRepository) -> Server:
    """Where and how the store of ``repo`` connects (as ``wiring.imap_settings`` has it)."""
    from mailtide.stores.imap.probe import Server

    trust = None
    if repo.tls != "none":
        from mailtide.stores.imap.tls_trust import TlsTrust

        trust = TlsTrust(
            str(repo.ca_file) if repo.ca_file else None,
            repo.tls_min_version,
            str(repo.client_cert) if repo.client_cert else None,
            str(repo.client_key) if repo.client_key else None,
            repo.cert_fingerprint,
        )
    return Server(repo.host, repo.port, repo.tls, repo.timeout, trust)


def _credentials(repo: ImapRepository) -> Credentials:
    """The password, from any source but OAuth2, read as the sync reads it: a source that
    blocks (a command, the keyring) by its ``password_now``, the others' coroutine run to its
    end at once.  ``Unavailable`` for OAuth2, and for a source that fails (the sync then says
    why)."""
    from mailtide.stores.imap.credentials import Credentials
    from mailtide.stores.imap.probe import Unavailable

    if repo.oauth2 is not None:
        raise Unavailable("the credentials come from OAuth2")
    from mailtide.auth.password import password_source
    from mailtide.auth.source import PasswordError

    given = password_source(repo)
    now = getattr(given, "password_now", None)  # a source that blocks (a command, the keyring)
    if now is not None:
        try:
            secret: str = now()
        except PasswordError as e:
            raise Unavailable(str(e)) from None
        register_secret(secret)
        return Credentials(repo.user, secret)
    source = given.password()
    try:
        source.send(None)
    except StopIteration as done:
        register_secret(done.value)
        return Credentials(repo.user, done.value)
    except Exception as e:
        raise Unavailable(f"no password: {type(e).__name__}") from None
    source.close()
    raise Unavailable("the password source waits")
