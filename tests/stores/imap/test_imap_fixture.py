"""The private Dovecot fixture and the stdlib helpers the other tests rely on."""

from __future__ import annotations

import imaplib
import os
import shutil
import ssl
import tempfile
from datetime import UTC, datetime

import imap_helpers as h
from dovecot import CAPABILITIES_WITHOUT_EXTENSIONS, Dovecot, ImapAccount


def test_fresh_user_is_an_empty_account(imap_account: ImapAccount) -> None:
    assert h.list_folders(imap_account) == ["INBOX"]
    assert h.fetch_all(imap_account, "INBOX") == []


def test_helpers_round_trip(imap_account: ImapAccount) -> None:
    msg = h.make_message(1, "Entwürfe/Ärger", size=5000)
    assert msg.endswith(b"\r\n") and b"\n" not in msg.replace(b"\r\n", b"")
    assert 4990 <= len(msg) <= 5000
    when = datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)
    uid = h.append(imap_account, "Entwürfe/Ärger", msg, ["\\Seen", "$Forwarded"], when)
    assert uid == 1
    assert h.list_folders(imap_account) == ["Entwürfe", "Entwürfe/Ärger", "INBOX"]
    h.set_flags(imap_account, "Entwürfe/Ärger", h.message_id(1, "Entwürfe/Ärger"), ["\\Flagged"])
    h.clear_flags(imap_account, "Entwürfe/Ärger", h.message_id(1, "Entwürfe/Ärger"), ["\\Seen"])
    [got] = h.fetch_all(imap_account, "Entwürfe/Ärger")
    assert (got.uid, got.flags, got.body) == (1, {"\\Flagged", "$Forwarded"}, msg)
    assert got.message_id == h.message_id(1, "Entwürfe/Ärger")
    h.expunge(imap_account, "Entwürfe/Ärger", got.message_id)
    assert h.fetch_all(imap_account, "Entwürfe/Ärger") == []


def test_tls_ports_verify_with_the_ca_file(imap_account: ImapAccount) -> None:
    ctx = ssl.create_default_context(cafile=imap_account.ca_file)
    with imaplib.IMAP4_SSL("localhost", imap_account.imaps_port, ssl_context=ctx) as c:
        assert c.login(imap_account.user, "secret")[0] == "OK"
    with imaplib.IMAP4(imap_account.host, imap_account.port) as c:
        c.starttls(ctx)
        assert c.login(imap_account.user, "secret")[0] == "OK"


def test_capability_override() -> None:
    root = tempfile.mkdtemp(prefix="mailtide-dovecot-", dir="/tmp")
    os.chmod(root, 0o755)
    with Dovecot(root, capability_override=CAPABILITIES_WITHOUT_EXTENSIONS) as server:
        with imaplib.IMAP4(server.host, server.port) as c:
            c.login("someone", "secret")
            caps = c.capability()[1][0].split()
        assert b"UIDPLUS" not in caps and b"QRESYNC" not in caps
        server.restart(capability_override=None)
        with imaplib.IMAP4(server.host, server.port) as c:
            c.login("someone", "secret")
            assert b"UIDPLUS" in c.capability()[1][0].split()
    shutil.rmtree(root, ignore_errors=True)
