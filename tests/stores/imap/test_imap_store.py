"""The IMAP store against the private Dovecot: connections, folders, messages."""

from __future__ import annotations

import base64
import socket
from dataclasses import replace
from datetime import UTC, datetime

import pytest

import imap_helpers as srv
from dovecot import OTHER_HOST, ImapAccount
from fake_imap import fake_imap
from log_helpers import capture, pristine_logging
from mailtide.core.identity import identity_of_message
from mailtide.stores.base import BytesBody, FlagChange, Incoming, MailboxError, StoreError
from mailtide.stores.imap import ImapStore
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.wire import SECRET_MARKER
from stores.imap.imap_store_helpers import fake_settings, pretend, settings


async def connected(acct: ImapAccount, **kw: object) -> ImapStore:
    store = ImapStore(settings(acct, **kw))
    await store.connect()
    return store


def incoming(data: bytes, flags: frozenset[str] = frozenset(), when: datetime | None = None):
    return Incoming(flags, when, identity_of_message(data), BytesBody(data))


# ---- connecting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tls", "host", "port_attr"),
    [
        ("none", "127.0.0.1", "port"),
        ("starttls", "localhost", "port"),
        ("implicit", "127.0.0.1", "imaps_port"),
        ("implicit", "localhost", "imaps_port"),
    ],
)
async def test_connect_each_tls_mode(imap_account: ImapAccount, tls, host, port_attr) -> None:
    store = await connected(
        imap_account,
        tls=tls,
        host=host,
        port=getattr(imap_account, port_attr),
        ca_file=imap_account.ca_file,
    )
    try:
        assert "UIDPLUS" in store.capabilities
        assert [f.name for f in await store.list_folders()] == ["INBOX"]
    finally:
        await store.close()


async def test_wrong_password_names_user_and_server_not_password(imap_account) -> None:
    with pytest.raises(StoreError) as err:
        await connected(replace(imap_account, password="wrong-Pa55"))
    msg = str(err.value)
    assert f"authentication failed for user {imap_account.user}" in msg
    assert f"{imap_account.host}:{imap_account.port}" in msg and "wrong-Pa55" not in msg


async def test_certificate_not_trusted_without_ca_file(imap_account) -> None:
    with pytest.raises(StoreError, match="certificate verify failed for localhost"):
        await connected(
            imap_account, tls="implicit", host="localhost", port=imap_account.imaps_port
        )


async def test_wrong_host_name_in_certificate(imap_account) -> None:
    with pytest.raises(StoreError, match=f"certificate verify failed for {OTHER_HOST}"):
        await connected(imap_account, tls="starttls", host=OTHER_HOST, ca_file=imap_account.ca_file)


async def test_unreachable_port(imap_account) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(StoreError, match=f"connection refused by 127.0.0.1:{free}"):
        await connected(imap_account, port=free)


@pytest.mark.parametrize("sasl_ir", [True, False])
async def test_authenticate_plain_when_login_is_disabled(imap_account, sasl_ir) -> None:
    client = ImapClient(settings(imap_account))
    pretend(client, add={"LOGINDISABLED"}, remove=set() if sasl_ir else {"SASL-IR"})
    with pristine_logging():
        log = capture(2)  # -vv: the conversation shows the command, not its payload
        await client.connect()
        try:
            done = await client.run("SELECT", "INBOX")
            assert done.ok
        finally:
            await client.close()
    text = log.getvalue()
    token = base64.b64encode(f"\0{imap_account.user}\0{imap_account.password}".encode())
    assert token.decode() not in text
    assert imap_account.password not in text.replace(SECRET_MARKER, "")
    shown = f"AUTHENTICATE PLAIN {SECRET_MARKER}" if sasl_ir else f"line={SECRET_MARKER}"
    assert shown in text, text


# ---- folders ------------------------------------------------------------------------------


async def test_folders_non_ascii_and_nested(imap_account) -> None:
    srv.create_folder(imap_account, "Archiv/2024/Entwürfe")
    store = await connected(imap_account)
    try:
        await store.create_folder("日本語/Ärger & Co")
        await store.create_folder("日本語/Ärger & Co")  # already exists: fine
        names = [f.name for f in await store.list_folders()]
        assert names == sorted(srv.list_folders(imap_account))
        assert "日本語/Ärger & Co" in names and "Archiv/2024/Entwürfe" in names
        assert store.refused == []
    finally:
        await store.close()


@pytest.mark.parametrize("raw", ["../../x", "a/../../b", "a/./b", "ok&AAk-tab", "x&AC8-y"])
def test_dovecot_itself_refuses_hostile_names(imap_account, raw) -> None:
    # So the store's own refusal is tested through the fake server below.
    typ, _ = srv.create_raw_folder(imap_account, raw)
    assert typ == "NO"


LIST_REPLY = (
    b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    b'* LIST (\\HasNoChildren) "/" "../../x"\r\n'
    b'* LIST (\\HasNoChildren) "/" "a/../../b"\r\n'
    b'* LIST (\\HasNoChildren) "/" "tab&AAk-here"\r\n'
    b'* LIST (\\HasNoChildren) "/" "bad&Ze*-"\r\n'
    b'* LIST (\\HasNoChildren) "/" {8}\r\nnul\x00here\r\n'
    b'* LIST (\\Noselect \\HasChildren) "/" "Entw&APw-rfe"\r\n'
    b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/2024 * Q1"\r\n'
    b'* LIST (\\HasNoChildren) "/" Archive\r\n'
)


async def test_hostile_folder_names_are_refused_the_rest_lists() -> None:
    with fake_imap(LIST_REPLY) as port:
        store = ImapStore(fake_settings(port))
        try:
            await store.connect()
            folders = await store.list_folders()
            assert [(f.name, f.selectable) for f in folders] == [
                ("Archive", True),
                ("Entwürfe", False),
                ("Entwürfe/2024 * Q1", True),
                ("INBOX", True),
            ]
            refused = dict(store.refused)
            assert set(refused) == {
                "../../x",
                "a/../../b",
                "tab&AAk-here",
                "bad&Ze*-",
                "nul\x00here",
            }
            assert "'..'" in refused["../../x"] and "modified UTF-7" in refused["bad&Ze*-"]
        finally:
            await store.close()


async def test_empty_list_is_an_error_not_an_empty_account() -> None:
    with fake_imap(b"") as port:
        store = ImapStore(fake_settings(port))
        try:
            await store.connect()
            with pytest.raises(StoreError, match="server listed no folders"):
                await store.list_folders()
        finally:
            await store.close()


# ---- messages -----------------------------------------------------------------------------


async def test_round_trip(imap_account) -> None:
    when = datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    for i in range(5):
        srv.append(imap_account, "Box", srv.make_message(i, "Box"), ["\\Seen"], when)
    store = await connected(imap_account)
    try:
        box = await store.open("Box")
        st = await box.status()
        assert (st.uidnext, st.count) == (6, 5) and st.validity.isdigit()
        snap = await box.snapshot()
        assert [m.id for m in snap] == ["1", "2", "3", "4", "5"]
        assert all(m.flags == {"\\Seen"} for m in snap)
        ids = await box.identify(["2", "4", "99"])
        assert sorted(ids) == ["2", "4"]
        assert ids["2"].message_id == srv.message_id(1, "Box")
        got = [f async for f in box.fetch(["1", "3"])]
        assert [f.id for f in got] == ["1", "3"]
        server = {m.uid: m for m in srv.fetch_all(imap_account, "Box")}
        for f in got:
            data = b"".join([c async for c in f.body.chunks()])
            assert data == server[int(f.id)].body
            assert f.internaldate == when
            assert f.identity == ids.get(f.id, f.identity)
        new = srv.make_message(100, "Box")
        uids = await box.append([incoming(new, frozenset({"\\Flagged", "$Junk", "bad(x"}), when)])
        assert uids == ["6"]
        [m] = [m for m in srv.fetch_all(imap_account, "Box") if m.uid == 6]
        assert m.body == new and m.flags == {"\\Flagged", "$Junk"}
        await box.close()
    finally:
        await store.close()


async def test_set_flags_and_keywords(imap_account) -> None:
    srv.append_many(imap_account, "F", [srv.make_message(i, "F") for i in range(4)])
    store = await connected(imap_account)
    try:
        box = await store.open("F")
        await box.set_flags(
            [
                FlagChange("1", frozenset({"\\Seen", "$Forwarded"}), frozenset()),
                FlagChange("2", frozenset({"\\Seen", "$Forwarded"}), frozenset()),
                FlagChange("3", frozenset({"my_label"}), frozenset()),
            ]
        )
        await box.set_flags([FlagChange("2", frozenset(), frozenset({"$Forwarded"}))])
        flags = {m.uid: m.flags for m in srv.fetch_all(imap_account, "F")}
        assert flags == {1: {"\\Seen", "$Forwarded"}, 2: {"\\Seen"}, 3: {"my_label"}, 4: set()}
        await box.close()
    finally:
        await store.close()


async def test_delete_only_ours(imap_account) -> None:
    srv.append_many(imap_account, "D", [srv.make_message(i, "D") for i in range(4)])
    # Another client marked message 4 \Deleted without expunging it.
    srv.set_flags(imap_account, "D", srv.message_id(3, "D"), ["\\Deleted"])
    store = await connected(imap_account)
    try:
        box = await store.open("D")
        await box.delete(["1", "3"])
        left = srv.fetch_all(imap_account, "D")
        assert [(m.uid, m.flags) for m in left] == [(2, set()), (4, {"\\Deleted"})]
        await box.close()
    finally:
        await store.close()


async def test_25mb_message_byte_exact(imap_account) -> None:
    big = srv.make_message(1, "Big", size=25 << 20)
    store = await connected(imap_account)
    try:
        box = await store.open("INBOX")
        [uid] = await box.append([incoming(big)])
        got = [f async for f in box.fetch([uid])]
        assert len(got) == 1 and got[0].body.size == len(big)
        assert b"".join([c async for c in got[0].body.chunks()]) == big
        assert got[0].identity == identity_of_message(big)
        await box.close()
    finally:
        await store.close()


async def test_a_listing_with_an_unparsable_line_fails_the_mailbox_not_the_messages() -> None:
    """Skipping one FETCH line of a listing would make a recorded message look expunged (and
    its local copy be deleted): the listing must be complete or fail."""
    replies = {
        b"SELECT": b"* 2 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\n* OK [UIDNEXT 3] ok\r\n",
        b"FETCH": (
            b"* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 10)\r\n"
            b"* 2 FETCH (UID two FLAGS (\\Seen) RFC822.SIZE 10)\r\n"
        ),
    }
    with fake_imap(b'* LIST () "/" INBOX\r\n', replies) as port:
        store = ImapStore(fake_settings(port))
        try:
            await store.connect()
            await store.list_folders()
            box = await store.open("INBOX")
            with pytest.raises(MailboxError, match="do not parse"):
                await box.snapshot()
            await box.close()
        finally:
            await store.close()


async def test_special_use_attributes_are_listed(imap_account) -> None:
    """Dovecot's extended LIST leaves them out unless asked for (RETURN (SPECIAL-USE))."""
    for name in ("Sent", "Drafts", "Gesendete Objekte", "Projects"):
        srv.create_folder(imap_account, name)
    store = await connected(imap_account)
    try:
        assert "LIST-STATUS" in store.capabilities
        folders = {f.name: f.special_use for f in await store.list_folders()}
        assert folders == {
            "INBOX": None,
            "Sent": "\\Sent",
            "Drafts": "\\Drafts",
            "Gesendete Objekte": "\\Sent",
            "Projects": None,
        }
    finally:
        await store.close()


async def test_special_use_in_a_plain_list_in_any_case() -> None:
    reply = (
        b'* LIST (\\HasNoChildren) "." INBOX\r\n'
        b'* LIST (\\HasNoChildren \\sent) "." "INBOX.Sent Items"\r\n'
        b'* LIST (\\Noselect \\HasChildren \\ARCHIVE) "." Old\r\n'
        b'* LIST (\\Junk \\Trash) "." Bin\r\n'
    )
    with fake_imap(reply) as port:
        store = ImapStore(fake_settings(port))
        try:
            await store.connect()
            folders = {f.name: (f.selectable, f.special_use) for f in await store.list_folders()}
        finally:
            await store.close()
    assert folders == {
        "INBOX": (True, None),
        "INBOX/Sent Items": (True, "\\Sent"),
        "Old": (False, "\\Archive"),
        "Bin": (True, "\\Junk"),  # several: the first in RFC 6154's order
    }
