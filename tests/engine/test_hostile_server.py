"""A server that answers badly, through a real socket and a whole account sync.

Each case serves three mailboxes (INBOX, Bad, Later) from ``fake_imap.FakeServer``;
only Bad misbehaves, at one message.  Whatever it does, the run must end (a hang
guard far above the command timeout), the account must not fail, INBOX and Later
must be synced byte for byte, the report must name Bad (and the message when only
the message is skipped), no message may be stored in a corrupted form, nothing may
be logged with a traceback, and memory must stay bounded (tracemalloc's peak, which
sees a 1 GB buffer even before its pages are touched).  Then the fault is removed and
a second run completes Bad: nothing was half recorded.

Also here: a ~300 MB message through ``mailtide sync`` as a subprocess, to a Maildir,
in bounded memory (the body goes through a temporary file, not through RAM).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import subprocess
import sys
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from structlog.testing import capture_logs

import maildir_helpers as loc
from fake_imap import Act, FakeMessage, FakeServer, Fault, fetch_response, serve
from mailtide.config.model import Account, Config, General, ImapRepository, MaildirRepository
from mailtide.engine.account import AccountReport
from mailtide.stores.imap.parse import SpooledLiteral
from mailtide.wiring import sync_account

TIMEOUT = 2.0  # the IMAP command timeout of these runs (seconds of silence)
GUARD = 60.0  # a run that takes longer than this hangs
MiB = 1 << 20


def message(uid: int, folder: str, size: int = 600) -> FakeMessage:
    head = (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {folder} {uid}\r\n"
        f"Message-ID: <{folder}.{uid}@hostile.test>\r\n\r\n"
    ).encode()
    line = f"line of {folder} {uid}\r\n".encode()
    return FakeMessage(uid, head + line * (size // len(line) + 1), ("\\Seen",))


def mailboxes() -> dict[str, list[FakeMessage]]:
    return {
        "INBOX": [message(i, "INBOX") for i in (1, 2, 3)],
        "Bad": [message(i, "Bad") for i in (1, 2, 3)],
        "Later": [message(i, "Later") for i in (1, 2)],
    }


def config_for(tmp: Path, port: int) -> Config:
    remote = ImapRepository(
        name="remote",
        host="127.0.0.1",
        port=port,
        user="u",
        password="p",
        tls="none",
        timeout=TIMEOUT,
    )
    local = MaildirRepository(name="local", path=tmp / "Mail", layout="fs")
    account = Account(name="test", local=local, remote=remote, retries=1, retry_delay=0.05)
    return Config(
        path=tmp / "config.toml",
        general=General(accounts=("test",), state_dir=tmp / "state"),
        accounts=(account,),
        repositories=(local, remote),
    )


@dataclass
class Outcome:
    report: AccountReport
    logs: list[dict[str, object]]
    peak: int  # bytes, tracemalloc


def run_sync(config: Config) -> Outcome:
    async def guarded() -> AccountReport:
        return await asyncio.wait_for(sync_account(config, config.accounts[0]), GUARD)

    tracemalloc.start()
    try:
        with capture_logs() as logs:
            report = asyncio.run(guarded())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Outcome(report, logs, peak)


def local_bodies(root: Path, folder: str) -> list[bytes]:
    return sorted(m.body for m in loc.messages(root, "fs", folder))


def lf(msg: FakeMessage) -> bytes:
    return msg.body.replace(b"\r\n", b"\n")


# ---- faults: what Bad sends instead of its message 2 ----------------------------------------

DATE = b'INTERNALDATE "01-Jan-2024 00:00:00 +0000"'


def body_head(seq: int, msg: FakeMessage, size: int | None = None) -> bytes:
    n = msg.length if size is None else size
    return b"* %d FETCH (UID %d FLAGS (\\Seen) %s BODY[] {%d}\r\n" % (seq, msg.uid, DATE, n)


def truncated_then_close(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    out.write(body_head(seq, msg) + msg.body[: len(msg.body) // 2])
    return Act.CLOSE


def wrong_length(delta: int) -> Fault:
    """The literal announced ``delta`` bytes longer (or shorter) than the body that follows:
    the reader takes bytes of the next response as body, or body bytes as the next line."""

    def fault(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
        out.write(body_head(seq, msg, msg.length + delta) + msg.body + b")\r\n")
        return Act.GO_ON

    return fault


def replaced(line: bytes) -> Fault:
    """The message's response replaced by ``line`` (``{body}`` becomes a literal of its body)."""

    def fault(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
        text = line.replace(b"{seq}", str(seq).encode())
        head, marker, tail = text.partition(b"{body}")
        if marker:
            text = head + b"{%d}\r\n" % msg.length + msg.body + tail
        out.write(text)
        return Act.GO_ON

    return fault


def bye(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    out.write(b"* BYE the server is shutting down\r\n")
    return Act.CLOSE


def gigabyte(then: Act) -> Fault:
    def fault(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
        out.write(body_head(seq, msg, 1_000_000_000) + b"x" * (4 * MiB))
        return then

    return fault


def trickle(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    """A 1 GB literal at 1 KB/s: never silent, never done."""
    out.write(body_head(seq, msg, 1_000_000_000))
    try:
        while True:
            out.write(b"y" * 100)
            time.sleep(0.1)
    except OSError:  # the client gave up
        return Act.CLOSE


def silent_mid_fetch(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    out.write(b"".join(fetch_response(seq, msg, "UID FLAGS BODY.PEEK[]"))[:200])
    return Act.HANG


def three_gib(out: BinaryIO, seq: int, msg: FakeMessage) -> Act:
    out.write(body_head(seq, msg, 3 << 30))
    return Act.HANG


ODD_FLAGS = b'(\\Seen foo] (bar "quoted" NIL)'


@dataclass(frozen=True)
class Case:
    name: str
    phase: str  # which FETCH of Bad's message 2 misbehaves
    fault: Fault
    expect: str  # "synced": nothing lost; "message": only message 2 skipped; "mailbox": Bad fails
    says: str = ""  # a word the report's line for Bad must hold


CASES = [
    Case(
        "truncated literal then close",
        "body",
        truncated_then_close,
        "mailbox",
        "closed by server in the middle of a literal (353 of 707 bytes received)",
    ),
    *(
        Case(
            f"literal {abs(d)} byte{'s' * (abs(d) > 1)} {'shorter' if d > 0 else 'longer'} "
            "than announced",
            "body",
            wrong_length(d),
            "mailbox",
        )
        for d in (1, 5, 100, -1, -7, -300)
    ),
    Case(
        "unknown FETCH items are ignored",
        "body",
        replaced(
            b'* {seq} FETCH (X-GM-THRID 17 UID 2 XYZZY (a (b) "c") FLAGS (\\Seen) '
            + DATE
            + b" X-EMPTY NIL BODY[] {body})\r\n"
        ),
        "synced",
    ),
    Case(
        "FETCH without UID",
        "body",
        replaced(b"* {seq} FETCH (FLAGS (\\Seen) " + DATE + b" BODY[] {body})\r\n"),
        "message",
        "UID 2",
    ),
    Case(
        "non-numeric UID",
        "body",
        replaced(b"* {seq} FETCH (UID two FLAGS (\\Seen) BODY[] {body})\r\n"),
        "message",
        "UID 2",
    ),
    Case(
        "unbalanced parentheses (one missing)",
        "body",
        replaced(b"* {seq} FETCH (UID 2 FLAGS (\\Seen BODY[] {body}\r\n"),
        "message",
        "UID 2",
    ),
    Case(
        "unbalanced parentheses (one too many)",
        "body",
        replaced(b"* {seq} FETCH (UID 2 FLAGS (\\Seen)) BODY[] {body})\r\n"),
        "message",
        "UID 2",
    ),
    Case(
        # the listing gives the sizes the bodies are batched by (none are asked again)
        "a size that is not a number",
        "listing",
        replaced(b"* {seq} FETCH (UID 2 FLAGS () RFC822.SIZE big)\r\n"),
        "mailbox",
        "do not parse",
    ),
    Case(
        "odd atoms in FLAGS of the listing",
        "listing",
        replaced(b"* {seq} FETCH (UID 2 FLAGS " + ODD_FLAGS + b" RFC822.SIZE 700)\r\n"),
        "mailbox",
        "do not parse",
    ),
    Case(
        "odd atoms in FLAGS of the body",
        "body",
        replaced(b"* {seq} FETCH (UID 2 FLAGS " + ODD_FLAGS + b" BODY[] {body})\r\n"),
        "message",
        "UID 2",
    ),
    Case(
        "control character in a flag",
        "listing",
        replaced(b"* {seq} FETCH (UID 2 FLAGS (\\Seen a\x01b) RFC822.SIZE 700)\r\n"),
        "mailbox",
        "do not parse",
    ),
    Case("BYE mid-command", "body", bye, "mailbox", "BYE the server is shutting down"),
    Case(
        "1 GB literal announced, then silence", "body", gigabyte(Act.HANG), "mailbox", "no answer"
    ),
    Case("1 GB literal announced, then close", "body", gigabyte(Act.CLOSE), "mailbox", "closed"),
    Case(
        "1 GB literal trickled at 1 KB/s",
        "body",
        trickle,
        "mailbox",
        "no answer from server for 2 s (FETCH command) in the middle of a literal",
    ),
    Case("server silent mid-FETCH", "body", silent_mid_fetch, "mailbox", "no answer"),
    Case("3 GiB literal announced", "body", three_gib, "mailbox", "limit"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_answer_costs_its_message_or_its_mailbox_only(case: Case, tmp_path: Path) -> None:
    boxes = mailboxes()
    server = FakeServer(boxes)
    server.faults[("Bad", 2, case.phase)] = case.fault
    with serve(server):
        config = config_for(tmp_path, server.port)
        first = run_sync(config)
        root = tmp_path / "Mail"
        report = first.report

        assert report.error is None, report.error
        for name in ("INBOX", "Later"):
            assert local_bodies(root, name) == sorted(lf(m) for m in boxes[name]), name
        by_name = {m.name: m for m in report.mailboxes}
        bad = by_name["Bad"]
        assert not by_name["INBOX"].error and not by_name["Later"].error
        stored = local_bodies(root, "Bad") if (root / "Bad").exists() else []
        # never a truncated or padded message: whatever was stored is exactly a server message
        assert set(stored) <= {lf(m) for m in boxes["Bad"]}
        if case.expect == "synced":
            assert bad.error is None and report.failures() == []
            assert stored == sorted(lf(m) for m in boxes["Bad"])
        else:
            assert bad.error is not None and "'Bad'" in bad.error, bad.error
            assert case.says in bad.error, bad.error
            assert "internal error" not in bad.error and "Traceback" not in bad.error
            assert report.failed and any("'Bad'" in line for line in report.failures())
        if case.expect == "message":
            assert stored == sorted(lf(m) for m in boxes["Bad"] if m.uid != 2)
        assert not [e for e in first.logs if e.get("exc_info")], "a traceback was logged"
        assert first.peak < 64 * MiB, f"peak traced memory {first.peak / MiB:.0f} MiB"

        # the server behaves again: the next run completes Bad and changes nothing else
        server.faults.clear()
        second = run_sync(config).report
    assert not second.failed, second.failures()
    for name in ("INBOX", "Bad", "Later"):
        assert local_bodies(root, name) == sorted(lf(m) for m in boxes[name]), name


def test_unknown_untagged_responses_anywhere_are_ignored(tmp_path: Path) -> None:
    """Before every response of every command: unknown kinds, one with a literal, a bare
    number, an empty one, an OK with an unknown code.  Everything still syncs."""
    boxes = mailboxes()
    chatter = (
        b'* XYZZY plugh (a "b" {3}\r\nabc)\r\n'
        b"* 7 WEIRD (1 2\r\n"
        b"* 12\r\n"
        b"* \r\n"
        b"* OK [XALERT 1] hm\r\n"
        b"* NO [UNKNOWN-CODE] something odd\r\n"
    )
    server = FakeServer(boxes, chatter=chatter)
    with serve(server):
        outcome = run_sync(config_for(tmp_path, server.port))
    assert not outcome.report.failed, outcome.report.failures()
    for name in boxes:
        assert local_bodies(tmp_path / "Mail", name) == sorted(lf(m) for m in boxes[name])


def test_another_clients_flag_changes_in_the_middle_of_our_fetches(tmp_path: Path) -> None:
    """A server may tell of another client's flag change at any time, also in the middle of
    our own FETCH (RFC 3501 7.4.2): a FETCH response with FLAGS only, among the sizes, the
    identities and the bodies we asked for.  It is news, not a broken answer (found by the
    daemon's soak test: it failed the mailbox)."""
    boxes = mailboxes()
    first = boxes["INBOX"][0]
    server = FakeServer(boxes, chatter=f"* 1 FETCH (UID {first.uid} FLAGS (\\Seen))\r\n".encode())
    with serve(server):
        outcome = run_sync(config_for(tmp_path, server.port))
        again = run_sync(config_for(tmp_path, server.port))  # identities and bodies asked again
    assert not outcome.report.failed, outcome.report.failures()
    assert not again.report.failed, again.report.failures()
    for name in boxes:
        assert local_bodies(tmp_path / "Mail", name) == sorted(lf(m) for m in boxes[name])


def test_spooled_bodies_are_released_once_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies above 1 MiB travel in temporary files: each is let go (its disk given back)
    as soon as its batch is delivered, without waiting for a garbage collection."""
    made: list[weakref.ref[SpooledLiteral]] = []
    init = SpooledLiteral.__init__

    def recording_init(self: SpooledLiteral, size: int) -> None:
        init(self, size)
        made.append(weakref.ref(self))

    monkeypatch.setattr(SpooledLiteral, "__init__", recording_init)
    boxes = {"INBOX": [message(i, "INBOX", size=3 * MiB) for i in range(1, 9)]}
    server = FakeServer(boxes)
    gc.disable()
    try:
        with serve(server):
            outcome = run_sync(config_for(tmp_path, server.port))
        alive = [ref() for ref in made if ref() is not None]
    finally:
        gc.enable()
    assert not outcome.report.failed, outcome.report.failures()
    assert local_bodies(tmp_path / "Mail", "INBOX") == sorted(lf(m) for m in boxes["INBOX"])
    assert len(made) == 8  # every body went through a file
    assert alive == []
    assert outcome.peak < 32 * MiB, f"peak traced memory {outcome.peak / MiB:.0f} MiB"


# ---- a ~300 MB message, end to end, as a process --------------------------------------------

BIG = 300 * MiB


def big_message_chunks() -> Iterator[bytes]:
    """A 300 MB message of CRLF lines, made on the fly (seeded, so two runs give the same)."""
    head = b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@hostile.test>\r\n\r\n"
    yield head
    left = BIG - len(head)
    block = b"".join(b"%07d " % i + b"y" * 70 + b"\r\n" for i in range(12000))  # ~0.96 MB
    while left > 0:
        piece = block[:left]
        yield piece
        left -= len(piece)


def lf_digest() -> tuple[str, int]:
    """SHA-256 and size of the big message in LF form (as a Maildir file holds it)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in big_message_chunks():
        data = chunk.replace(b"\r\n", b"\n")  # no chunk ends between CR and LF
        digest.update(data)
        size += len(data)
    return digest.hexdigest(), size


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_300_mb_message_reaches_the_maildir_in_bounded_memory(tmp_path: Path) -> None:
    boxes = {
        "INBOX": [
            message(1, "INBOX"),
            FakeMessage(2, flags=("\\Seen",), stream=big_message_chunks, size=BIG),
            message(3, "INBOX"),
        ]
    }
    server = FakeServer(boxes)
    with serve(server):
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[general]
state_dir = "{tmp_path / "state"}"

[account.test]
local = "local"
remote = "remote"

[repository.local]
type = "maildir"
path = "{tmp_path / "Mail"}"

[repository.remote]
type = "imap"
host = "127.0.0.1"
port = {server.port}
tls = "none"
user = "u"
password = "p"
timeout = 30
""",
            encoding="utf-8",
        )
        code = (
            "import resource, subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'mailtide', 'sync', '-c', sys.argv[1]],"
            " capture_output=True)\n"
            "sys.stderr.buffer.write(r.stdout + r.stderr)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(config)],
            capture_output=True,
            timeout=120,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    rss_mb = int(out.stdout.split()[-1]) / 1024
    folder = loc.folder_dir(tmp_path / "Mail", "fs", "INBOX")
    files = sorted(
        (p for d in ("cur", "new") for p in (folder / d).iterdir()), key=lambda p: p.stat().st_size
    )
    assert len(files) == 3, files
    digest, size = lf_digest()
    assert files[-1].stat().st_size == size
    assert file_digest(files[-1]) == digest
    assert rss_mb < 120, f"peak RSS {rss_mb:.0f} MB"


@pytest.mark.parametrize(
    "fault",
    [
        replaced(b"* {seq} FETCH (UID 2 BODY[HEADER] NIL RFC822.SIZE x)\r\n"),
        replaced(b"* {seq} FETCH (UID 2 RFC822.SIZE 700 BODY[HEADER] (a b))\r\n"),
        replaced(b"* {seq} XFETCH garbage\r\n"),
    ],
    ids=["garbage values", "a list for a header", "no FETCH at all"],
)
def test_an_unreadable_identity_never_uploads_a_duplicate(tmp_path: Path, fault: Fault) -> None:
    """Both sides hold the same three messages and no state: they are paired by content.  When
    the server's answer for one of them does not parse, that message must not be taken for
    new on the local side (uploaded again) nor for gone (deleted)."""
    boxes = mailboxes()
    root = tmp_path / "Mail"
    for m in boxes["Bad"]:
        loc.deliver(root, "fs", "Bad", m.body, "S")
    server = FakeServer(boxes)
    server.faults[("Bad", 2, "identify")] = fault
    with serve(server):
        config = config_for(tmp_path, server.port)
        first = run_sync(config).report
        assert [m.uid for m in boxes["Bad"]] == [1, 2, 3], "a message was uploaded twice"
        assert local_bodies(root, "Bad") == sorted(lf(m) for m in boxes["Bad"])
        server.faults.clear()
        second = run_sync(config).report
    assert first.error is None
    assert not second.failed, second.failures()
    assert [m.uid for m in boxes["Bad"]] == [1, 2, 3]
    assert local_bodies(root, "Bad") == sorted(lf(m) for m in boxes["Bad"])


@pytest.mark.parametrize(
    "fault",
    [replaced(b""), replaced(b"* {seq} FETCH (UID 2 FLAGS (\\Seen) RFC822.SIZE 700\r\n")],
    ids=["left out", "unparsable"],
)
def test_a_listing_that_misses_a_message_deletes_nothing(tmp_path: Path, fault: Fault) -> None:
    """After a complete sync, a listing without message 2 (no answer for it, or one that does not
    parse) must not read as message 2 expunged: its local copy stays."""
    boxes = mailboxes()
    server = FakeServer(boxes)
    root = tmp_path / "Mail"
    with serve(server):
        config = config_for(tmp_path, server.port)
        assert not run_sync(config).report.failed
        server.faults[("Bad", 2, "listing")] = fault
        report = run_sync(config).report
    assert local_bodies(root, "Bad") == sorted(lf(m) for m in boxes["Bad"])
    assert [m.uid for m in boxes["Bad"]] == [1, 2, 3]
    bad = {m.name: m for m in report.mailboxes}["Bad"]
    assert bad.error is not None and "'Bad'" in bad.error


def test_a_false_message_count_fails_its_mailbox_quickly(tmp_path: Path) -> None:
    """``* 4294967295 EXISTS`` for a mailbox of three: not 858,994 FETCH commands of 5,000
    messages each, and not a listing that takes the missing ones for deleted."""
    boxes = mailboxes()
    server = FakeServer(boxes, exists={"Bad": 4294967295})
    with serve(server):
        outcome = run_sync(config_for(tmp_path, server.port))
    bad = {m.name: m for m in outcome.report.mailboxes}["Bad"]
    assert bad.error is not None and "left out 4294967292 of its 4294967295" in bad.error
    assert outcome.peak < 64 * MiB, f"peak traced memory {outcome.peak / MiB:.0f} MiB"
    assert sum(c == "Bad FETCH" for c in server.commands) < 5
    for name in ("INBOX", "Later"):
        assert local_bodies(tmp_path / "Mail", name) == sorted(lf(m) for m in boxes[name])


def test_a_server_sending_far_more_than_it_announced_fails_the_mailbox(tmp_path: Path) -> None:
    """Batches of bodies are bounded by the sizes the server announced; one that announces
    10 bytes and sends 20 MB is cut off, rather than filling the disk with spooled bodies."""
    boxes = mailboxes()
    boxes["Bad"][1] = message(2, "Bad", size=20 * MiB)
    server = FakeServer(boxes)
    server.faults[("Bad", 2, "listing")] = replaced(
        b"* {seq} FETCH (UID 2 FLAGS () RFC822.SIZE 10)\r\n"
    )
    with serve(server):
        outcome = run_sync(config_for(tmp_path, server.port))
    bad = {m.name: m for m in outcome.report.mailboxes}["Bad"]
    assert bad.error is not None and "where it announced" in bad.error, bad.error
    stored = local_bodies(tmp_path / "Mail", "Bad") if (tmp_path / "Mail" / "Bad").exists() else []
    assert set(stored) <= {lf(m) for m in boxes["Bad"] if m.uid != 2}
    for name in ("INBOX", "Later"):
        assert local_bodies(tmp_path / "Mail", name) == sorted(lf(m) for m in boxes[name])
