"""Which folders of a repository take part in a sync.

A ``FolderFilter`` holds glob patterns on *canonical* folder names (Unicode,
"/"-separated, "INBOX" for the inbox).  A folder is selected when it matches
at least one ``include`` pattern and no ``exclude`` pattern.

The glob language is fnmatch's, with two deliberate choices:

- ``*`` matches any run of characters **including "/"**: ``Spam*`` selects
  ``Spam`` and ``Spam/2024``; ``Spam/*`` only the folders below ``Spam``.
  Folder trees are filtered far more often than single levels, and a pattern
  per depth would be a trap.
- ``?`` matches one character, ``[abc]`` / ``[!abc]`` one character of (not
  of) a set.  There is no backslash escape (canonical names never hold a
  backslash); write ``[*]`` for a literal ``*``.  An unclosed ``[`` is an
  error, not a literal, so a typo does not silently select nothing.

Matching is case-sensitive, except that the inbox is always ``INBOX``: a
pattern whose first component is "inbox" in any case matches the inbox (and
``INBOX/...`` below it), whatever case the server uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailtide.core.names import is_inbox


class BadPattern(ValueError):
    """A glob pattern that cannot be used (the message is for the user)."""


def _inbox_first(name: str) -> str:
    """Spell a leading "inbox" component (any case) as "INBOX"."""
    head, sep, rest = name.partition("/")
    return "INBOX" + sep + rest if is_inbox(head) else name


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate one glob into an anchored regular expression, or raise BadPattern."""
    if not pattern:
        raise BadPattern("empty pattern")
    pattern = _inbox_first(pattern)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            start = i + 1
            if pattern[start : start + 1] == "!":
                start += 1
            if pattern[start : start + 1] == "]":  # a "]" first in the set is a literal
                start += 1
            end = pattern.find("]", start)
            if end < 0:
                raise BadPattern(f"pattern {pattern!r} has an unclosed '['")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            # Escape everything but '-', so only ranges keep a meaning inside the set.
            chars = "".join("\\" + c if c in "\\^[]" else c for c in body)
            out.append(f"[{'^' if negate else ''}{chars}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as e:  # e.g. a reversed range such as [z-a]
        raise BadPattern(f"pattern {pattern!r}: {e}") from None


@dataclass(frozen=True, slots=True)
class FolderFilter:
    """Include/exclude globs on canonical folder names; see the module docstring.

    The default selects every folder.  An empty ``include`` selects nothing.
    Constructing a filter with a bad pattern raises ``BadPattern``.
    """

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    _include_re: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _exclude_re: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        # Frozen: the compiled forms are derived once, here.
        object.__setattr__(self, "_include_re", tuple(compile_pattern(p) for p in self.include))
        object.__setattr__(self, "_exclude_re", tuple(compile_pattern(p) for p in self.exclude))

    def selects(self, name: str) -> bool:
        """True when the canonical folder ``name`` takes part in the sync."""
        name = _inbox_first(name)
        return any(r.fullmatch(name) for r in self._include_re) and not any(
            r.fullmatch(name) for r in self._exclude_re
        )
