"""``mailtide import-config offlineimap|mbsync [FILE] [-o OUT]``: the config of the tool a
user comes from, as a mailtide config that does the same job.

The result goes to stdout, or to a new file ``OUT`` made 0600 (it may hold a password); an
existing file is never overwritten.  A source that cannot be read is one line naming the
file (and line), exit 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mailtide.config import import_mbsync, import_offlineimap
from mailtide.config.import_toml import SourceError, Table, render

TOOLS = ("offlineimap", "mbsync")
_TITLES = {"offlineimap": "OfflineIMAP", "mbsync": "mbsync"}


def default_sources(tool: str) -> list[Path]:
    """Where the tool itself looks for its config, in its order."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    config_home = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    if tool == "offlineimap":
        return [Path.home() / ".offlineimaprc", config_home / "offlineimap" / "config"]
    return [config_home / "isyncrc", Path.home() / ".mbsyncrc"]


def _source_path(tool: str, file: str | None) -> str:
    if file is not None:
        return file
    candidates = default_sources(tool)
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        shown = " or ".join(str(c) for c in candidates)
        raise SourceError(f"no {_TITLES[tool]} config at {shown}: name the file to import")
    return str(found)


def _read(file: str) -> str:
    try:
        raw = Path(file).read_bytes()
    except OSError as e:
        reason = e.strerror or str(e)
        hint = "name the file to import"
        raise SourceError(f"{file}: cannot read the file: {reason}; {hint}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise SourceError(f"{file}:{line}: not valid UTF-8; save the file as UTF-8") from None


def translated(tool: str, file: str) -> str:
    """The mailtide config (TOML text) that does the job of ``tool``'s config ``file``."""
    text = _read(file)
    if tool == "offlineimap":
        tables: list[Table] = [
            t.done() for t in import_offlineimap.translate(import_offlineimap.parse(text, file))
        ]
    else:
        tables = [t.done() for t in import_mbsync.translate(import_mbsync.parse(text, file))]
    header = [
        f"mailtide config made by `mailtide import-config {tool}` from {file}.",
        "Check it with: mailtide check-config -c THIS_FILE.  The old tool's state is not",
        "imported: the first sync pairs the mail already in the Maildir with the server's",
        'by content and copies only the differences.  Each "not translated" comment names',
        "a setting of the source that mailtide does not carry over, and why.",
    ]
    return render(header, tables)


def _write_new(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SourceError(
            f"{path}: the file exists; import-config never overwrites one: name a new file"
        ) from None
    except OSError as e:
        raise SourceError(f"{path}: cannot create the file: {e.strerror or e}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # it may hold a password, whatever the umask
        out.write(text)


def run(tool: str, file: str | None, output: str | None) -> int:
    """The command: 0 when written, 2 (one line on stderr) when the source cannot be used."""
    try:
        text = translated(tool, _source_path(tool, file))
        if output is None:
            sys.stdout.write(text)
        else:
            _write_new(output, text)
    except SourceError as e:
        print(f"mailtide: {e}", file=sys.stderr)
        return 2
    return 0
