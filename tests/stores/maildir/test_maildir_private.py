"""What mailtide creates in a Maildir is private: directories 0700, files 0600, whatever the
umask; what other programs made keeps its mode."""

from __future__ import annotations

import stat
from pathlib import Path

from mailtide.stores.maildir import MaildirSettings, MaildirStore
from stores.maildir.mdstore_helpers import incoming, message

SEEN = "\\Seen"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_below(top: Path) -> dict[str, int]:
    """The mode of every directory and file below ``top`` (``top`` itself as ".")."""
    out = {".": mode(top)}
    for path in top.rglob("*"):
        out[path.relative_to(top).as_posix()] = mode(path)
    return out


async def test_what_mailtide_creates_is_private(tmp_path: Path, layout: str, umask: int) -> None:
    root = tmp_path / "home" / "Mail"  # neither exists: the first sync makes both
    store = MaildirStore(MaildirSettings(str(root), layout))  # type: ignore[arg-type]
    store.create_root()
    for name in ("INBOX", "Archive/2024"):
        await store.create_folder(name)
        box = await store.open(name)
        await box.status()  # writes the folder's id file
        await box.append(
            [
                incoming(message(1)),  # new/
                incoming(message(2), flags=frozenset({SEEN, "Work"})),  # cur/, dovecot-keywords
            ]
        )
        await box.close()
    assert mode(tmp_path / "home") == 0o700
    made = modes_below(root)
    files = {p for p in made if (root / p).is_file()}
    dirs = set(made) - files
    assert {p: made[p] for p in dirs} == dict.fromkeys(dirs, 0o700)
    assert {p: made[p] for p in files} == dict.fromkeys(files, 0o600)
    # what was checked: every kind of file mailtide writes, in both folders
    names = {Path(p).name for p in files}
    assert {".mailtide-id", "dovecot-keywords"} <= names
    assert sum(1 for p in files if "/cur/" in f"/{p}") == 2
    assert sum(1 for p in files if "/new/" in f"/{p}") == 2


async def test_modes_other_programs_gave_are_kept(tmp_path: Path, layout: str, umask: int) -> None:
    """A root and a folder that exist already (cur/ and new/, no tmp/) keep their modes; only
    what mailtide adds is private."""
    root = tmp_path / "Mail"
    folder = root / ("Lists" if layout == "fs" else ".Lists")
    for d in (root, folder, folder / "cur", folder / "new"):
        d.mkdir()
        d.chmod(0o755)
    store = MaildirStore(MaildirSettings(str(root), layout))  # type: ignore[arg-type]
    box = await store.open("Lists")
    await box.status()
    await box.append([incoming(message(1), flags=frozenset({SEEN}))])
    assert [mode(d) for d in (root, folder, folder / "cur", folder / "new")] == [0o755] * 4
    assert mode(folder / "tmp") == 0o700
    [delivered] = list((folder / "cur").iterdir())
    assert mode(delivered) == mode(folder / ".mailtide-id") == 0o600
