"""The first sync of two sides that both already hold mail, through the real Dovecot.

A user switching to mailtide has a Maildir made by another tool (real mbsync with both of its
folder layouts, real OfflineIMAP) or a server and a Maildir filled independently.  The first
``mailtide sync``, without any state, must pair every message that is on both sides (no
download, no upload: the same local files, by inode and name, and the same server UIDs), copy
only the differences, and leave nothing for a second run to do.
"""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from courier import Courier
from dovecot import ImapAccount
from engine_helpers import Setup, make_setup

SEEN, ANSWERED, FLAGGED, DRAFT = "\\Seen", "\\Answered", "\\Flagged", "\\Draft"
mid = srv.message_id

# What the server holds when the other tool makes its Maildir.  mbsync 1.4 and OfflineIMAP keep
# a non-ASCII name as IMAP sends it: the directory of "Entwürfe" is "Entw&APw-rfe", which the
# first mailtide run renames to "Entwürfe" (the same files) and pairs with the server's folder.
SERVER = {
    "INBOX": [
        (1, [SEEN]),
        (2, [SEEN, FLAGGED]),
        (3, []),
        (4, [SEEN]),
        (5, [SEEN, "Work"]),  # a keyword neither mbsync 1.4 nor OfflineIMAP copies
        (6, [DRAFT]),
    ],
    "Archive/2024": [(11, [SEEN]), (12, [SEEN, ANSWERED]), (13, [])],
    "Lists/Debian": [(21, [SEEN]), (22, [])],
    "Entwürfe": [(61, [DRAFT, SEEN]), (62, [])],
    "Archiv/Entwürfe": [(71, [SEEN])],
}


def raw_names(folders: Iterable[str]) -> list[str]:
    """The local folders the other tool makes: the server's names in modified UTF-7, sorted."""
    return sorted(srv._mutf7_encode(f) for f in folders)


# the marks other synchronisers put in their copies: mbsync's in every message it copied (to the
# Maildir or to the server), OfflineIMAP's in what it uploaded to a server without UIDPLUS
COPY_MARKS = re.compile(rb"(?m)^(?:X-TUID|X-OfflineIMAP): [^\n]*\n")


def dovecot_name(folder: str) -> str:
    return folder


def courier_name(folder: str) -> str:
    """Courier's name of a folder: "INBOX.Archive.2024" for "Archive/2024"."""
    return "INBOX" if folder == "INBOX" else "INBOX." + folder.replace("/", ".")


def canonical(raw: str) -> str:
    """A listed folder's canonical name on either server (Dovecot's names are canonical)."""
    return raw[len("INBOX.") :].replace(".", "/") if raw.startswith("INBOX.") else raw


def server_append(
    c: imaplib.IMAP4, name: Callable[[str], str], folder: str, i: int, flags: list[str]
) -> None:
    if folder != "INBOX":
        c.create(srv._quote(name(folder)))  # one that exists already is fine
    message = srv.make_message(i, folder)
    srv._ok(c.append(srv._quote(name(folder)), srv._flag_list(flags), None, message))


@dataclass(frozen=True, slots=True)
class LocalFile:
    folder: str
    name: str
    message_id: str
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class Held:
    """Who holds what: local files by inode, server messages by (folder, UID)."""

    local: dict[int, LocalFile]
    server: dict[tuple[str, int], str]


def local_flags_of(s: Setup, folder: str, msg: loc.LocalMessage) -> frozenset[str]:
    return loc.imap_flags(msg, loc.keyword_names(s.root, s.layout, folder))


def held(s: Setup) -> Held:
    local = {}
    for folder in loc.folders(s.root, s.layout):
        for m in loc.messages(s.root, s.layout, folder):
            local[m.path.stat().st_ino] = LocalFile(
                folder, m.path.name, m.message_id, local_flags_of(s, folder, m)
            )
    server = {}
    with srv.session(s.imap) as c:
        for folder in srv.list_folders(s.imap, c, selectable=True):
            for sm in srv.fetch_all(s.imap, folder, imap=c):
                server[(canonical(folder), sm.uid)] = sm.message_id
    return Held(local, server)


def assert_same_everywhere(s: Setup, twins: frozenset[str] = frozenset()) -> None:
    """Both sides hold the same folders and messages (each once, but ``twins``: twice), with
    the same flags and the same bytes but line ends and mbsync's X-TUID (on either side)."""
    with srv.session(s.imap) as c:
        server = {
            canonical(f): srv.fetch_all(s.imap, f, imap=c)
            for f in srv.list_folders(s.imap, c, selectable=True)
        }
    local = {f: loc.messages(s.root, s.layout, f) for f in loc.folders(s.root, s.layout)}
    assert sorted(f for f in server if server[f]) == sorted(f for f in local if local[f])
    for folder, msgs in server.items():
        lmsgs = local.get(folder, [])
        r_ids = Counter(m.message_id for m in msgs)
        l_ids = Counter(m.message_id for m in lmsgs)
        assert r_ids == l_ids, folder
        for message_id, n in r_ids.items():
            assert n == (2 if message_id in twins else 1), (folder, message_id, n)
        r = sorted(
            (m.message_id, sorted(m.flags), COPY_MARKS.sub(b"", m.body.replace(b"\r\n", b"\n")))
            for m in msgs
        )
        lo = sorted(
            (m.message_id, sorted(local_flags_of(s, folder, m)), COPY_MARKS.sub(b"", m.body))
            for m in lmsgs
        )
        assert r == lo, folder


def quiet(s: Setup) -> None:
    before = held(s)
    report = s.sync()
    assert not report.failed, report
    assert all(not any(m.summary().values()) for m in report.mailboxes), report
    assert held(s) == before, "a second run changed something"


def fill_server(acc: ImapAccount, name: Callable[[str], str] = dovecot_name) -> None:
    with srv.session(acc) as c:
        for folder, msgs in SERVER.items():
            for i, flags in msgs:
                server_append(c, name, folder, i, flags)


def change_both_sides(
    s: Setup, name: Callable[[str], str] = dovecot_name
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """After the other tool's last run: new mail on both sides, flags set on both sides (set
    only: without state a cleared flag cannot be told from one the other side set).  Returns
    (what must be uploaded, what must be downloaded) as (folder, Message-ID)."""
    with srv.session(s.imap) as c:
        server_append(c, name, "INBOX", 7, [])
        server_append(c, name, "INBOX", 8, [SEEN])
        server_append(c, name, "Archive/2024", 14, [SEEN])
    srv.set_flags(s.imap, "INBOX", mid(3, "INBOX"), [FLAGGED])
    # another client deleted one on the server: without state nothing says it was a deletion,
    # so the local copy (with mbsync's mark when mbsync wrote it) goes up again
    srv.expunge(s.imap, name("Archive/2024"), mid(13, "Archive/2024"))
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(31, "INBOX"), "")
    loc.deliver(s.root, s.layout, "INBOX", srv.make_message(32, "INBOX"), "S")
    loc.deliver(s.root, s.layout, "Lists/Debian", srv.make_message(33, "Lists/Debian"), "S")
    loc.deliver(s.root, s.layout, "Lokal", srv.make_message(41, "Lokal"), "F")
    inbox = loc.by_message_id(s.root, s.layout, "INBOX")
    loc.set_letters(inbox[mid(1, "INBOX")], "FS")
    loc.set_letters(inbox[mid(4, "INBOX")], "RS")
    uploads = {
        ("INBOX", mid(31, "INBOX")),
        ("INBOX", mid(32, "INBOX")),
        ("Lists/Debian", mid(33, "Lists/Debian")),
        ("Lokal", mid(41, "Lokal")),
        ("Archive/2024", mid(13, "Archive/2024")),
    }
    downloads = {
        ("INBOX", mid(7, "INBOX")),
        ("INBOX", mid(8, "INBOX")),
        ("Archive/2024", mid(14, "Archive/2024")),
    }
    return uploads, downloads


def check_kept(
    before: Held, after: Held, uploads: set[tuple[str, str]], downloads: set[tuple[str, str]]
) -> None:
    """Every local file is still there (same inode, same folder, but one the other tool named
    in modified UTF-7 now under its Unicode name, same file name unless its flags changed, then
    the same unique part), every server UID still holds its message, and the only new ones on
    each side are ``downloads`` and ``uploads`` (folder, Message-ID)."""
    for inode, was in before.local.items():
        now = after.local.get(inode)
        assert now is not None, f"local file {was.name} in {was.folder} replaced or deleted"
        folder = srv._mutf7_decode(was.folder)
        assert (now.folder, now.message_id) == (folder, was.message_id)
        if now.flags == was.flags:
            assert now.name == was.name, f"{was.name} renamed though its flags did not change"
        else:
            assert now.name.split(":2,")[0] == was.name.split(":2,")[0], now.name
    new_local = {(f.folder, f.message_id) for i, f in after.local.items() if i not in before.local}
    assert new_local == downloads

    for key, message_id in before.server.items():
        assert after.server.get(key) == message_id, f"server UID {key} changed or gone"
    new_server = {(k[0], m) for k, m in after.server.items() if k not in before.server}
    assert new_server == uploads


def first_sync_pairs(
    s: Setup, uploads: set[tuple[str, str]], downloads: set[tuple[str, str]]
) -> None:
    """The first mailtide run: pairs what both sides hold, copies only ``uploads`` and
    ``downloads``, keeps every local file (inode, and name unless its flags changed) and every
    server UID; a second run changes nothing."""
    before = held(s)
    report = s.sync()
    assert not report.failed, report
    after = held(s)

    copied_up = sum(m.summary()["new_remote"] for m in report.mailboxes)
    copied_down = sum(m.summary()["new_local"] for m in report.mailboxes)
    assert (copied_up, copied_down) == (len(uploads), len(downloads)), report

    check_kept(before, after, uploads, downloads)

    assert_same_everywhere(s)
    # flags set on one side reached the other
    inbox = {m.message_id: m.flags for m in srv.fetch_all(s.imap, "INBOX")}
    assert inbox[mid(1, "INBOX")] == {SEEN, FLAGGED}
    assert inbox[mid(4, "INBOX")] == {SEEN, ANSWERED}
    local = loc.by_message_id(s.root, s.layout, "INBOX")
    assert local_flags_of(s, "INBOX", local[mid(3, "INBOX")]) == {FLAGGED}
    assert local_flags_of(s, "INBOX", local[mid(5, "INBOX")]) == {SEEN, "Work"}
    quiet(s)


# ---- (a) a Maildir made by mbsync -------------------------------------------------------------

MBSYNC_SUBFOLDERS = {"fs": "Verbatim", "maildir++": "Maildir++"}


def run_mbsync(s: Setup) -> None:
    subfolders = MBSYNC_SUBFOLDERS[s.layout]
    # Verbatim: INBOX and folders side by side under the root (mailtide's "fs"); Maildir++:
    # INBOX is the root and a folder is <root>/.A.B (mbsync then refuses a Path).
    store = (
        [f"Path {s.root}/", f"Inbox {s.root / 'INBOX'}"]
        if subfolders == "Verbatim"
        else [f"Inbox {s.root}"]
    )
    rc = s.root.parent / "mbsyncrc"
    rc.write_text(
        "\n".join(
            [
                "IMAPAccount test",
                f"Host {s.imap.host}",
                f"Port {s.imap.port}",
                f"User {s.imap.user}",
                f"Pass {s.imap.password}",
                "SSLType None",
                "AuthMechs LOGIN",
                "",
                "IMAPStore remote",
                "Account test",
                "",
                "MaildirStore local",
                *store,
                f"SubFolders {subfolders}",
                "",
                "Channel test",
                "Far :remote:",
                "Near :local:",
                "Patterns *",
                "Create Both",
                "SyncState *",
                "Sync All",
                "",
            ]
        )
    )
    result = subprocess.run(
        ["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def have(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/deps.sh installs it)")


@pytest.mark.parametrize("layout", ["fs", "maildir++"])
def test_maildir_made_by_mbsync(imap_account: ImapAccount, tmp_path: Path, layout: str) -> None:
    have("mbsync")
    s = make_setup(imap_account, tmp_path, layout)
    fill_server(s.imap)
    # mail that mbsync uploads: the server's copy is the one mbsync may have marked
    loc.deliver(s.root, layout, "INBOX", srv.make_message(9, "INBOX"), "S")
    loc.deliver(s.root, layout, "Archive/2024", srv.make_message(19, "Archive/2024"), "")
    run_mbsync(s)
    # mbsync's own files are there, and the tree is what mailtide's layout expects
    inbox_dir = loc.folder_dir(s.root, layout, "INBOX")
    assert (inbox_dir / ".uidvalidity").exists() and (inbox_dir / ".mbsyncstate").exists()
    assert sorted(loc.folders(s.root, layout)) == raw_names(SERVER)
    on_server = {m.message_id: m for m in srv.fetch_all(s.imap, "INBOX")}
    assert mid(9, "INBOX") in on_server, "mbsync did not upload"
    assert any(COPY_MARKS.search(m.body.replace(b"\r\n", b"\n")) for m in on_server.values())
    assert all(",U=" in m.path.name for m in loc.messages(s.root, layout, "INBOX"))
    first_sync_pairs(s, *change_both_sides(s))


# ---- (b) a Maildir made by OfflineIMAP ----------------------------------------------------------


def run_offlineimap(s: Setup, courier: bool = False) -> None:
    """OfflineIMAP with "/" as its local separator, so its tree is mailtide's "fs" layout; on
    Courier with the usual nametrans that drops the "INBOX." namespace both ways."""
    local_trans = remote_trans = ""
    if courier:
        local_trans = 'nametrans = lambda f: f if f == "INBOX" else "INBOX/" + f\n'
        remote_trans = 'nametrans = lambda f: f[6:] if f.startswith("INBOX.") else f\n'
    rc = s.root.parent / "offlineimaprc"
    rc.write_text(
        f"""[general]
accounts = test
metadata = {s.root.parent / "offlineimap"}

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {s.root}
sep = /
{local_trans}
[Repository remote]
type = IMAP
remotehost = {s.imap.host}
remoteport = {s.imap.port}
remoteuser = {s.imap.user}
remotepass = {s.imap.password}
ssl = no
starttls = no
{remote_trans}"""
    )
    result = subprocess.run(
        ["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(s.root.parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_maildir_made_by_offlineimap(imap_account: ImapAccount, tmp_path: Path) -> None:
    have("offlineimap")
    s = make_setup(imap_account, tmp_path, "fs")
    fill_server(s.imap)
    run_offlineimap(s)
    assert sorted(loc.folders(s.root, "fs")) == raw_names(SERVER)
    names = [m.path.name for m in loc.messages(s.root, "fs", "INBOX")]
    assert names and all(",U=" in n and ",FMD5=" in n for n in names), names
    first_sync_pairs(s, *change_both_sides(s))


def test_maildir_made_by_offlineimap_on_a_server_without_uidplus(
    courier: Courier, tmp_path: Path
) -> None:
    """OfflineIMAP marks what it uploads to a server without UIDPLUS (X-OfflineIMAP in the
    server's copy only); those messages pair all the same."""
    have("offlineimap")
    s = make_setup(courier.account(f"adopt{os.getpid()}"), tmp_path, "fs")
    fill_server(s.imap, courier_name)
    loc.deliver(s.root, "fs", "INBOX", srv.make_message(9, "INBOX"), "S")
    loc.deliver(s.root, "fs", "Archive/2024", srv.make_message(19, "Archive/2024"), "")
    run_offlineimap(s, courier=True)
    assert sorted(loc.folders(s.root, "fs")) == raw_names(SERVER)
    uploaded = {m.message_id: m.body for m in srv.fetch_all(s.imap, "INBOX")}[mid(9, "INBOX")]
    assert b"\r\nX-OfflineIMAP: " in uploaded, "OfflineIMAP did not mark its upload"
    first_sync_pairs(s, *change_both_sides(s, courier_name))


# ---- (c) a server and a Maildir filled independently -----------------------------------------


def body_variant(i: int, folder: str, change: Callable[[bytes], bytes]) -> bytes:
    """Message ``i`` with the same header section and another body."""
    message = srv.make_message(i, folder)
    head, sep, body = message.partition(b"\r\n\r\n")
    return head + sep + change(body)


def test_same_mail_filled_independently(imap_account: ImapAccount, tmp_path: Path) -> None:
    s = make_setup(imap_account, tmp_path, "fs")
    shared = {
        "INBOX": [(i, [SEEN] if i % 2 else []) for i in range(1, 9)],
        "Archive": [(i, [SEEN, ANSWERED]) for i in range(11, 15)],
    }
    big = srv.make_message(20, "Archive", size=300_000)  # beyond one read and BODY_PREFIX
    with srv.session(s.imap) as c:
        for folder, msgs in shared.items():
            for i, flags in msgs:
                srv.append(s.imap, folder, srv.make_message(i, folder), flags, imap=c)
        srv.append(s.imap, "Archive", big, [SEEN], imap=c)
    for folder, msgs in shared.items():
        for i, flags in msgs:
            # the local copy as a delivery agent writes it: LF line ends, flags its own
            letters = "S" if SEEN in flags else ""
            loc.deliver(s.root, "fs", folder, srv.make_message(i, folder), letters)
    loc.deliver(s.root, "fs", "Archive", big, "S")

    # twins in name only: the same header section, another body; each side holds one version
    # (one pair the same size, one not), so pairing them would lose a version on each side
    originals = {i: srv.make_message(i, "INBOX") for i in (51, 52)}
    same_size = body_variant(51, "INBOX", lambda b: b.replace(b"Hello", b"Howdy"))
    longer = body_variant(52, "INBOX", lambda b: b + b"P.S. one more line\r\n")
    assert len(same_size) == len(originals[51])
    with srv.session(s.imap) as c:
        srv.append(s.imap, "INBOX", originals[51], [SEEN], imap=c)
        srv.append(s.imap, "INBOX", longer, [SEEN], imap=c)
    loc.deliver(s.root, "fs", "INBOX", same_size, "S")
    loc.deliver(s.root, "fs", "INBOX", originals[52], "S")
    before = held(s)

    report = s.sync()
    assert not report.failed, report
    summary = Counter[str]()
    for m in report.mailboxes:
        summary.update(m.summary())
    assert (summary["new_remote"], summary["new_local"]) == (2, 2), report
    assert summary["paired"] == 8 + 4 + 1, report
    # the only copies are the variants; \Answered came down to Archive by renames
    variants = {("INBOX", mid(51, "INBOX")), ("INBOX", mid(52, "INBOX"))}
    check_kept(before, held(s), variants, variants)
    assert_same_everywhere(s, twins=frozenset({mid(51, "INBOX"), mid(52, "INBOX")}))
    local = [m.body for m in loc.messages(s.root, "fs", "INBOX")]
    for version in (*originals.values(), same_size, longer):
        assert version.replace(b"\r\n", b"\n") in local
    quiet(s)
