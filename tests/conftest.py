"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator

import pytest
import structlog

from courier import Courier, private_courier
from dovecot import Dovecot, ImapAccount, private_dovecot

# ---- logging -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _file_times_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file system is taken to keep whole seconds (``local_clock``): whether a sync's
    own writes settle by its end then never depends on how fast it ran, and the durable steps
    of a run stay the same from run to run (the crash sweeps compare them).  The tests of the
    finer rule (test_maildir_local_clock.py, test_stamp_after_writes.py) set it back."""
    from mailtide.stores.maildir import local_clock

    monkeypatch.setattr(local_clock, "_types", {})


@pytest.fixture(autouse=True)
def _own_writes_not_restamped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync in a test records no stamp of its own writes at its end (engine/restamp.py):
    whether one settles in time depends on how fast the run was, and the next run's durable
    steps on whether it did (the crash sweeps compare the steps of runs).  The tests of that
    feature (test_maildir_skip.py, test_stamp_after_writes.py) override this fixture; a
    daemon or a command run as a process of its own is not affected."""
    from mailtide.engine import restamp

    async def dropped(
        self: restamp.Restamps, state: object, wait: float, stop: object = None
    ) -> list[tuple[restamp.Written, str]]:
        pending, self._pending = self._pending, []
        for written in pending:
            written.proof.close()
        return []

    monkeypatch.setattr(restamp.Restamps, "record", dropped)


@pytest.fixture(autouse=True)
def _no_log_handler_left_behind() -> Iterator[None]:
    """A test that runs the command line in-process sets up logging on the stderr pytest
    captures for it; left in place, every later test in the worker logs to a closed file."""
    from mailtide.ui import log as ui_log

    before = ui_log._handler
    yield
    if ui_log._handler is not before and ui_log._handler is not None:
        logging.getLogger().removeHandler(ui_log._handler)
        ui_log._handler = None
        structlog.reset_defaults()


# ---- Dovecot --------------------------------------------------------------------------------


_user_counter = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot per test session."""
    yield from private_dovecot()


@pytest.fixture
def imap_account(dovecot: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    """A new user (any name logs in with password "secret"), so a new, empty mailbox."""
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    user = f"u{os.getpid()}-{next(_user_counter)}-{test}".lower()
    return dovecot.account(user)


# ---- Courier --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def courier() -> Iterator[Courier]:
    """One private Courier-IMAP per test session (no UIDPLUS advertised; see tests/courier.py)."""
    yield from private_courier()


# ---- files on disk --------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask for the test (a usual one, and one that takes nothing away)."""
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)
