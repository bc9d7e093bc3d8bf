"""Which accounts the quiet check covers, and how its session reaches an IMAP side: the
server and the credentials, as the sync's store would have them.  Loads no logging (and so
no structlog): the session may begin before the command's other modules load (early.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailtide.config.model import Account, ImapRepository

if TYPE_CHECKING:
    from mailtide.stores.imap.credentials import Credentials
    from mailtide.stores.imap.probe import Server


def covered(account: Account) -> bool:
    """Whether the check may find ``account`` quiet at all (the package doc says which are
    left to the engine whatever their state: hooks, Gmail's modes)."""
    hooks = account.hooks
    if hooks.presync or hooks.postsync or hooks.newmail:
        return False
    for repo in (account.remote, account.local):
        if isinstance(repo, ImapRepository) and (repo.kind != "imap" or repo.gmail_labels):
            return False
    return True


def server(repo: ImapRepository) -> Server:
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


def at_once(repo: ImapRepository) -> bool:
    """Whether ``repo``'s password is read without running a program (a command, the
    keyring) and without OAuth2: what ``credentials(repo, blocking=False)`` can read."""
    if repo.oauth2 is not None:
        return False
    from mailtide.auth.password import password_source

    return not hasattr(password_source(repo), "password_now")


def credentials(repo: ImapRepository, *, blocking: bool = True) -> Credentials:
    """The password, from any source but OAuth2, read as the sync reads it: a source that
    blocks (a command, the keyring) by its ``password_now`` (``Unavailable`` instead when not
    ``blocking``), the others' coroutine run to its end at once.  ``Unavailable`` for OAuth2,
    and for a source that fails (the sync then says why).  The caller registers the secret
    with the log's mask (``ui.log.register_secret``) before anything is logged."""
    from mailtide.stores.imap.credentials import Credentials
    from mailtide.stores.imap.probe import Unavailable

    if repo.oauth2 is not None:
        raise Unavailable("the credentials come from OAuth2")
    from mailtide.auth.password import password_source
    from mailtide.auth.source import PasswordError

    given = password_source(repo)
    now = getattr(given, "password_now", None)  # a source that blocks (a command, the keyring)
    if now is not None:
        if not blocking:
            raise Unavailable("the password source blocks")
        try:
            secret: str = now()
        except PasswordError as e:
            raise Unavailable(str(e)) from None
        return Credentials(repo.user, secret)
    source = given.password()
    try:
        source.send(None)
    except StopIteration as done:
        return Credentials(repo.user, done.value)
    except Exception as e:
        raise Unavailable(f"no password: {type(e).__name__}") from None
    source.close()
    raise Unavailable("the password source waits")
