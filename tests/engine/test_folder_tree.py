"""The folder tree against the real Dovecot: a folder renamed on one side is renamed on the
other (recognised by its identity, not its name, and without moving a body), a folder deleted
on one side follows ``folder_delete``, folders made on the server are subscribed to and
``subscribed_only`` leaves the others out, and a naming change renames a local directory."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from engine_helpers import Setup, assert_in_sync, run_forked, write_config
from fault_proxy import fault_proxy
from mailtide.engine.folder_policy import FolderNaming, FolderPolicy
from mailtide.engine.pair import Options
from mailtide.engine.run import sync_stores
from mailtide.wiring import filters_of, open_state, open_store, retry_of

BIG = 20_000  # bytes of each message: a body crossing the wire would stand out in the count

# Projekte/Alpha (with a child, non-ASCII) becomes Archiv/Älteres, into another synced folder.
BEFORE = ["INBOX", "Projekte", "Projekte/Alpha", "Projekte/Alpha/Entwürfe", "Archiv"]
AFTER = ["INBOX", "Projekte", "Archiv/Älteres", "Archiv/Älteres/Entwürfe", "Archiv"]


def fill(s: Setup, folders: list[str], per_folder: int = 2, size: int = BIG) -> None:
    with srv.session(s.imap) as c:
        for n, folder in enumerate(folders):
            for i in range(per_folder):
                srv.append(s.imap, folder, srv.make_message(10 * n + i, folder, size), imap=c)


def synced(s: Setup) -> None:
    report = s.sync()
    assert not report.failed and not report.stranded, report


def local_inodes(s: Setup) -> dict[str, int]:
    """Message-ID -> inode of its local file, over every folder."""
    return {
        m.message_id: m.path.stat().st_ino
        for f in loc.folders(s.root, s.layout)
        for m in loc.messages(s.root, s.layout, f)
    }


def server_uids(s: Setup) -> dict[str, int]:
    """Message-ID -> UID on the server, over every folder."""
    with srv.session(s.imap) as c:
        return {
            m.message_id: m.uid
            for f in srv.list_folders(s.imap, c, selectable=True)
            for m in srv.fetch_all(s.imap, f, imap=c)
        }


def rename_locally(s: Setup, old: str, new: str) -> None:
    """As a user renames a folder with its children: one directory (fs), or each .A.B one."""
    if s.layout == "fs":
        os.rename(s.root / old, s.root / new)
        return
    for entry in sorted(s.root.iterdir()):
        dotted = "." + old.replace("/", ".")
        if entry.name == dotted or entry.name.startswith(dotted + "."):
            rest = entry.name[len(dotted) :]
            entry.rename(s.root / ("." + new.replace("/", ".") + rest))


def rename_on_server(s: Setup, old: str, new: str) -> None:
    with srv.session(s.imap) as c:
        srv._ok(c.rename(srv._quote(old), srv._quote(new)))


def sync_through_proxy(s: Setup) -> tuple[int, bytes]:
    """A sync whose IMAP traffic passes a recording proxy: (bytes in both ways, what came
    down)."""
    with fault_proxy(s.imap.port, record=True) as proxy:
        remote = replace(s.account.remote, port=proxy.port)
        report = s.with_account(remote=remote).sync()
        assert not report.failed and not report.stranded, report
        return proxy.total["up"] + proxy.total["down"], proxy.stream("down")


@pytest.mark.parametrize("renamed_on", ["server", "local"])
def test_a_renamed_folder_is_renamed_on_the_other_side_without_moving_a_message(
    setup: Setup, renamed_on: str
) -> None:
    s = setup
    fill(s, BEFORE)
    synced(s)
    uids, inodes = server_uids(s), local_inodes(s)
    if renamed_on == "server":
        rename_on_server(s, "Projekte/Alpha", "Archiv/Älteres")
    else:
        rename_locally(s, "Projekte/Alpha", "Archiv/Älteres")

    traffic, down = sync_through_proxy(s)

    assert sorted(srv.list_folders(s.imap, selectable=True)) == sorted(AFTER)
    assert loc.folders(s.root, s.layout) == sorted(AFTER)
    assert_in_sync(s)
    # the same UIDs and the same files: nothing was copied, and no body crossed the wire
    assert server_uids(s) == uids
    assert local_inodes(s) == inodes
    assert b"Hello, this is message" not in down
    assert traffic < BIG, traffic
    report = s.sync()
    assert not any(any(m.summary().values()) for m in report.mailboxes), report


def test_a_renamed_maildir_folder_keeps_its_id_file(fs_setup: Setup) -> None:
    """The id that recognises a folder is the file mailtide gave it, private, and a rename
    carries it (it is what tells the folder from a new one of the same content)."""
    s = fs_setup
    fill(s, ["Projekte"], size=500)
    synced(s)
    id_file = s.root / "Projekte" / ".mailtide-id"
    assert id_file.stat().st_mode & 0o777 == 0o600
    before = id_file.read_text()
    rename_locally(s, "Projekte", "Projects")
    synced(s)
    assert (s.root / "Projects" / ".mailtide-id").read_text() == before
    assert srv.list_folders(s.imap, selectable=True) == ["INBOX", "Projects"]


def test_a_rename_onto_a_name_the_other_side_has_is_reported_and_nothing_moves(
    fs_setup: Setup,
) -> None:
    s = fs_setup
    fill(s, ["Alt"], size=500)
    synced(s)
    fill(s, ["Neu"], per_folder=1, size=500)  # only on the server
    rename_locally(s, "Alt", "Neu")
    for _ in range(2):
        report = s.sync()
        said = " ".join(report.stranded)
        assert "'Alt' was renamed to 'Neu' on the local side" in said, said
        assert "has a folder 'Neu' already" in said, said
    assert srv.list_folders(s.imap, selectable=True) == ["Alt", "INBOX", "Neu"]
    assert len(srv.fetch_all(s.imap, "Alt")) == 2 and len(srv.fetch_all(s.imap, "Neu")) == 1
    assert loc.folders(s.root, "fs") == ["INBOX", "Neu"]
    assert len(loc.messages(s.root, "fs", "Neu")) == 2


# ---- deletion --------------------------------------------------------------------------------


def delete_on(s: Setup, side: str, folder: str) -> None:
    if side == "server":
        with srv.session(s.imap) as c:
            srv._ok(c.delete(srv._quote(folder)))
    else:
        shutil.rmtree(loc.folder_dir(s.root, s.layout, folder))


@pytest.mark.parametrize(
    ("mode", "deleted_on", "messages", "propagated"),
    [
        ("propagate-if-empty", "server", 0, True),
        ("propagate-if-empty", "local", 0, True),
        ("propagate-if-empty", "local", 2, False),
        ("propagate", "server", 2, True),
        ("propagate", "local", 2, True),
        ("propagate", "local", 12, False),  # above the mass-delete floor
        ("never", "server", 0, False),
        ("never", "local", 2, False),
    ],
)
def test_a_folder_deleted_on_one_side(
    fs_setup: Setup, mode: str, deleted_on: str, messages: int, propagated: bool
) -> None:
    s = fs_setup.with_account(folder_delete=mode)
    srv.create_folder(s.imap, "Alt")
    fill(s, ["Alt"], per_folder=messages, size=500)
    fill(s, ["INBOX"], per_folder=1, size=500)
    synced(s)
    delete_on(s, deleted_on, "Alt")
    report = s.sync()
    assert not report.failed, report
    other_has = (
        "Alt" in loc.folders(s.root, "fs")
        if deleted_on == "server"
        else "Alt" in srv.list_folders(s.imap)
    )
    assert other_has is not propagated
    said = " ".join(report.stranded)
    if propagated:
        assert not report.stranded, said
        assert_in_sync(s)
    else:
        assert "'Alt' is gone from the" in said, said
        assert "neither re-created nor deleted" in said, said
    assert len(srv.fetch_all(s.imap, "INBOX")) == 1  # the rest of the account is untouched
    if not propagated and messages == 12:
        assert "mass deletion" in said and "--allow-mass-delete" in said, said
        report = s.sync(allow_mass_delete=True)
        assert not report.stranded, report
        assert "Alt" not in srv.list_folders(s.imap)


def test_a_folder_with_mail_that_arrived_since_is_not_deleted_with_propagate(
    fs_setup: Setup,
) -> None:
    s = fs_setup.with_account(folder_delete="propagate")
    fill(s, ["Alt"], size=500)
    synced(s)
    delete_on(s, "local", "Alt")
    srv.append(s.imap, "Alt", srv.make_message(99, "Alt"))  # never seen locally
    report = s.sync()
    said = " ".join(report.stranded)
    assert "1 message in it arrived since the last sync" in said, said
    assert len(srv.fetch_all(s.imap, "Alt")) == 3


def test_a_pair_deleted_on_both_sides_is_forgotten_and_may_come_back(fs_setup: Setup) -> None:
    s = fs_setup
    fill(s, ["Alt"], size=500)
    synced(s)
    delete_on(s, "server", "Alt")
    delete_on(s, "local", "Alt")
    synced(s)
    fill(s, ["Alt"], per_folder=1, size=500)  # a new folder of the old name
    synced(s)
    assert loc.folders(s.root, "fs") == ["Alt", "INBOX"]
    assert_in_sync(s)


# ---- subscriptions ---------------------------------------------------------------------------


def subscribed(s: Setup) -> set[str]:
    with srv.session(s.imap) as c:
        typ, data = c.lsub('""', "*")
        assert typ == "OK", data
        return {srv._mutf7_decode(d.rsplit(b" ", 1)[1].strip(b'"').decode()) for d in data if d}


def test_a_folder_made_on_the_server_is_subscribed_and_subscribed_only_leaves_others_out(
    fs_setup: Setup,
) -> None:
    s = fs_setup.with_account(subscribed_only=True)
    fill(s, ["INBOX", "Abonniert", "Nicht"], per_folder=1, size=500)
    with srv.session(s.imap) as c:  # INBOX is not subscribed to, and synced all the same
        srv._ok(c.subscribe(srv._quote("Abonniert")))
    loc.deliver(s.root, "fs", "Lokal", srv.make_message(1, "Lokal"))
    synced(s)
    assert "Lokal" in subscribed(s)
    assert loc.folders(s.root, "fs") == ["Abonniert", "INBOX", "Lokal"]
    assert len(loc.messages(s.root, "fs", "INBOX")) == 1
    # unsubscribed later: left out, never deleted on either side
    with srv.session(s.imap) as c:
        srv._ok(c.unsubscribe(srv._quote("Abonniert")))
    synced(s)
    assert "Abonniert" in loc.folders(s.root, "fs")
    assert len(srv.fetch_all(s.imap, "Abonniert")) == 1


# ---- a naming change ---------------------------------------------------------------------------


def sync_named(s: Setup, naming: FolderNaming, stranded: bool = False) -> list[str]:
    """A run with ``naming``; what it stranded (none unless ``stranded``)."""

    async def run() -> list[str]:
        stores = (await open_store(s.account.remote), await open_store(s.account.local))
        state = await open_state(s.config, s.account)
        try:
            report = await sync_stores(
                "test",
                stores,
                filters_of(s.account),
                state,
                Options(),
                retry_of(s.account),
                folder_policy=FolderPolicy(naming=naming),
            )
            assert not report.failed and (stranded or not report.stranded), report
            return report.stranded
        finally:
            await state.close()
            for store in stores:
                await store.close()

    return asyncio.run(run())


def lower(name: str) -> str:
    return name if name == "INBOX" else name.lower()


def test_a_naming_change_renames_the_local_directory_instead_of_copying(setup: Setup) -> None:
    s = setup
    fill(s, ["Work", "Work/Clients"])
    synced(s)
    inodes = local_inodes(s)
    naming = FolderNaming(local=lower, remote=lambda n: n if n == "INBOX" else n.title())
    sync_named(s, naming)
    assert loc.folders(s.root, s.layout) == ["INBOX", "work", "work/clients"]
    assert srv.list_folders(s.imap, selectable=True) == ["INBOX", "Work", "Work/Clients"]
    assert local_inodes(s) == inodes
    # a new server folder arrives under its mapped name, a new local one goes up under its own
    fill(s, ["Work/Neu"], per_folder=1, size=500)
    loc.deliver(s.root, s.layout, "work/lokal", srv.make_message(1, "lokal"))
    sync_named(s, naming)
    assert "work/neu" in loc.folders(s.root, s.layout)
    assert "Work/Lokal" in srv.list_folders(s.imap)
    assert len(loc.messages(s.root, s.layout, "work/clients")) == 2


def test_a_dry_run_says_it_would_rename_and_changes_nothing(fs_setup: Setup) -> None:
    s = fs_setup
    fill(s, ["Alt"], size=500)
    synced(s)
    rename_on_server(s, "Alt", "Neu")
    code, out = run_forked(write_config(s), "--dry-run")
    assert code == 0, out
    assert "folder.would_rename" in out and "would_delete" not in out, out
    assert "would_create" not in out, out
    assert loc.folders(s.root, "fs") == ["Alt", "INBOX"]
    synced(s)
    assert loc.folders(s.root, "fs") == ["INBOX", "Neu"]


def test_a_folder_a_side_cannot_read_now_is_not_taken_for_deleted(
    fs_setup: Setup, tmp_path: Path
) -> None:
    """A local folder replaced by a symlink out of the root is refused when listed: its pair
    is not "gone", so not even ``propagate`` deletes the server's folder."""
    s = fs_setup.with_account(folder_delete="propagate")
    fill(s, ["Alt"], size=500)
    synced(s)
    aside = tmp_path / "elsewhere"
    os.rename(s.root / "Alt", aside)
    (s.root / "Alt").symlink_to(aside)
    report = s.sync()
    said = " ".join(report.stranded)
    assert "local folder 'Alt' is not synced" in said, said
    assert "gone" not in said, said
    assert len(srv.fetch_all(s.imap, "Alt")) == 2


def test_a_rename_the_server_gives_a_new_uidvalidity_re_pairs_by_content(
    fs_setup: Setup,
) -> None:
    """Locally renamed, while on the server the folder came back under the new name with a new
    UIDVALIDITY (as a server that does not keep it across RENAME leaves it): the pairing follows
    the local id, the messages are re-paired by content, none is downloaded or uploaded."""
    s = fs_setup
    fill(s, ["Alt"])
    synced(s)
    inodes = local_inodes(s)
    rename_locally(s, "Alt", "Neu")
    old = srv.fetch_all(s.imap, "Alt")
    with srv.session(s.imap) as c:
        srv._ok(c.delete(srv._quote("Alt")))
        for m in old:
            srv.append(s.imap, "Neu", m.body, m.flags, imap=c)

    traffic, _ = sync_through_proxy(s)

    assert srv.list_folders(s.imap) == ["INBOX", "Neu"]
    assert local_inodes(s) == inodes
    assert_in_sync(s)
    assert traffic < BIG, traffic  # identities only (headers and 4 KiB of each body)


def test_a_folder_deleted_while_another_is_made_is_no_rename(fs_setup: Setup) -> None:
    """Gone from its name, with a new folder beside it that holds other mail: neither the
    identity nor the content says rename, so the old one is a deletion, the new one new."""
    s = fs_setup
    fill(s, ["Alt"], size=500)
    synced(s)
    delete_on(s, "server", "Alt")
    with srv.session(s.imap) as c:
        for i in (7, 8):
            srv.append(s.imap, "Anders", srv.make_message(i, "Anders"), imap=c)
    report = s.sync()
    assert "'Alt' is gone from the remote side" in " ".join(report.stranded), report
    assert loc.folders(s.root, "fs") == ["Alt", "Anders", "INBOX"]
    assert len(loc.messages(s.root, "fs", "Alt")) == 2
    assert len(loc.messages(s.root, "fs", "Anders")) == 2


def test_a_naming_change_onto_a_local_name_in_use_is_reported_and_nothing_moves(
    fs_setup: Setup,
) -> None:
    s = fs_setup
    fill(s, ["Work", "work"], size=500)  # two server folders, two local ones
    synced(s)
    naming = FolderNaming(local=lower, remote=lambda n: n)
    said = " ".join(sync_named(s, naming, stranded=True))
    assert "local folder 'Work' is now named 'work', but a local folder 'work' exists" in said
    assert loc.folders(s.root, "fs") == ["INBOX", "Work", "work"]
    assert [len(loc.messages(s.root, "fs", f)) for f in ("Work", "work")] == [2, 2]
    assert srv.list_folders(s.imap, selectable=True) == ["INBOX", "Work", "work"]
