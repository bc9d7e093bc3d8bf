"""The quiet check itself (see the package doc): whether an account is as its last quiet run
left it, read without the engine and without an event loop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from mailtide.config.model import Account, Config, ImapRepository, MaildirRepository, Repository
from mailtide.core.model import SIDES, Side
from mailtide.quiet import reach
from mailtide.state import quiet as proof
from mailtide.state.lock import StateError, lock_account, state_file
from mailtide.ui.log import register_secret

if TYPE_CHECKING:
    from mailtide.state.quiet import Proof

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
    if not reach.covered(account):
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
        sides = zip(SIDES, recorded.sides, (account.remote, account.local), strict=True)
        # A Maildir first: its stat calls cost far less than a server's session, which a
        # change of the Maildir (the sync after reading mail) then does not wait for (the
        # session may have begun already: early.py).
        for side, facts, repo in sorted(sides, key=lambda s: s[1].get("kind") != "maildir"):
            if not _still(facts, repo, account.name, side, recorded):
                return f"the {('remote', 'local')[side]} side reads otherwise"
    finally:
        os.close(lock)
    return recorded.mailboxes


def _still(
    facts: Mapping[str, Any], repo: Repository, account: str, side: Side, recorded: Proof
) -> bool:
    """Whether the store of ``repo`` (``side`` of ``account``) reads now what ``facts`` (of
    the proof ``recorded``) say it read."""
    kind = facts.get("kind")
    if kind == "maildir" and isinstance(repo, MaildirRepository):
        from mailtide.stores.maildir import seen

        return facts.get("root") == os.path.expanduser(str(repo.path)) and seen.still(facts)
    if kind == "imap" and isinstance(repo, ImapRepository):
        from mailtide.quiet import early
        from mailtide.stores.imap.probe import Unavailable, listing_now

        try:
            taken = early.take(account, side, repo, recorded)  # the session begun early
            log.debug("quiet.session", side=side.name, begun="early" if taken else "now")
            if taken is None:
                credentials = reach.credentials(repo)
                register_secret(credentials.secret)
                answers = listing_now(reach.server(repo), credentials).answers()
            else:
                answers, credentials = taken
                register_secret(credentials.secret)
        except Unavailable as e:
            log.debug("quiet.unavailable", reason=str(e))
            return False
        return answers == facts.get("answers")
    return False
