"""The line that ends an account's sync, said alike by the engine's run (wiring.py) and by the
quiet check (quiet/), which ends a run that has nothing to do before the engine loads."""

from __future__ import annotations

import structlog

log = structlog.get_logger(__name__)


def account_done(
    account: str,
    mailboxes: int,
    *,
    failed: int = 0,
    stranded: int = 0,
    new: tuple[int, int] = (0, 0),
    moved: tuple[int, int] = (0, 0),
    dry_run: bool = False,
) -> None:
    """``account.done`` (a warning when a mailbox failed or mail is stranded); ``new`` and
    ``moved`` by side: remote, local."""
    (log.warning if failed or stranded else log.info)(
        "account.done",
        account=account,
        mailboxes=mailboxes,
        failed=failed,
        stranded=stranded,
        new_remote=new[0],
        new_local=new[1],
        moved_remote=moved[0],
        moved_local=moved[1],
        dry_run=dry_run,
    )
