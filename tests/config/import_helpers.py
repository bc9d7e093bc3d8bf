"""``mailtide import-config`` run as the command line runs it, and its output loaded with the
real config loader (shared by the import tests)."""

from __future__ import annotations

from pathlib import Path

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
