"""Find the line a TOML key is on, so an error can point at it.

tomllib returns plain dicts without positions, so this scans the text:
table headers set the current prefix, ``key = ...`` lines add a key under
it.  Best effort: keys inside inline tables or after a multi-line string
that looks like TOML may be missed; the caller then falls back to the
nearest enclosing key that was found.
"""

from __future__ import annotations

import re

KeyPath = tuple[str, ...]

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_KEY = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def split_key(dotted: str) -> KeyPath:
    """'a."b.c".d' -> ("a", "b.c", "d")."""
    parts: list[str] = []
    for m in _PART.finditer(dotted):
        token = m.group(0)
        if token.startswith('"'):
            # Basic strings use JSON-like escapes; good enough for key names.
            token = token[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        elif token.startswith("'"):
            token = token[1:-1]
        parts.append(token)
    return tuple(parts)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path (and each table path) to the 1-based line it first appears on."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if m := _HEADER.match(line):
            table = split_key(m.group(1))
            _add(lines, table, number)
        elif m := _ASSIGN.match(line):
            _add(lines, table + split_key(m.group(1)), number)
            rest = line[m.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_multiline = quotes
    return lines


def _add(lines: dict[KeyPath, int], path: KeyPath, number: int) -> None:
    for i in range(1, len(path) + 1):
        lines.setdefault(path[:i], number)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest enclosing key that has one."""
    for i in range(len(path), 0, -1):
        if path[:i] in lines:
            return lines[path[:i]]
    return None
