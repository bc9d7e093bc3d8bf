"""``netrc``: the password of a ``machine HOST login USER`` entry in a netrc file.

Our own small parser, because the standard library's ``netrc`` keeps one entry per machine
(the last), so two accounts on one server in one file would both get the last one's
password (OfflineIMAP's bug).  Here every entry is kept, and the one for the repository's
host *and* user is used:

1. ``machine HOST login USER``;
2. else ``machine HOST`` without a login;
3. else, only when no machine entry fits, ``default`` (with ``login USER`` or none).

Host names compare without case; logins exactly.  The syntax is ftp's and curl's: tokens
separated by white space, ``"..."`` for a token with spaces (``\\`` escapes), ``#`` starting
a comment, ``macdef NAME`` followed by lines up to an empty one.  The file holds passwords,
so one that group or others can read is refused, as ftp does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailtide.auth.secret_file import read_secret_file
from mailtide.auth.source import PasswordError


@dataclass(frozen=True, slots=True)
class NetrcEntry:
    machine: str | None  # None: the ``default`` entry
    login: str | None = None
    password: str | None = field(default=None, repr=False)


def _tokens(text: str) -> Iterator[str]:
    """The tokens of ``text``; the text of a ``macdef`` is skipped."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c == '"':
            token, i = _quoted(text, i + 1)
            yield token
        else:
            start = i
            while i < n and not text[i].isspace():
                i += 1
            token = text[start:i]
            yield token
            if token == "macdef":
                i = _after_macdef(text, i)


def _quoted(text: str, i: int) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        chars.append(text[i])
        i += 1
    return "".join(chars), i + 1


def _after_macdef(text: str, i: int) -> int:
    """Where the macro that starts after ``macdef`` at ``i`` ends: its name's line, then
    lines up to and including an empty one."""
    end = text.find("\n", i)
    while end >= 0:
        following = text.find("\n", end + 1)
        line = text[end + 1 : following if following >= 0 else len(text)]
        if not line.strip():
            return end + 1
        end = following
    return len(text)


def parse_netrc(text: str) -> tuple[NetrcEntry, ...]:
    """Every entry of a netrc file, in order.  Unknown keywords take one value and are
    ignored (``account``, and those of tools that extend the format)."""
    entries: list[NetrcEntry] = []
    current: dict[str, str | None] | None = None
    tokens = _tokens(text)
    for token in tokens:
        if token in ("machine", "default"):
            if current is not None:
                entries.append(NetrcEntry(**current))
            current = {"machine": next(tokens, "") if token == "machine" else None}
        elif token == "macdef":
            continue  # _tokens skipped its name and text
        elif current is not None and token in ("login", "password"):
            current[token] = next(tokens, "")
        else:
            next(tokens, None)
    if current is not None:
        entries.append(NetrcEntry(**current))
    return tuple(entries)


def find_entry(entries: tuple[NetrcEntry, ...], host: str, user: str) -> NetrcEntry | None:
    """The entry for ``user`` at ``host`` (see the module docstring for the order)."""
    machines = [e for e in entries if e.machine is not None and e.machine.lower() == host.lower()]
    defaults = [e for e in entries if e.machine is None]
    order = ((machines, user), (machines, None), (defaults, user), (defaults, None))
    for candidates, login in order:
        for entry in candidates:
            if entry.login == login:
                return entry
    return None


@dataclass(frozen=True, slots=True)
class NetrcPassword:
    path: Path
    host: str
    user: str

    @property
    def origin(self) -> str:
        return f"from netrc file {self.path}"

    async def password(self) -> str:
        entry = find_entry(parse_netrc(self._text()), self.host, self.user)
        where = f"netrc file {self.path}"
        if entry is None:
            raise PasswordError(
                f"{where} has no entry for machine {self.host} login {self.user}"
                f' (add "machine {self.host} login {self.user} password ...")'
            )
        if not entry.password:
            which = f"machine {entry.machine}" if entry.machine else "default"
            raise PasswordError(f"{where}: the entry {which} login {self.user} has no password")
        return entry.password

    def _text(self) -> str:
        shown = f"netrc file {self.path}"
        data = read_secret_file(self.path, shown, private=True)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PasswordError(f"{shown} is not UTF-8") from None
