from __future__ import annotations

from pathlib import Path

import pytest

from dovecot import ImapAccount
from engine_helpers import Setup, make_setup


@pytest.fixture(params=["fs", "maildir++"])
def setup(request: pytest.FixtureRequest, imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, request.param)


@pytest.fixture
def fs_setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path, "fs")
