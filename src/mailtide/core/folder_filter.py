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

A pattern that starts with ``re:`` is a Python regular expression instead,
which must match the **whole** name, as a glob does (``re:.*Del.*`` for a
name holding "Del"): a search anywhere would make ``re:Sent`` also select
``Unsent/2024``.  Its syntax errors are reported like a glob's.  (A glob for a
folder whose name starts with "re:" is written ``[r]e:...``.)

Matching is case-sensitive, except that the inbox is always ``INBOX``: a
pattern whose first component is "inbox" in any case matches the inbox (and
``INBOX/...`` below it), whatever case the server uses.  (A ``re:`` pattern
sees the inbox as "INBOX".)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailtide.core.names import is_inbox

REGEX_PREFIX = "re:"


class BadPattern(ValueError):
    """A glob pattern that cannot be used (the message is for the user)."""


def _compile_regex(pattern: str) -> re.Pattern[str]:
    body = pattern[len(REGEX_PREFIX) :]
    if not body:
        raise BadPattern(f"pattern {pattern!r} has no regular expression after 're:'")
    try:
        return re.compile(body, re.DOTALL)
    except re.error as e:
        raise BadPattern(f"pattern {pattern!r}: {e}") from None


def _inbox_first(name: str) -> str:
    """Spell a leading "inbox" component (any case) as "INBOX"."""
    head, sep, rest = name.partition("/")
    return "INBOX" + sep + rest if is_inbox(head) else name


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate one glob (or ``re:`` expression) into a regular expression for
    ``fullmatch``, or raise BadPattern."""
    if not pattern:
        raise BadPattern("empty pattern")
    if pattern.startswith(REGEX_PREFIX):
        return _compile_regex(pattern)
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
    Constructing a filter with a bad pattern raises ``BadPattern``.  ``owner`` names
    where the patterns were written (``[account.work]``), for ``left_out_by``.
    """

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    owner: str = field(default="", compare=False)
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
        return self.left_out_by(name) is None

    def left_out_by(self, name: str) -> str | None:
        """None when ``name`` is selected, else which pattern leaves it out, for a person:
        ``folders.exclude "Trash" of [account.work]``."""
        name = _inbox_first(name)
        of = f" of {self.owner}" if self.owner else ""
        if not any(r.fullmatch(name) for r in self._include_re):
            return f"no folders.include pattern{of} matches it"
        for pattern, compiled in zip(self.exclude, self._exclude_re, strict=True):
            if compiled.fullmatch(name):
                return f"folders.exclude {_quoted(pattern)}{of}"
        return None

    @property
    def is_default(self) -> bool:
        """True when the filter selects every folder by its patterns (include "*" only)."""
        return self.include == ("*",) and not self.exclude


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
