"""How a path written in the config becomes a path on this machine.

``$VAR`` and ``${VAR}`` are replaced first, then a leading ``~`` or ``~user`` (so a variable
may hold ``~/Mail``); a path still relative after that is relative to the config file's
directory.  What cannot be expanded is an error: left as it is, ``~nosuchuser/Mail`` or
``$UNSET/Mail`` would silently become a directory of that name next to the config file, and
``$EMPTY/Mail`` the directory ``/Mail``.

The program of a command (``password_command``, the hooks) is expanded the same way, except
that a name without a "/" is left for $PATH; the command's arguments are not expanded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

# What os.path.expandvars replaces: $NAME and ${ANYTHING}.
_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


class BadPath(ValueError):
    """The path cannot be expanded (the message says why, for the user)."""


def expand_path(value: str, base_dir: Path) -> Path:
    """``value`` with variables and ``~`` expanded, made absolute against ``base_dir``;
    BadPath when a variable is unset or empty, or a ``~user`` has no home."""
    path = Path(_expand(value))
    return path if path.is_absolute() else base_dir / path


def expand_program(value: str, base_dir: Path) -> str:
    """The program of a command, expanded as ``expand_path`` does, except that a name
    without a "/" (after expansion) is returned as it is, for $PATH to find."""
    expanded = _expand(value)
    if "/" not in expanded or os.path.isabs(expanded):
        return expanded
    return str(base_dir / expanded)


def _expand(value: str) -> str:
    _check_variables(value)
    expanded = os.path.expanduser(os.path.expandvars(value))
    if expanded.startswith("~"):
        raise BadPath(_no_home(expanded))
    return expanded


def _check_variables(value: str) -> None:
    written = [m.group(0) for m in _VARIABLE.finditer(value)]
    names = {w: w[1:].removeprefix("{").removesuffix("}") for w in written}
    unset = [w for w, name in names.items() if name not in os.environ]
    if unset:
        raise BadPath(f"{_variables(unset)} not set")
    empty = [w for w, name in names.items() if os.environ[name] == ""]
    if empty:
        raise BadPath(f"{_variables(empty)} set but empty")


def _variables(written: list[str]) -> str:
    if len(written) == 1:
        return f"environment variable {written[0]} is"
    return f"environment variables {', '.join(written)} are"


def _no_home(expanded: str) -> str:
    user = expanded[1:].partition("/")[0]
    if not user:
        return '"~" cannot be expanded: $HOME is not set and this user has no home directory'
    literal = json.dumps(f"./{expanded}", ensure_ascii=False)
    return (
        f"user {json.dumps(user, ensure_ascii=False)} does not exist, so ~{user} has no home"
        f" directory (for a directory named ~{user} next to the config file, write {literal})"
    )
