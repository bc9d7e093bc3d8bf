"""A server without UIDPLUS, CONDSTORE, QRESYNC or MOVE (Dovecot with them hidden): the full
listing path, and deletions that must never remove another client's \\Deleted messages nor
bring ours back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import CAPABILITIES_WITHOUT_EXTENSIONS, Dovecot, private_dovecot
from engine_helpers import Setup, make_setup


@pytest.fixture(scope="module")
def plain_dovecot() -> Iterator[Dovecot]:
    yield from private_dovecot(capability_override=CAPABILITIES_WITHOUT_EXTENSIONS)


@pytest.fixture
def plain(plain_dovecot: Dovecot, tmp_path: Path, request: pytest.FixtureRequest) -> Setup:
    user = f"plain-{os.getpid()}-{request.node.name}".lower().replace("[", "-").replace("]", "")
    return make_setup(plain_dovecot.account(user[:60]), tmp_path, "fs")


def ids(setup: Setup, folder: str = "INBOX") -> dict[str, frozenset[str]]:
    return {m.message_id: m.flags for m in srv.fetch_all(setup.imap, folder)}


def test_sync_and_delete_without_extensions(plain: Setup) -> None:
    s = plain
    with srv.session(s.imap) as c:
        for i in range(6):
            srv.append(s.imap, "INBOX", srv.make_message(i, "INBOX"), ["\\Seen"], imap=c)
    assert not s.sync().failed
    assert sorted(loc.by_message_id(s.root, "fs", "INBOX")) == sorted(ids(s))

    # no other \Deleted message: our deletion is expunged
    loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(1, "INBOX")].path.unlink()
    assert not s.sync().failed
    assert srv.message_id(1, "INBOX") not in ids(s)

    # another client has marked a message \Deleted and not expunged it: it must survive,
    # ours stays marked, and neither comes back as a new local message
    srv.set_flags(s.imap, "INBOX", srv.message_id(2, "INBOX"), ["\\Deleted"])
    loc.by_message_id(s.root, "fs", "INBOX")[srv.message_id(3, "INBOX")].path.unlink()
    for _ in range(2):
        assert not s.sync().failed
        server = ids(s)
        assert "\\Deleted" in server[srv.message_id(2, "INBOX")]
        assert "\\Deleted" in server[srv.message_id(3, "INBOX")]
        local = loc.by_message_id(s.root, "fs", "INBOX")
        assert srv.message_id(3, "INBOX") not in local
        assert srv.message_id(1, "INBOX") not in local
        assert "T" in local[srv.message_id(2, "INBOX")].letters  # the other client's mark

    # once that client expunges, the next run expunges ours too and everything settles
    srv.expunge(s.imap, "INBOX", srv.message_id(2, "INBOX"))
    assert not s.sync().failed
    assert sorted(ids(s)) == sorted(srv.message_id(i, "INBOX") for i in (0, 4, 5))
    assert sorted(loc.by_message_id(s.root, "fs", "INBOX")) == sorted(ids(s))
    report = s.sync()
    assert all(not any(m.summary().values()) for m in report.mailboxes), report


def test_flags_both_ways_without_condstore(plain: Setup) -> None:
    s = plain
    with srv.session(s.imap) as c:
        for i in range(4):
            srv.append(s.imap, "Archive", srv.make_message(i, "Archive"), imap=c)
    assert not s.sync().failed
    srv.set_flags(s.imap, "Archive", srv.message_id(0, "Archive"), ["\\Flagged", "Work"])
    local = loc.by_message_id(s.root, "fs", "Archive")
    loc.set_letters(local[srv.message_id(1, "Archive")], "RS")
    assert not s.sync().failed
    assert {"\\Answered", "\\Seen"} <= ids(s, "Archive")[srv.message_id(1, "Archive")]
    local = loc.by_message_id(s.root, "fs", "Archive")
    assert "F" in local[srv.message_id(0, "Archive")].letters
