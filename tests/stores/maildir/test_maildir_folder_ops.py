"""Renaming and removing Maildir folders as a whole, and the folder's own id file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailtide.stores.base import StoreError
from mailtide.stores.maildir import MaildirStore


def files_with_inodes(root: Path) -> dict[str, int]:
    """Every message file below ``root``: its name -> inode."""
    return {p.name: p.stat().st_ino for p in root.rglob("*") if p.parent.name in ("cur", "new")}


def put(store: MaildirStore, folder: str, name: str) -> None:
    Path(store.folder_path(folder), "cur", name).write_bytes(b"Subject: x\n\nhi\n")


async def test_a_rename_moves_the_folder_and_its_children_with_their_files_and_ids(
    store: MaildirStore,
) -> None:
    for name in ("Projekte", "Projekte/Alpha", "Projekte/Alpha/Entwürfe", "Archiv"):
        await store.create_folder(name)
    put(store, "Projekte/Alpha", "1.M1P1.host:2,S")
    put(store, "Projekte/Alpha/Entwürfe", "2.M2P1.host:2,")
    ids = {
        n: await store.folder_identity(n, create=True)
        for n in ("Projekte/Alpha", "Projekte/Alpha/Entwürfe")
    }
    before = files_with_inodes(Path(store.root))

    await store.rename_folder("Projekte/Alpha", "Archiv/Älteres")

    listed = {f.name: f.identity for f in await store.list_folders()}
    assert sorted(listed) == ["Archiv", "Archiv/Älteres", "Archiv/Älteres/Entwürfe", "Projekte"]
    assert listed["Archiv/Älteres"] == ids["Projekte/Alpha"]
    assert listed["Archiv/Älteres/Entwürfe"] == ids["Projekte/Alpha/Entwürfe"]
    assert files_with_inodes(Path(store.root)) == before


async def test_a_rename_onto_an_existing_folder_changes_nothing(store: MaildirStore) -> None:
    for name in ("A", "A/Kind", "B"):
        await store.create_folder(name)
    put(store, "A", "1.M1P1.host:2,S")
    with pytest.raises(StoreError, match=r"cannot rename folder 'A' to 'B'.*exists already"):
        await store.rename_folder("A", "B")
    assert sorted(f.name for f in await store.list_folders()) == ["A", "A/Kind", "B"]
    assert os.listdir(Path(store.folder_path("A"), "cur")) == ["1.M1P1.host:2,S"]
    with pytest.raises(StoreError, match="INBOX is never renamed"):
        await store.rename_folder("INBOX", "Alt")


async def test_only_an_empty_folder_is_deleted_and_its_children_stay(
    store: MaildirStore, layout: str
) -> None:
    for name in ("A", "A/Kind", "Voll"):
        await store.create_folder(name)
    await store.folder_identity("A", create=True)
    put(store, "Voll", "1.M1P1.host:2,S")
    with pytest.raises(StoreError, match=r"cannot delete folder 'Voll'.*not empty"):
        await store.delete_folder("Voll")
    await store.delete_folder("A")
    assert sorted(f.name for f in await store.list_folders()) == ["A/Kind", "Voll"]
    if layout == "fs":  # A stays as A/Kind's parent, an empty directory
        assert os.listdir(Path(store.root, "A")) == ["Kind"]
    else:
        assert not Path(store.root, ".A").exists()
    with pytest.raises(StoreError, match="INBOX is never deleted"):
        await store.delete_folder("INBOX")


async def test_the_id_file_is_private_made_once_and_not_a_folder(store: MaildirStore) -> None:
    """``.mailtide-id`` is written 0600 the first time it is asked for, never changed after,
    and neither layout lists it (or a directory holding only it) as a folder."""
    await store.create_folder("Archiv")
    assert [f.identity for f in await store.list_folders()] == [""]
    made = await store.folder_identity("Archiv", create=True)
    path = Path(store.folder_path("Archiv"), ".mailtide-id")
    assert path.stat().st_mode & 0o777 == 0o600
    assert await store.folder_identity("Archiv", create=True) == made
    assert [(f.name, f.identity) for f in await store.list_folders()] == [("Archiv", made)]
