"""COMPRESS=DEFLATE (RFC 4978) against the private Dovecot, which offers it after login
(imap_zlib): the same mail arrives in fewer bytes, a message of several MB goes both ways,
push works over a compressed connection, a server that does not offer it is used
uncompressed, and a corrupt stream is a lost connection, retried, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import structlog
from aioimaplib import aioimaplib as aio

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount, private_dovecot
from engine.test_round_trips import turns
from engine_helpers import Setup, assert_in_sync, make_setup
from fault_proxy import Fault, FaultProxy, fault_proxy
from mailtide.stores.base import AuthenticationFailed
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.deflate import PIECE, CorruptStream, Deflate, wanted
from mailtide.stores.imap.protocol import Done, ImapProtocol
from mailtide.stores.imap.push import IdlePush, NotifyPush, PushSettings, connector
from mailtide.stores.imap.store import ImapStore
from push_helpers import Reports, in_thread, names, running, settings_of
from stores.imap.imap_store_helpers import fake_settings
from stores.imap.imap_store_helpers import settings as store_settings


def fill(s: Setup, count: int = 30) -> None:
    """Compressible mail both ways: ``count`` text messages on each side."""
    srv.append_many(s.imap, "INBOX", [srv.make_message(i, "INBOX", 6000) for i in range(count)])
    for i in range(count):
        loc.deliver(s.root, s.layout, "Sent", srv.make_message(i, "Sent", 6000))


def through(proxy: FaultProxy, s: Setup) -> Setup:
    return s.with_account(remote=replace(s.account.remote, port=proxy.port))


def fresh(imap_account: ImapAccount, tmp_path: Path, name: str, **remote: object) -> Setup:
    (tmp_path / name).mkdir()
    return make_setup(imap_account, tmp_path / name, **remote)


def test_a_compressed_sync_moves_the_same_mail_in_fewer_bytes(
    imap_account: ImapAccount, dovecot: Dovecot, tmp_path: Path
) -> None:
    sizes = {}
    for compress in (False, True):
        user = dovecot.account(f"{imap_account.user}-{compress}".lower())
        s = fresh(user, tmp_path, str(compress), compress=compress)
        fill(s)
        with fault_proxy(s.imap.port, record=True) as proxy:
            report = through(proxy, s).sync()
            assert not report.failed and not report.error, report
            up, down = proxy.stream("up"), proxy.stream("down")
        assert_in_sync(s)
        assert len(srv.fetch_all(s.imap, "INBOX")) == len(loc.messages(s.root, s.layout, "INBOX"))
        assert len(srv.fetch_all(s.imap, "Sent")) == 30
        # Compressed, no command and no message body crosses the wire in clear text.
        assert (b"Hello, this is message" in up + down) is not compress
        assert (b"COMPRESS DEFLATE" in up) is compress
        sizes[compress] = len(up) + len(down)
    assert sizes[True] < sizes[False] / 3, sizes


def test_a_message_of_several_mb_goes_both_ways_compressed(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    s = make_setup(imap_account, tmp_path, compress=True)
    noise = random.Random(4978)

    # Half text, half noise that does not compress: a literal spread over many DEFLATE blocks.
    def big(i: int, folder: str) -> bytes:
        text = srv.make_message(i, folder, 3 << 20)
        tail = bytes(noise.getrandbits(8) for _ in range(3 << 20)).hex().encode()[: 3 << 20]
        return text + b"\r\n".join(tail[k : k + 76] for k in range(0, len(tail), 76)) + b"\r\n"

    srv.append(imap_account, "INBOX", big(1, "INBOX"))
    loc.deliver(s.root, s.layout, "INBOX", big(2, "INBOX"))
    with fault_proxy(imap_account.port, record=True) as proxy:
        report = through(proxy, s).sync()
        assert not report.failed and not report.error, report
        assert b"COMPRESS DEFLATE" in proxy.stream("up")
        wire = proxy.total["up"] + proxy.total["down"]
    assert_in_sync(s)
    assert len(srv.fetch_all(s.imap, "INBOX")) == 2
    assert wire < 2 * 9 << 20  # each body once, compressed (6 MB + 6 MB in clear text)


@pytest.mark.parametrize("push", ["idle", "notify"])
async def test_push_reports_over_a_compressed_connection(
    imap_account: ImapAccount, push: str
) -> None:
    srv.create_folder(imap_account, "Work")
    settings = settings_of(imap_account, compress=True)
    reports = Reports()
    with fault_proxy(imap_account.port, record=True) as proxy:
        connect = connector(replace(settings, port=proxy.port))
        source = (
            IdlePush(connect, "Work", PushSettings())
            if push == "idle"
            else NotifyPush(connect, PushSettings(), lambda n: True)
        )
        async with running(source.run(reports)):
            await asyncio.sleep(0.5)
            for i in range(3):  # several rounds on one long-held connection
                reports.clear()
                await in_thread(srv.append, imap_account, "Work", srv.make_message(i, "Work"))
                await reports.next(5, names("Work"))
        up, down = proxy.stream("up"), proxy.stream("down")
    tag, _, after = up.partition(b" COMPRESS DEFLATE\r\n")
    assert after, up[:500]
    # After COMPRESS's OK neither IDLE nor the server's news is readable on the wire.
    news = down.split(tag.rsplit(b"\n", 1)[-1] + b" OK", 1)[1]
    assert b"IDLE" not in after and b"DONE" not in after
    assert b"EXISTS" not in news and b"STATUS" not in news


@contextlib.contextmanager
def debug_events() -> Iterator[list[dict[str, object]]]:
    """The structlog events of the block (debug level included)."""
    with structlog.testing.capture_logs() as events:
        yield events


@pytest.fixture(scope="module")
def dovecot_without_compress() -> Iterator[Dovecot]:
    yield from private_dovecot(compress=False)


def test_compress_true_on_a_server_without_it_syncs_uncompressed(
    dovecot_without_compress: Dovecot, tmp_path: Path
) -> None:
    account = dovecot_without_compress.account("nocompress")
    s = make_setup(account, tmp_path, compress=True)
    fill(s, 5)
    with fault_proxy(account.port, record=True) as proxy, debug_events() as events:
        report = through(proxy, s).sync()
        up = proxy.stream("up")
    assert not report.failed and not report.error, report
    assert_in_sync(s)
    assert b"COMPRESS" not in up
    assert any(e["event"] == "imap.compress_not_offered" for e in events), events


def test_a_corrupt_compressed_stream_is_a_lost_connection_retried_and_nothing_lost(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    s = make_setup(imap_account, tmp_path, compress=True)
    s = s.with_account(retry_delay=0.1)
    fill(s, 5)
    with fault_proxy(imap_account.port, record=True) as proxy:
        assert not through(proxy, s).sync().failed
        srv.append(imap_account, "INBOX", srv.make_message(100, "INBOX"))
        loc.deliver(s.root, s.layout, "Sent", srv.make_message(100, "Sent"))
        # The server's first compressed byte on the first connection: right after the line
        # of COMPRESS's OK (whose timing text varies in length from run to run).
        ok = b"Begin compression"
        proxy.arm(Fault("corrupt", "down", after_line=ok, connection=1))  # counts start over
        with debug_events() as events:
            report = through(proxy, s).sync()
        assert proxy.fired, "the fault never fired"
    assert not report.failed and not report.error, report
    assert_in_sync(s)
    assert len(srv.fetch_all(imap_account, "INBOX")) == 6
    assert len(srv.fetch_all(imap_account, "Sent")) == 6
    broken = [e for e in events if e["event"] == "imap.connection_broken"]
    assert broken and "compressed stream is corrupt" in str(broken[0]["reason"]), events
    assert any(e["event"] == "account.retry" for e in events), events


# ---- the codec ------------------------------------------------------------------------------


def test_inflate_hands_on_bounded_pieces_of_a_small_bomb() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b"\0" * (64 << 20)) + packer.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 100 << 10
    pieces = Deflate().inflate(bomb)
    total = 0
    for piece in pieces:
        assert len(piece) <= PIECE
        total += len(piece)
    assert total == 64 << 20


def test_inflate_holds_nothing_back_wherever_a_read_ends() -> None:
    # A read that ends where a piece fills up may leave plain bytes inside the inflater; on an
    # idle connection no next read comes to push them out (a tagged OK would never be seen).
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = packer.compress(b"\0" * (2 * PIECE + 1000)) + packer.flush(zlib.Z_SYNC_FLUSH)
    for end in range(1, len(stream) + 1):
        expected = len(zlib.decompressobj(-15).decompress(stream[:end]))
        assert sum(map(len, Deflate().inflate(stream[:end]))) == expected, end


def test_deflate_flushes_every_write_whole() -> None:
    ours, theirs = Deflate(), zlib.decompressobj(-15)
    for line in (b"a1 NOOP\r\n", b"DONE\r\n", b"x" * 100_000):
        assert theirs.decompress(ours.deflate(line)) == line  # nothing held back


def test_garbage_is_a_corrupt_stream() -> None:
    with pytest.raises(CorruptStream, match="corrupt"):
        list(Deflate().inflate(b"\xff" * 10))


@pytest.mark.parametrize(
    ("setting", "host", "expected"),
    [
        ("auto", "imap.example.org", True),
        ("auto", "127.0.0.1", False),
        ("auto", "::1", False),
        ("auto", "localhost", False),
        ("auto", "127.0.0.2", False),
        (True, "127.0.0.1", True),
        (False, "imap.example.org", False),
    ],
)
def test_auto_compresses_except_on_loopback(setting: object, host: str, expected: bool) -> None:
    assert wanted(setting, host) is expected  # type: ignore[arg-type]


class _Wire(srv.NullTransport):
    """What the protocol writes, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))


async def asking_to_compress() -> tuple[ImapProtocol, _Wire, asyncio.Task[Done | None], bytes]:
    """A logged-in protocol on a fake wire that has sent COMPRESS DEFLATE: it, the wire, the
    command's task and its tag."""
    proto = ImapProtocol(asyncio.get_running_loop(), timeout=5)
    wire = _Wire()
    proto.connection_made(wire)
    proto.state = aio.AUTH

    async def compress() -> Done | None:
        return (await proto.compress())[1]

    asking = asyncio.create_task(compress())
    while not wire.sent:
        await asyncio.sleep(0)
    return proto, wire, asking, wire.sent[0].split(b" ")[0]


async def test_news_compressed_in_the_same_read_as_the_ok_is_read() -> None:
    # The server's stream turns DEFLATE right after the CRLF of its OK, wherever the read ends.
    proto, wire, asking, tag = await asking_to_compress()
    server = zlib.compressobj(6, zlib.DEFLATED, -15)
    news = server.compress(b"* 4 EXISTS\r\n") + server.flush(zlib.Z_SYNC_FLUSH)
    proto.data_received(tag + b" OK DEFLATE active\r\n" + news)
    done = await asyncio.wait_for(asking, 5)
    assert done is not None and done.ok and proto.compressed
    assert [u.kind for u in proto.unsolicited] == ["EXISTS"]
    # What we send from now on is DEFLATE too.
    noop = asyncio.create_task(proto.run("NOOP"))
    while len(wire.sent) < 2:
        await asyncio.sleep(0)
    line = zlib.decompressobj(-15).decompress(wire.sent[1])
    assert line.endswith(b" NOOP\r\n")
    answer = line.split(b" ")[0] + b" OK done\r\n"
    proto.data_received(server.compress(answer) + server.flush(zlib.Z_SYNC_FLUSH))
    assert (await asyncio.wait_for(noop, 5)).ok


async def test_a_refused_compress_leaves_the_connection_plain() -> None:
    proto, _, asking, tag = await asking_to_compress()
    proto.data_received(tag + b" NO [COMPRESSIONACTIVE] no\r\n* 5 EXISTS\r\n")
    done = await asyncio.wait_for(asking, 5)
    assert done is not None and not done.ok
    assert not proto.compressed
    assert [u.kind for u in proto.unsolicited] == ["EXISTS"]


async def test_a_connection_that_knows_the_server_compresses_asks_with_its_login(
    imap_account: ImapAccount,
) -> None:
    """The store's own connection learns after its login that the server offers
    COMPRESS=DEFLATE (Dovecot does not say so before), and asks for it then.  A mailbox's
    connection after it knows: it sends its COMPRESS in the same write as its LOGIN, a round
    trip less, and reads its mailbox compressed."""
    srv.create_folder(imap_account, "Work")
    srv.append(imap_account, "Work", srv.make_message(1, "Work"), [])
    srv.append(imap_account, "INBOX", srv.make_message(2, "INBOX"), [])
    with fault_proxy(imap_account.port, record=True) as proxy:
        store = ImapStore(store_settings(replace(imap_account, port=proxy.port), compress=True))
        await store.connect()
        try:
            await store.list_folders()
            inbox = await store.open("INBOX")
            assert list((await inbox.listing()).keys) == ["1"]  # on the store's own
            work = await store.open("Work")
            assert list((await work.listing()).keys) == ["1"]  # on a connection of its own
            await work.close()
            await inbox.close()
        finally:
            await store.close()
        logins = [t for t in turns(proxy) if t[0].startswith("LOGIN")]
    assert [[line.split(" ", 1)[0] for line in t] for t in logins] == [
        ["LOGIN"],
        ["LOGIN", "COMPRESS"],
    ], logins
    assert proxy.connections == 2


@pytest.mark.parametrize("hang_up", [False, True], ids=["answers", "hangs-up"])
def test_a_refused_login_with_its_compress_is_a_refused_login(hang_up: bool) -> None:
    """LOGIN refused, the COMPRESS sent with it refused too (or never answered: the server
    hung up after the refusal): the error is the login's, said as such."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake\r\n")
            tags = [lines.readline().split(b" ", 1)[0] for _ in range(2)]
            conn.sendall(tags[0] + b" NO [AUTHENTICATIONFAILED] wrong password\r\n")
            if not hang_up:
                conn.sendall(tags[1] + b" BAD not logged in\r\n")
                lines.readline()

    threading.Thread(target=serve, daemon=True).start()

    async def run() -> None:
        settings = replace(fake_settings(listener.getsockname()[1]), compress=True)
        client = ImapClient(settings, known=frozenset({"COMPRESS=DEFLATE"}))
        with pytest.raises(AuthenticationFailed, match="wrong password"):
            await asyncio.wait_for(client.connect(), 10)

    try:
        asyncio.run(run())
    finally:
        listener.close()


def test_a_run_remembers_the_server_compresses_for_the_next_runs_first_login(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """The state keeps the capabilities the server showed after the login (``Store.memo``):
    the next run's first connection sends its COMPRESS with its LOGIN, a round trip less on
    every run.  The first run could not know (Dovecot lists it only after the login)."""
    s = make_setup(imap_account, tmp_path, compress=True)
    srv.append(s.imap, "INBOX", srv.make_message(1, "INBOX"))

    def login_turns(proxy: FaultProxy) -> list[list[str]]:
        return [
            [line.split(" ", 1)[0] for line in t] for t in turns(proxy) if t[0].startswith("LOGIN")
        ]

    with fault_proxy(s.imap.port, record=True) as proxy:
        assert not through(proxy, s).sync().failed
        first = login_turns(proxy)
        proxy.arm()
        srv.append(s.imap, "INBOX", srv.make_message(2, "INBOX"))
        assert not through(proxy, s).sync().failed
        second = login_turns(proxy)
    assert first[0] == ["LOGIN"], first
    assert second and all(t == ["LOGIN", "COMPRESS"] for t in second), second
    assert len(loc.messages(s.root, s.layout, "INBOX")) == 2
    assert_in_sync(s)
