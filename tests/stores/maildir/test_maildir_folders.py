"""Folder names on disk: both layouts, round trips, hostile names, the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailtide.stores.base import MailboxError, StoreError, UnsafeFolderName
from mailtide.stores.maildir import MaildirSettings, MaildirStore

NAMES = [
    "INBOX",
    "Archive",
    "Archive/2024",
    "Entwürfe",
    "日本語",
    "Project Alpha",
    "Work/Clients/Acme & Co",
    "INBOX/Sub",
]

# where each name lives on disk, per layout
PATHS = {
    "fs": {
        "INBOX": "INBOX",
        "Archive/2024": "Archive/2024",
        "Entwürfe": "Entwürfe",
        "Work/Clients/Acme & Co": "Work/Clients/Acme & Co",
    },
    "maildir++": {
        "INBOX": ".",
        "Archive/2024": ".Archive.2024",
        "Entwürfe": ".Entwürfe",
        "Work/Clients/Acme & Co": ".Work.Clients.Acme & Co",
    },
}


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


async def test_created_folders_list_back(store: MaildirStore, layout: str) -> None:
    for name in NAMES:
        await store.create_folder(name)
    listed = [f.name for f in await store.list_folders()]
    assert sorted(listed) == sorted(NAMES)
    assert store.refused == []
    root = Path(store.root)
    for name, rel in PATHS[layout].items():
        assert _is_maildir(root / rel), name


async def test_create_folder_is_idempotent(store: MaildirStore) -> None:
    await store.create_folder("Archive/2024")
    await store.create_folder("Archive/2024")
    assert [f.name for f in await store.list_folders()] == ["Archive/2024"]


async def test_maildirplusplus_subfolders_carry_the_maildirfolder_marker(
    store: MaildirStore, layout: str
) -> None:
    """Courier and Dovecot mark each Maildir++ subfolder with an empty ``maildirfolder`` file
    (their deliver tools look for it); the INBOX (the root) has none, nor has the fs layout."""
    for name in ("INBOX", "Archive", "Archive/2024"):
        await store.create_folder(name)
    root = Path(store.root)
    markers = sorted(p.relative_to(root).as_posix() for p in root.rglob("maildirfolder"))
    if layout == "fs":
        assert markers == []
        return
    assert markers == [".Archive.2024/maildirfolder", ".Archive/maildirfolder"]
    for marker in markers:
        assert (root / marker).read_bytes() == b""
        assert (root / marker).stat().st_mode & 0o777 == 0o600
    listed = sorted(f.name for f in await store.list_folders())
    assert listed == ["Archive", "Archive/2024", "INBOX"]


async def test_fs_parent_can_also_be_a_folder(fs_store: MaildirStore) -> None:
    await fs_store.create_folder("Work/Clients/Acme & Co")
    assert [f.name for f in await fs_store.list_folders()] == ["Work/Clients/Acme & Co"]
    await fs_store.create_folder("Work")
    assert [f.name for f in await fs_store.list_folders()] == ["Work", "Work/Clients/Acme & Co"]


async def test_inbox_in_any_case_is_the_inbox(store: MaildirStore) -> None:
    await store.create_folder("inbox")
    assert [f.name for f in await store.list_folders()] == ["INBOX"]
    box = await store.open("Inbox")
    assert box.name == "INBOX"
    await store.create_folder("inbox/Sub")
    assert [f.name for f in await store.list_folders()] == ["INBOX", "INBOX/Sub"]
    assert (await store.open("Inbox/Sub")).name == "INBOX/Sub"


async def test_hidden_and_plain_directories_are_not_folders(fs_store: MaildirStore) -> None:
    root = Path(fs_store.root)
    (root / ".notmuch" / "cur").mkdir(parents=True)
    (root / ".notmuch" / "new").mkdir()
    (root / "notes").mkdir()
    (root / "README").write_text("not a folder")
    await fs_store.create_folder("notes/Mail")
    assert [f.name for f in await fs_store.list_folders()] == ["notes/Mail"]


HOSTILE = [
    "../x",
    "a/../../b",
    "a/./b",
    "/abs",
    "nul\x00byte",
    "bell\x07",
    "new\nline",
    "",
    "back\\slash",
]


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_refused(store: MaildirStore, name: str) -> None:
    before = sorted(p for p in Path(store.root).rglob("*"))
    with pytest.raises(UnsafeFolderName):
        await store.create_folder(name)
    with pytest.raises(UnsafeFolderName):
        await store.open(name)
    assert sorted(p for p in Path(store.root).rglob("*")) == before
    assert not (Path(store.root).parent / "x").exists()


@pytest.mark.parametrize("name", ["cur", "Archive/new", "tmp/x", ".hidden"])
async def test_fs_layout_refuses_maildir_subdirs_and_hidden(
    fs_store: MaildirStore, name: str
) -> None:
    with pytest.raises(UnsafeFolderName, match="fs layout"):
        await fs_store.create_folder(name)


async def test_maildirplusplus_refuses_a_dot(tmp_path: Path) -> None:
    store = MaildirStore(MaildirSettings(str(tmp_path), "maildir++"))
    with pytest.raises(UnsafeFolderName, match=r"contains '\.'"):
        await store.create_folder("v1.2")
    with pytest.raises(UnsafeFolderName, match=r"contains '\.'"):
        await store.create_folder("Lists/python.org")


def _maildir(path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)


async def test_listing_reports_hostile_directories_and_lists_the_rest_fs(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Mail"
    outside = tmp_path / "outside"
    _maildir(outside)
    _maildir(root / "INBOX")
    _maildir(root / "Good")
    _maildir(root / "bell\x07")
    _maildir(root / "Good" / "cur" / "x")  # inside a maildir's own cur/: never a folder
    _maildir(root / "Parent" / "cur")  # a folder named cur under a plain directory
    _maildir(root / "inbox")  # a second spelling of INBOX
    os.symlink(outside, root / "Escape")
    os.symlink(root / "Good", root / "Alias")  # inside the root: allowed, listed once
    os.mkdir(root / os.fsdecode(b"bad\xff"))
    _maildir(root / os.fsdecode(b"bad\xff"))
    store = MaildirStore(MaildirSettings(str(root), "fs"))
    await store.connect()
    names = [f.name for f in await store.list_folders()]
    assert names == ["Good", "INBOX"]
    refused = dict(store.refused)
    assert set(refused) == {
        "bell\x07",
        "Parent/cur",
        "inbox",
        "Escape",
        os.fsdecode(b"bad\xff"),
    }
    assert "outside" in refused["Escape"]
    assert "control character" in refused["bell\x07"]
    with pytest.raises(UnsafeFolderName, match="outside"):
        await store.open("Escape")
    with pytest.raises(UnsafeFolderName, match="outside"):
        await store.create_folder("Escape/Deeper")
    assert not (outside / "Deeper").exists()


async def test_listing_reports_hostile_directories_and_lists_the_rest_maildirplusplus(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Mail"
    outside = tmp_path / "outside"
    _maildir(outside)
    _maildir(root)
    _maildir(root / ".Good.Sub")
    _maildir(root / ".a..b")  # empty component
    _maildir(root / ".ctl\x01")
    _maildir(root / ".INBOX")  # would be a second INBOX
    os.symlink(outside, root / ".Escape")
    (root / ".mailtide-id").write_text("x\n")  # a file, not a folder
    store = MaildirStore(MaildirSettings(str(root), "maildir++"))
    await store.connect()
    assert [f.name for f in await store.list_folders()] == ["Good/Sub", "INBOX"]
    refused = dict(store.refused)
    assert set(refused) == {".a..b", ".ctl\x01", ".INBOX", ".Escape"}
    assert "outside" in refused[".Escape"]


@pytest.mark.parametrize("layout_name", ["fs", "maildir++"])
async def test_missing_root_is_an_error_never_empty(tmp_path: Path, layout_name: str) -> None:
    root = tmp_path / "not-mounted"
    store = MaildirStore(MaildirSettings(str(root), layout_name))  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=r"does not exist \(is it mounted\?\)"):
        await store.connect()
    with pytest.raises(StoreError, match="does not exist"):
        await store.list_folders()
    with pytest.raises(StoreError, match="does not exist"):
        await store.create_folder("INBOX")
    assert not root.exists()
    store.create_root()
    await store.connect()
    assert await store.list_folders() == []


async def test_root_symlink_to_an_unmounted_drive_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    os.symlink(tmp_path / "media" / "usb" / "Mail", root)
    store = MaildirStore(MaildirSettings(str(root), "fs"))
    with pytest.raises(StoreError, match="does not exist"):
        await store.connect()


async def test_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    root.write_text("oops")
    store = MaildirStore(MaildirSettings(str(root), "fs"))
    with pytest.raises(StoreError, match="is not a directory"):
        await store.connect()


async def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Mail").mkdir()
    store = MaildirStore(MaildirSettings("~/Mail", "fs"))
    await store.connect()
    await store.create_folder("INBOX")
    assert (tmp_path / "Mail" / "INBOX" / "cur").is_dir()


async def test_open_missing_folder_is_a_mailbox_error(store: MaildirStore) -> None:
    with pytest.raises(MailboxError, match="does not exist"):
        await store.open("Nope")
