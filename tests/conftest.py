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
