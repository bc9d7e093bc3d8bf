"""IMAP response syntax: complete responses in, Python values out.

A server response is one or more lines joined by literals: ``lines[0]
{N}\\r\\n <N bytes> lines[1] ...``.  The reader (``protocol.py``) cuts the
byte stream into such ``RawResponse`` values; this module turns one into
tokens.  It never looks at more than one response, never uses a regex over a
whole line, and keeps literals as the very objects the reader filled (a 25 MB
body is not copied here).

Values: an atom is ``str`` (``\\Seen``, ``FETCH``, ``BODY[HEADER]``, ``42``),
a quoted string is ``bytes``, a literal is ``bytearray`` (or a ``SpooledLiteral``
when it is too big to hold in memory), NIL is ``None``, a parenthesised list is
``list``.  Quoted strings and literals are both "strings" in IMAP; ``text_of``
accepts either.

Whatever the bytes, the functions here raise ``ParseError`` and nothing else: a
hostile server must cost the response, never the process.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeAlias

from mailtide.stores.base import BODY_PIECE

Value: TypeAlias = "str | bytes | bytearray | SpooledLiteral | list[Value] | None"

MAX_DEPTH = 64  # nested parentheses; BODYSTRUCTURE needs a handful, recursion must not run away


class ParseError(ValueError):
    """A response that does not follow the IMAP grammar."""


class SpooledLiteral:
    """A literal too big to keep in memory, in an anonymous temporary file.

    The file has no name (``tempfile.TemporaryFile``), so its disk space comes back
    when it is closed, when this object is garbage collected, or when the process dies
    (even by SIGKILL).  It is also a ``Body`` (stores/base.py): ``size`` and ``chunks``,
    read back by offset, so it may be read more than once.
    """

    __slots__ = ("__weakref__", "_file", "filled", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.filled = 0
        import tempfile  # only for a literal this big (issue 12: it loads shutil at start-up)

        # owned by this object: closed by close(), or when it is collected
        self._file = tempfile.TemporaryFile(prefix="mailtide-literal-", buffering=0)  # noqa: SIM115

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"SpooledLiteral(size={self.size}, filled={self.filled})"

    @property
    def complete(self) -> bool:
        return self.filled == self.size

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` (the reader never writes past ``size``).  May raise OSError."""
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError("short write to a temporary file")
            view = view[written:]
            self.filled += written

    def read(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``offset`` (fewer only at the end)."""
        if self._file.closed:
            raise ValueError("spooled literal already closed")
        return os.pread(self._file.fileno(), count, offset)

    async def chunks(self) -> AsyncIterator[bytes]:
        import asyncio  # here: the parser itself serves blocking callers too (quiet/)

        for offset in range(0, self.filled, BODY_PIECE):
            piece = min(BODY_PIECE, self.filled - offset)
            yield await asyncio.to_thread(self.read, offset, piece)

    def close(self) -> None:
        self._file.close()


LiteralData: TypeAlias = "bytearray | SpooledLiteral"


@dataclass(slots=True)
class RawResponse:
    """One complete response: ``len(lines) == len(literals) + 1``.

    Every line but the last ends with the literal marker (``{N}``, ``{N+}`` or
    ``~{N}``) that announced the literal following it.
    """

    lines: list[bytes]
    literals: list[LiteralData] = field(default_factory=list)

    def close(self) -> None:
        """Give back the disk of spooled literals (a body handed on is closed by its reader)."""
        for literal in self.literals:
            if isinstance(literal, SpooledLiteral):
                literal.close()

    @property
    def first(self) -> bytes:
        return self.lines[0]


def literal_size(line: bytes) -> int | None:
    """The size N if ``line`` ends with a literal marker ``{N}``/``{N+}``/``~{N}``, else None.

    Raises ParseError for a marker whose size is not a number.
    """
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    digits = line[start + 1 : -1]
    if digits.endswith(b"+"):
        digits = digits[:-1]
    if not digits.isdigit() or len(digits) > 12:
        raise ParseError(f"bad literal size {line[start:][:40]!r}")
    return int(digits)


_ATOM_END = frozenset(b" ()\r\n")
_BRACKETS = frozenset(b"[]")
_PLAIN_ATOM = re.compile(rb"[^ ()\[\]\r\n]+")  # an atom up to its end or its first bracket
_SPACES = re.compile(rb" *")
_PLAIN_START = frozenset(range(256)) - frozenset(b' ()[]\r\n"{~')  # starts an atom, no more


class Tokens:
    """A cursor over one response's lines and literals."""

    __slots__ = ("_index", "_line", "_lines", "_literals", "_pos")

    def __init__(self, response: RawResponse, start: int = 0) -> None:
        self._lines = response.lines
        self._literals = response.literals
        self._index = 0
        self._line = response.lines[0]
        self._pos = start

    # -- cursor ---------------------------------------------------------------------

    def at_end(self) -> bool:
        self._skip_spaces()
        return self._pos >= len(self._line) and self._index >= len(self._literals)

    def rest_of_line(self) -> bytes:
        """The remaining text of the current line (human-readable resp-text)."""
        self._skip_spaces()
        rest = self._line[self._pos :]
        self._pos = len(self._line)
        return rest

    @property
    def position(self) -> int:
        """Where the cursor is in the first line (only while it is still there)."""
        return self._pos if self._index == 0 else -1

    def peek(self) -> int | None:
        self._skip_spaces()
        return self._line[self._pos] if self._pos < len(self._line) else None

    def _skip_spaces(self) -> None:
        self._pos = _SPACES.match(self._line, self._pos).end()  # type: ignore[union-attr]

    # -- values ---------------------------------------------------------------------

    def value(self) -> Value:
        """The next value: atom, number, quoted string, literal, NIL or list."""
        line = self._line
        pos = self._pos = _SPACES.match(line, self._pos).end()  # type: ignore[union-attr]
        if pos >= len(line):
            raise ParseError(f"unexpected end of response in {self._context()}")
        ch = line[pos]
        if ch == 0x28:  # (
            return self._list()
        if ch == 0x22:  # "
            return self._quoted()
        if ch == 0x7B or (ch == 0x7E and line[pos + 1 : pos + 2] == b"{"):
            return self._literal()
        atom = self._atom_here()
        return None if len(atom) == 3 and atom.upper() == "NIL" else atom

    def atom(self) -> str:
        """An atom; brackets may hold spaces and parentheses (``BODY[HEADER.FIELDS (A B)]``)."""
        self._skip_spaces()
        return self._atom_here()

    def _atom_here(self) -> str:
        """``atom`` with the spaces before it already skipped."""
        line = self._line
        start = self._pos
        # Most atoms hold no bracket: one regex match, not a loop per byte.
        found = _PLAIN_ATOM.match(line, start)
        pos = found.end() if found is not None else start
        if pos >= len(line) or line[pos] not in _BRACKETS:
            if pos == start:
                raise ParseError(f"expected an atom in {self._context()}")
            self._pos = pos
            return line[start:pos].decode("ascii", "replace")
        pos = start
        depth = 0
        n = len(line)
        while pos < n:
            ch = line[pos]
            if ch == 0x5B:  # [
                depth += 1
            elif ch == 0x5D:  # ]
                depth -= 1
            elif depth <= 0 and ch in _ATOM_END:
                break
            pos += 1
        if pos == start:
            raise ParseError(f"expected an atom in {self._context()}")
        self._pos = pos
        return line[start:pos].decode("ascii", "replace")

    def number(self) -> int:
        return number_of(self.atom())

    def _quoted(self) -> bytes:
        line = self._line
        pos = self._pos + 1
        end = line.find(b'"', pos)
        if end >= 0 and line.find(b"\\", pos, end) < 0:  # nothing escaped: a slice
            self._pos = end + 1
            return line[pos:end]
        out = bytearray()
        n = len(line)
        while pos < n:
            ch = line[pos]
            if ch == 0x5C:  # backslash quotes the next character
                if pos + 1 >= n:
                    break
                out.append(line[pos + 1])
                pos += 2
                continue
            if ch == 0x22:
                self._pos = pos + 1
                return bytes(out)
            out.append(ch)
            pos += 1
        raise ParseError(f"unterminated quoted string in {self._context()}")

    def _literal(self) -> LiteralData:
        size = literal_size(self._line[self._pos :])
        if (
            size is None
            or self._index >= len(self._literals)
            or self._index + 1 >= len(self._lines)
        ):
            raise ParseError(f"literal marker not at end of line in {self._context()}")
        literal = self._literals[self._index]
        if len(literal) != size:
            raise ParseError(f"literal of {len(literal)} bytes announced as {size}")
        self._index += 1
        self._line = self._lines[self._index]
        self._pos = 0
        return literal

    def _list(self) -> list[Value]:
        # Nesting is followed with an explicit stack: a line of a million "(" must be a
        # ParseError, not a RecursionError.
        self._pos += 1  # (
        stack: list[list[Value]] = [[]]
        while True:
            line = self._line
            pos = self._pos = _SPACES.match(line, self._pos).end()  # type: ignore[union-attr]
            if pos >= len(line):
                raise ParseError(f"unterminated list in {self._context()}")
            ch = line[pos]
            if ch == 0x29:  # )
                self._pos += 1
                done = stack.pop()
                if not stack:
                    return done
                stack[-1].append(done)
            elif ch == 0x28:  # (
                if len(stack) >= MAX_DEPTH:
                    raise ParseError(f"lists nested deeper than {MAX_DEPTH} in {self._context()}")
                self._pos += 1
                stack.append([])
            elif ch in _PLAIN_START and (found := _PLAIN_ATOM.match(line, pos)) is not None:
                # ``value`` of an atom without brackets (most items of a FETCH), inline
                end = found.end()
                if end < len(line) and line[end] in _BRACKETS:
                    stack[-1].append(self.value())
                    continue
                self._pos = end
                atom = line[pos:end].decode("ascii", "replace")
                stack[-1].append(None if len(atom) == 3 and atom.upper() == "NIL" else atom)
            else:
                stack[-1].append(self.value())

    def _context(self) -> str:
        return repr(self._line[:80])


# ---- helpers for callers ------------------------------------------------------------------


def text_of(value: Value) -> str:
    """A string value (atom, quoted or literal) as text; NIL as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, SpooledLiteral):
        raise ParseError(f"a string of {value.size} bytes where a short value was expected")
    raise ParseError(f"expected a string, got a list {value!r}"[:120])


def number_of(value: Value) -> int:
    """A non-negative number (ASCII digits only: ``int`` would also take "+5", " 5", "1_0")."""
    text = text_of(value) if not isinstance(value, list) else None
    if not text or not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ParseError(f"expected a number, got {value!r}"[:120])
    return int(text)


def bytes_of(value: Value, limit: int) -> bytes:
    """A string value's bytes, read back from disk when spooled; ParseError past ``limit``."""
    if isinstance(value, SpooledLiteral):
        if value.size > limit:
            raise ParseError(f"a string of {value.size} bytes (limit {limit})")
        try:
            return value.read(0, value.size)
        except (OSError, ValueError) as e:
            raise ParseError(f"spooled literal unreadable: {e}") from None
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    raise ParseError(f"expected a string, got a list {value!r}"[:120])


def pairs(items: Value) -> dict[str, Value]:
    """A FETCH attribute list ``(UID 5 FLAGS (...))`` as {"UID": "5", "FLAGS": [...]}."""
    if not isinstance(items, list) or len(items) % 2:
        raise ParseError("FETCH attributes are not name/value pairs")
    out: dict[str, Value] = {}
    for i in range(0, len(items), 2):
        name = items[i]
        if not isinstance(name, str):
            raise ParseError(f"FETCH attribute name {name!r} is not an atom"[:120])
        key = name.upper()
        if key in out:  # no server repeats one: the response is out of step with itself
            raise ParseError(f"FETCH attribute {key} given twice"[:120])
        out[key] = items[i + 1]
    return out


# The FETCH attributes most responses hold, in the common spelling: a name (``BODY[]`` the
# only one with brackets), one space, then a list of plain atoms, a quoted string without
# escapes, a literal that ends the line, or a plain atom.  A plain atom here holds none of
# ' ()[]"{~' and no CR or LF, so it ends where the tokenizer's would.
_PLAIN = rb'[^ ()\[\]"{~\r\n]'
_FETCH_ITEM = re.compile(
    rb"([A-Za-z0-9.-]+(?:\[\])?) (?:\(((?:" + _PLAIN + rb"+(?: " + _PLAIN + rb"+)*)?)\)"
    rb'|"([^"\\\r\n]*)"|\{(\d{1,12})\}\Z|(' + _PLAIN + rb"+))"
)


def simple_fetch(raw: RawResponse, start: int) -> dict[str, Value] | None:
    """``pairs`` of the attribute list that begins at ``start`` of the first line, read with
    one regex match an attribute, for a response written in the common spelling only: its
    list ends the first line, or its only literal ends the first line and the second is ")".
    None for anything else, which the tokenizer then reads (and judges): the values given
    are the ones it gives, so this changes what it costs, never what is read."""
    line = raw.lines[0]
    pos = start
    while line[pos : pos + 1] == b" ":
        pos += 1
    if line[pos : pos + 1] != b"(":
        return None
    pos += 1
    out: dict[str, Value] = {}
    n = len(line)
    while True:
        m = _FETCH_ITEM.match(line, pos)
        if m is None:
            return None
        key = m[1].decode("ascii").upper()
        if key in out or key == "NIL":  # the tokenizer refuses both
            return None
        atoms, quoted, literal, atom = m[2], m[3], m[4], m[5]
        value: Value
        if atoms is not None:
            value = [_atom_value(a) for a in atoms.split(b" ")] if atoms else []
        elif quoted is not None:
            value = quoted
        elif literal is not None:
            if len(raw.lines) != 2 or raw.lines[1] != b")" or len(raw.literals) != 1:
                return None
            value = raw.literals[0]
            if len(value) != int(literal):
                return None
            out[key] = value
            return out
        else:
            value = _atom_value(atom)
        out[key] = value
        pos = m.end()
        if pos < n and line[pos] == 0x20:  # " ": another attribute
            pos += 1
            continue
        if pos == n - 1 and line[pos] == 0x29 and len(raw.lines) == 1:  # ")" ends it all
            return out
        return None


def _atom_value(atom: bytes) -> str | None:
    text = atom.decode("ascii", "replace")
    return None if len(text) == 3 and text.upper() == "NIL" else text


@dataclass(frozen=True, slots=True)
class Untagged:
    """``* [number] KIND ...``: the kind in upper case, the number if any, a cursor on the rest
    (``rest``: where the rest begins in the first line, found once when it was classified)."""

    kind: str
    number: int | None
    raw: RawResponse
    rest: int = -1

    def tokens(self) -> Tokens:
        if self.rest >= 0:
            return Tokens(self.raw, self.rest)
        t = Tokens(self.raw, 2)
        if self.number is not None:
            t.atom()
        t.atom()
        return t


def untagged(raw: RawResponse) -> Untagged:
    """Classify an untagged response (``raw.first`` starts with ``* ``).  One that does not
    even start with a word (``* (``, ``* 7``) has the kind "": nobody asks for it, so it is
    ignored like any other unknown response."""
    t = Tokens(raw, 2)
    try:
        word = t.atom()
        if word.isascii() and word.isdigit() and len(word) <= 20:
            return Untagged(t.atom().upper(), int(word), raw, t.position)
    except ParseError:
        return Untagged("", None, raw)
    return Untagged(word.upper(), None, raw, t.position)


@dataclass(frozen=True, slots=True)
class StatusText:
    """``OK [CODE args] text`` split up: the code in upper case ("" if none)."""

    code: str
    args: bytes
    text: str


def status_text(line: bytes) -> StatusText:
    """Split resp-text (what follows OK/NO/BAD/BYE) into its response code and text."""
    line = line.lstrip(b" ")
    if line.startswith(b"["):
        end = line.find(b"]")
        if end > 0:
            inner = line[1:end]
            code, _, args = inner.partition(b" ")
            return StatusText(
                code.decode("ascii", "replace").upper(),
                args,
                line[end + 1 :].strip().decode("utf-8", "replace"),
            )
    return StatusText("", b"", line.strip().decode("utf-8", "replace"))
