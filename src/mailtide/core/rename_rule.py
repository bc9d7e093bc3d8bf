"""One folder rename rule (``{ from = "re", to = "template" }``) and its derived reverse.

``from`` is a Python regular expression that must match the **whole** server name (a
leading ``^`` and a trailing ``$`` are allowed and change nothing).  ``to`` is the local
name: text with ``{1}`` or ``{name}`` for a group of ``from``, ``{1:lower}`` for that group
lower-cased, ``{{`` and ``}}`` for braces.

The reverse (local name -> server name) is never written by hand, so it cannot drift from
the forward rule: the local name is matched against ``to`` (each group by its own pattern
from ``from``, a lower-cased one in any case) and the server name is rebuilt from the
literal text of ``from`` and the groups found.  That needs ``from`` to be literal text and
groups only at its top level, and every such group to appear in ``to``; a rule without
that cannot be reversed and is refused with ``BadRename`` when it is compiled.

A reverse found here is only a candidate: ``FolderRules`` keeps it only when the forward
rules turn it back into the same local name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_QUANTIFIERS = "*+?{"
# Outside a group these have a meaning in a regular expression, so are no literal text.
_SPECIAL = ".^$*+?{}[]|)"


class BadRename(ValueError):
    """A rename rule that cannot be used (the message is for the user)."""


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Group:
    """A group at the top level of ``from``: its number and its own pattern."""

    number: int
    body: str


@dataclass(frozen=True, slots=True)
class _Ref:
    """``{N}`` or ``{N:lower}`` in ``to`` (names resolved to numbers)."""

    number: int
    lower: bool


def _group_end(source: str, start: int) -> int:
    """The index just past the ")" closing the "(" at ``start`` (escapes and sets skipped)."""
    depth = 0
    i = start
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _set_end(source, i)
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise BadRename(f"from {source!r} has an unclosed '('")


def _set_end(source: str, start: int) -> int:
    """The index just past the "]" closing the set "[" at ``start``."""
    i = start + 1
    if source[i : i + 1] == "^":
        i += 1
    if source[i : i + 1] == "]":  # a "]" first in the set is a member
        i += 1
    while i < len(source) and source[i] != "]":
        i += 2 if source[i] == "\\" else 1
    return i + 1


def _captures(text: str) -> int:
    """How many capturing groups open in ``text`` (the numbering Python gives them)."""
    count = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _set_end(text, i)
            continue
        if ch == "(" and (text[i + 1 : i + 2] != "?" or text[i + 1 : i + 4] == "?P<"):
            count += 1
        i += 1
    return count


def _split_from(source: str) -> tuple[list[_Text | _Group], dict[str, int]]:
    """``from`` as literal text and top-level groups; BadRename when a part outside the
    groups is not literal text.  Also the group names, by number."""
    end = len(source)
    if source.endswith("$"):
        escapes = len(source[:-1]) - len(source[:-1].rstrip("\\"))
        if escapes % 2 == 0:  # "\$" is a literal dollar, "\\$" a backslash and the end
            end -= 1
    i = 1 if source.startswith("^") else 0
    parts: list[_Text | _Group] = []
    names: dict[str, int] = {}
    number = 0
    while i < end:
        ch = source[i]
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if not escaped or (escaped.isascii() and escaped.isalnum()):
                raise BadRename(
                    f"from {source!r}: '\\{escaped}' outside a group is no literal text"
                )
            parts.append(_Text(escaped))
            i += 2
        elif ch == "(":
            close = _group_end(source, i)
            inner = source[i + 1 : close - 1]
            if inner.startswith("?P<"):
                name, _, body = inner[3:].partition(">")
                names[name] = number + 1
            elif inner.startswith("?"):
                raise BadRename(
                    f"from {source!r}: '({inner[:2]}' at the top level is not a group that"
                    " can be copied into to (use a plain group: '(...)')"
                )
            else:
                body = inner
            parts.append(_Group(number + 1, body))
            number += 1 + _captures(body)
            if close < end and source[close] in _QUANTIFIERS:
                raise BadRename(
                    f"from {source!r}: a group with '{source[close]}' after it cannot be"
                    " rebuilt (put the repetition inside the group)"
                )
            i = close
        elif ch in _SPECIAL:
            raise BadRename(
                f"from {source!r}: '{ch}' outside a group is no literal text, so the server"
                f" name cannot be rebuilt from a local name (write '\\{ch}' for the character"
                " itself, or put it inside a group used in to)"
            )
        else:
            parts.append(_Text(ch))
            i += 1
    return parts, names


_REF = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")


def _split_to(template: str, names: dict[str, int], groups: int) -> list[_Text | _Ref]:
    """``to`` as text and group references; BadRename on a bad one."""
    parts: list[_Text | _Ref] = []
    i = 0
    while i < len(template):
        if template.startswith(("{{", "}}"), i):
            parts.append(_Text(template[i]))
            i += 2
            continue
        if template[i] == "}":
            raise BadRename(f"to {template!r}: a single '}}' (write '}}}}' for a brace)")
        if template[i] != "{":
            parts.append(_Text(template[i]))
            i += 1
            continue
        m = _REF.match(template, i)
        if m is None:
            raise BadRename(f"to {template!r}: an unclosed '{{' (write '{{{{' for a brace)")
        key, modifier = m.group(1), m.group(2)
        if modifier not in (None, "lower"):
            raise BadRename(f"to {template!r}: unknown '{{{key}:{modifier}}}' (only ':lower')")
        if key.isdigit() and 1 <= int(key) <= groups:
            number = int(key)
        elif key in names:
            number = names[key]
        else:
            raise BadRename(f"to {template!r}: from has no group {key!r}")
        parts.append(_Ref(number, modifier == "lower"))
        i = m.end()
    return parts


def _reverse_pattern(to: list[_Text | _Ref], bodies: dict[int, str]) -> str:
    """A regular expression matching what ``to`` makes, capturing each group as ``_gN``."""
    out: list[str] = []
    seen: set[int] = set()
    for part in to:
        if isinstance(part, _Text):
            out.append(re.escape(part.text))
        elif part.number in seen:
            out.append(f"(?P=_g{part.number})")
        else:
            seen.add(part.number)
            body = f"(?i:{bodies[part.number]})" if part.lower else bodies[part.number]
            out.append(f"(?P<_g{part.number}>{body})")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class RenameRule:
    """``from`` (``source``) and ``to`` (``template``) of one rule; see the module docstring.

    Constructing one that cannot be used or reversed raises ``BadRename``.
    """

    source: str
    template: str
    _from: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _parts: tuple[_Text | _Group, ...] = field(init=False, repr=False, compare=False)
    _to: tuple[_Text | _Ref, ...] = field(init=False, repr=False, compare=False)
    _reverse: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.source:
            raise BadRename("from is empty")
        try:
            compiled = re.compile(self.source, re.DOTALL)
        except re.error as e:
            raise BadRename(f"from {self.source!r}: {e}") from None
        parts, names = _split_from(self.source)
        to = _split_to(self.template, names, compiled.groups)
        bodies = {p.number: p.body for p in parts if isinstance(p, _Group)}
        used = {p.number for p in to if isinstance(p, _Ref)}
        nested = sorted(used - set(bodies))
        if nested:
            raise BadRename(
                f"to {self.template!r} uses group {nested[0]}, which is inside another group"
                " of from: only the groups at the top of from can be used"
            )
        unused = sorted(set(bodies) - used)
        if unused:
            raise BadRename(
                f"group {unused[0]} of from {self.source!r} is not in to {self.template!r}, so"
                " a local name cannot be turned back into the server name"
            )
        try:
            reverse = re.compile(_reverse_pattern(to, bodies), re.DOTALL)
        except re.error as e:
            raise BadRename(f"from {self.source!r} cannot be reversed: {e}") from None
        # Frozen: the compiled forms are derived once, here.
        object.__setattr__(self, "_from", compiled)
        object.__setattr__(self, "_parts", tuple(parts))
        object.__setattr__(self, "_to", tuple(to))
        object.__setattr__(self, "_reverse", reverse)

    def local_name(self, server: str) -> str | None:
        """The local name this rule gives ``server``; None when ``from`` does not match it."""
        m = self._from.fullmatch(server)
        if m is None:
            return None
        out: list[str] = []
        for part in self._to:
            if isinstance(part, _Text):
                out.append(part.text)
            else:
                text = m.group(part.number) or ""
                out.append(text.lower() if part.lower else text)
        return "".join(out)

    def server_name(self, local: str) -> str | None:
        """A server name this rule could have turned into ``local`` (a candidate, see the
        module docstring); None when ``to`` cannot have made ``local``."""
        m = self._reverse.fullmatch(local)
        if m is None:
            return None
        return "".join(
            p.text if isinstance(p, _Text) else m.group(f"_g{p.number}") for p in self._parts
        )
