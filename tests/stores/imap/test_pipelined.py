"""Commands sent at once (``ImapProtocol.run_many``, ``ImapClient.run_many``): each gets its
own answers, a failed one is named, a server that ends them out of order or hangs up midway
is followed, and the connection goes on being usable where it should."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

import imap_helpers as srv
from dovecot import ImapAccount
from mailtide.stores.base import ConnectionLost, StoreError
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.parse import Untagged
from mailtide.stores.imap.protocol import Pipelined
from mailtide.stores.imap.store import ImapStore
from stores.imap.imap_store_helpers import fake_settings, settings


async def connected(acct: ImapAccount) -> ImapClient:
    client = ImapClient(settings(acct))
    await client.connect()
    return client


def test_each_command_of_a_flight_gets_its_own_answers(imap_account: ImapAccount) -> None:
    for i, flags in enumerate([["\\Seen"], []]):
        srv.append(imap_account, "INBOX", srv.make_message(i, "INBOX"), flags)

    async def run() -> None:
        client = await connected(imap_account)
        fetched: list[Untagged] = []

        def on_fetch(u: Untagged) -> bool:
            if u.kind != "FETCH":
                return False
            fetched.append(u)
            return True

        try:
            select, fetch = await client.run_many(
                [
                    Pipelined(("SELECT", '"INBOX"')),
                    Pipelined(("UID FETCH", "1:*", "(UID FLAGS)"), on_fetch),
                ]
            )
            assert select.ok and fetch.ok
            assert any(u.kind == "EXISTS" and u.number == 2 for u in select.untagged)
            assert not any(u.kind == "FETCH" for u in select.untagged)
            assert [u.number for u in fetched] == [1, 2]
        finally:
            await client.close()

    asyncio.run(run())


def test_a_failed_command_of_a_flight_is_named_and_the_connection_goes_on(
    imap_account: ImapAccount,
) -> None:
    """A SELECT of a mailbox that is not there: the FETCH after it fails too (nothing is
    selected), and the error names the SELECT, the first that failed."""

    async def run() -> None:
        client = await connected(imap_account)
        try:
            with pytest.raises(StoreError, match='SELECT "Nowhere" failed: NO'):
                await client.run_many(
                    [
                        Pipelined(("SELECT", '"Nowhere"')),
                        Pipelined(("UID FETCH", "1:*", "(UID FLAGS)")),
                    ]
                )
            unchecked = await client.run_many(
                [Pipelined(("SELECT", '"Nowhere"'), check=False), Pipelined(("NOOP",))]
            )
            assert [d.status for d in unchecked] == ["NO", "OK"]
            assert (await client.run("SELECT", '"INBOX"')).ok  # still usable
        finally:
            await client.close()

    asyncio.run(run())


def test_a_literal_cannot_be_pipelined(imap_account: ImapAccount) -> None:
    async def run() -> None:
        client = await connected(imap_account)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"x"

        try:
            with pytest.raises(ValueError, match="literal"):
                await client.run_many([Pipelined(("APPEND", '"INBOX"', (1, chunks())))])
            assert (await client.run("NOOP")).ok  # nothing was sent
        finally:
            await client.close()

    asyncio.run(run())


@contextmanager
def scripted(answer: bytes, hang_up: bool = False, caps: bytes = b"IMAP4rev1") -> Iterator[int]:
    """A server that greets, takes LOGIN (then offering ``caps``), reads three command lines
    and writes ``answer`` (T1, T2, T3 become their tags), and maybe hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1] scripted\r\n")
            tags: list[bytes] = []
            while len(tags) < 4:
                line = lines.readline()
                if not line:
                    return
                tag = line.split(b" ", 1)[0]
                tags.append(tag)
                if len(tags) == 1:  # the LOGIN
                    conn.sendall(tag + b" OK [CAPABILITY " + caps + b"] in\r\n")
            conn.sendall(
                answer.replace(b"T1", tags[1]).replace(b"T2", tags[2]).replace(b"T3", tags[3])
            )
            if hang_up:
                return
            while line := lines.readline():
                conn.sendall(line.split(b" ", 1)[0] + b" OK done\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@contextlib.asynccontextmanager
async def scripted_client(
    answer: bytes, hang_up: bool = False, caps: bytes = b"IMAP4rev1"
) -> AsyncIterator[ImapClient]:
    """A client logged in to a ``scripted`` server, closed after."""
    with scripted(answer, hang_up, caps) as port:
        client = ImapClient(fake_settings(port))
        await client.connect()
        try:
            yield client
        finally:
            await client.close()


def three(seen: list[tuple[str, int | None]]) -> list[Pipelined]:
    def on(name: str):  # type: ignore[no-untyped-def]
        def take(u: Untagged) -> bool:
            seen.append((name, u.number))
            return True

        return take

    return [Pipelined(("NOOP",), on(n)) for n in ("first", "second", "third")]


def test_commands_ended_out_of_order_each_get_their_status() -> None:
    """RFC 9051 5.5: a server may run independent commands at once and end them in any
    order.  Untagged answers go to the oldest command still running."""
    answer = (
        b"* 1 EXISTS\r\nT2 OK second\r\n* 2 EXISTS\r\nT1 OK first\r\n* 3 EXISTS\r\nT3 NO third\r\n"
    )

    async def run() -> None:
        async with scripted_client(answer) as client:
            seen: list[tuple[str, int | None]] = []
            done = await client.run_many(three(seen), check=False)
            assert [(d.status, d.text) for d in done] == [
                ("OK", "first"),
                ("OK", "second"),
                ("NO", "third"),
            ]
            assert seen == [("first", 1), ("first", 2), ("third", 3)]
            assert (await client.run("NOOP")).ok  # in step again

    asyncio.run(run())


def test_a_server_that_hangs_up_midway_fails_every_command_left() -> None:
    async def run() -> None:
        async with scripted_client(b"T1 OK first\r\n", hang_up=True) as client:
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(client.run_many(three([])), 10)
            assert not client.usable

    asyncio.run(run())


def test_a_tag_no_command_of_the_flight_has_breaks_the_connection() -> None:
    async def run() -> None:
        async with scripted_client(b"T1 OK first\r\nZ9 OK stranger\r\n") as client:
            with pytest.raises(StoreError, match="out of step"):
                await asyncio.wait_for(client.run_many(three([])), 10)
            assert not client.usable  # the stream cannot be followed any more

    asyncio.run(run())


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_an_enable_left_for_later_goes_with_the_first_command_or_before_a_literal(
    imap_account: ImapAccount,
) -> None:
    """``connect(enable_later=True)``: the ENABLE is answered with the first command, and
    before an APPEND, whose literal waits for the server, on its own."""

    async def run() -> None:
        for first in ("NOOP", "APPEND"):
            client = ImapClient(settings(imap_account))
            await client.connect(enable_later=True)
            try:
                assert client.enabled == frozenset()
                if first == "NOOP":
                    assert (await client.run("NOOP")).ok
                else:
                    body = srv.make_message(3, "INBOX")
                    literal = (len(body), one(body))
                    assert (await client.run("APPEND", '"INBOX"', literal)).ok
                assert "QRESYNC" in client.enabled, first
                assert (await client.run("NOOP")).ok  # in step
            finally:
                await client.close()
        assert [m.message_id for m in srv.fetch_all(imap_account, "INBOX")] == [
            srv.message_id(3, "INBOX")
        ]

    asyncio.run(run())


def test_answers_of_a_flight_a_server_ran_at_once_go_by_their_kind() -> None:
    """The store's first flight (ENABLE, NAMESPACE, LIST): a server that runs them at once
    may send folders before the ENABLE or the NAMESPACE has ended.  Every folder is still
    listed, the namespace and the extension still read."""
    answer = (
        b'* LIST () "/" INBOX\r\n* ENABLED QRESYNC\r\nT1 OK enabled\r\n'
        b'* LIST () "/" Work\r\n* NAMESPACE (("" "/")) NIL NIL\r\nT2 OK namespace\r\n'
        b'* LIST () "/" Archive\r\nT3 OK listed\r\n'
    )

    async def run() -> None:
        caps = b"IMAP4rev1 ENABLE CONDSTORE QRESYNC NAMESPACE UIDPLUS"
        with scripted(answer, caps=caps) as port:
            store = ImapStore(fake_settings(port))
            try:
                await store.connect()
                names = sorted(f.name for f in await store.list_folders())
                assert names == ["Archive", "INBOX", "Work"]
                assert store.names.separator == "/"
                assert store._client is not None and "QRESYNC" in store._client.enabled
            finally:
                await store.close()

    asyncio.run(run())
