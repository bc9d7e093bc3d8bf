"""``mailtide import-config`` run as the command line runs it, and its output loaded with the
real config loader (shared by the import tests)."""

from __future__ import annotations

import os
from pathlib import Path

from engine_helpers import run_forked
from mailtide.cli import main
from mailtide.config import Config, load_config


def imported(tool: str, source: str, tmp_path: Path) -> tuple[str, Config]:
    """Import ``source`` (the text of a ``tool`` config) into a new file; its text and the
    Config mailtide's loader makes of it (a config that does not load fails the test)."""
    tmp_path.mkdir(exist_ok=True)
    given = tmp_path / f"{tool}.conf"
    given.write_text(source, encoding="utf-8")
    out = tmp_path / "mailtide.toml"
    assert main(["import-config", tool, str(given), "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8"), load_config(str(out))


def not_translated(text: str) -> list[str]:
    """The ``# not translated: KEY = VALUE (why)`` comments, without the reason."""
    return [
        line.removeprefix("# not translated: ").rsplit(" (", 1)[0]
        for line in text.splitlines()
        if line.startswith("# not translated: ")
    ]


def take_over(tool: str, rc: Path, root: Path, tmp_path: Path) -> None:
    """Import ``rc`` (the ``tool``'s config that just synced ``root``) and run
    ``mailtide sync`` with it: it must exit 0, copy nothing either way and keep every file
    the tool left (by inode: nothing downloaded again)."""
    before = {p: p.stat().st_ino for p in root.rglob("*") if p.is_file()}
    config = tmp_path / "imported.toml"
    assert main(["import-config", tool, str(rc), "-o", str(config)]) == 0
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    code, output = run_forked(config, env=env)
    assert code == 0, output
    assert "new_local=0" in output and "new_remote=0" in output
    after = {p: p.stat().st_ino for p in root.rglob("*") if p.is_file() and p in before}
    assert after == before
