"""The mailtide config that ``mailtide import-config`` writes: tables of keys, each with the
comments that say what of the source config was not translated and why.

The translators (``import_offlineimap``, ``import_mbsync``) fill ``TableDraft``s; ``render``
writes them as TOML.  Nothing here knows either source format.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# mbsync and OfflineIMAP keys whose values are secrets: never copied into a comment.
SECRET_WORDS = ("pass", "secret", "token")


class SourceError(Exception):
    """The source config cannot be read: one line, naming the file (and line), for the user."""


@dataclass(frozen=True, slots=True)
class Table:
    """One TOML table: its path (``("account", "work")``), its keys in order, the comments
    written under its header (``notes``), and commented-out key lines after the keys
    (``placeholders``, for the user to fill in)."""

    path: tuple[str, ...]
    keys: tuple[tuple[str, object], ...]
    notes: tuple[str, ...]
    placeholders: tuple[str, ...]


@dataclass
class TableDraft:
    """A table being translated; ``done()`` freezes it."""

    path: tuple[str, ...]
    keys: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    def set(self, key: str, value: object) -> None:
        self.keys[key] = value

    def note(self, text: str) -> None:
        self.notes.append(text)

    def untranslated(self, key: str, value: str, why: str) -> None:
        """Say in a comment that the source's ``key = value`` has no mailtide translation."""
        shown = "<secret, not copied>" if is_secret(key) else one_line(value)
        self.notes.append(f"not translated: {key} = {shown} ({why})")

    def done(self) -> Table:
        return Table(
            self.path, tuple(self.keys.items()), tuple(self.notes), tuple(self.placeholders)
        )


def is_secret(key: str) -> bool:
    """Whether the source key names a secret, whose value must never reach a comment."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS) and not lowered.endswith(
        ("cmd", "eval", "file")
    )


def one_line(text: str) -> str:
    """A multi-line source value shown on one comment line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def render(header: Sequence[str], tables: Iterable[Table]) -> str:
    """The TOML text: ``header`` as comment lines, then each table."""
    out = [f"# {line}" if line else "#" for line in header]
    for table in tables:
        if not (table.keys or table.notes or table.placeholders):
            continue
        out += ["", f"[{'.'.join(_key(part) for part in table.path)}]"]
        out += [f"# {note}" for note in table.notes]
        out += [_line(key, value) for key, value in table.keys]
        out += [f"# {line}" for line in table.placeholders]
    return "\n".join(out) + "\n"


def _line(key: str, value: object) -> str:
    # A list of rename rules reads best one rule a line.
    if isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value):
        rules = "".join(f"  {toml_value(rule)},\n" for rule in value)
        return f"{key} = [\n{rules}]"
    return f"{key} = {toml_value(value)}"


def _key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else _basic(part)


def _basic(text: str) -> str:
    # JSON's escapes are TOML's for what json.dumps writes.
    return json.dumps(text, ensure_ascii=False)


def toml_value(value: object) -> str:
    """``value`` (str, bool, int, float, list, or dict of those) as a TOML value.  A string
    with a backslash is written 'literal' where it can be, so a regular expression reads as
    the user wrote it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        literal = "\\" in value and "'" not in value and "\n" not in value
        return f"'{value}'" if literal and value.isprintable() else _basic(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def regex_literal(text: str) -> str:
    """``text`` as a regular expression that matches just it (only operators escaped, so
    it reads as the folder name)."""
    return "".join("\\" + c if c in REGEX_SPECIAL else c for c in text)


def braces(text: str) -> str:
    """``text`` as the ``to`` of a rename rule, which reads ``{1}`` as a group."""
    return text.replace("{", "{{").replace("}", "}}")


def glob_literal(name: str) -> str:
    """A folder name as a mailtide folder pattern that matches only that name."""
    if re.search(r"[*?\[]", name) is None and not name.startswith("re:"):
        return name
    return "re:" + regex_literal(name)


def absolute(path: str) -> str:
    """A source path as mailtide reads it: both tools take a relative path from the directory
    they run in, mailtide from the config file's, so it is made absolute here."""
    if path.startswith(("/", "~", "$")):
        return path
    return os.path.abspath(path)


def shell(command: str) -> list[str]:
    """A shell command line (as both tools take it) as an argv list mailtide runs."""
    return ["sh", "-c", command]


def duration(seconds: float) -> int | float | str:
    """Seconds as the shortest mailtide duration."""
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return int(seconds) if float(seconds).is_integer() else seconds


# mailtide allows tls = "none" only here.
LOOPBACK = ("127.0.0.1", "::1")
