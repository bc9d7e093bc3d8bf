"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from dovecot import Dovecot, DovecotUnavailable, ImapAccount

# ---- Dovecot --------------------------------------------------------------------------------


_user_counter = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot per test session, on free ports on 127.0.0.1."""
    # Under /tmp, not pytest's tmp_path: the mail user must be able to traverse the path.
    root = tempfile.mkdtemp(prefix="mailtide-dovecot-", dir="/tmp")
    os.chmod(root, 0o755)
    try:
        server = Dovecot(root)
    except DovecotUnavailable as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(str(e))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_account(dovecot: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    """A new user (any name logs in with password "secret"), so a new, empty mailbox."""
    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    user = f"u{os.getpid()}-{next(_user_counter)}-{test}".lower()
    return dovecot.account(user)
