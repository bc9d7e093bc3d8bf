"""The keys of an IMAP repository that say where its password comes from.

Exactly one source per repository: two would leave the reader guessing which one logs in,
none leaves nothing to log in with.  ``netrc = false`` and ``keyring = false`` choose
nothing, so they count as not set.  Only the shape of each value is checked here; what the
source holds (a file's mode, a netrc entry, a keyring item) is read at every connect
(``mailtide.auth``), since it may change while a daemon runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailtide.config.expand import BadPath, expand_path
from mailtide.config.show import show_value
from mailtide.config.values import BadValue, Reader, command, expect

KEYS = ("password", "password_command", "password_file", "password_credential", "netrc", "keyring")
KEYRING_MISSING = (
    "needs the keyring package, which is not installed: pip install 'mailtide[keyring]'"
)


def _password(value: object, base_dir: Path) -> str:
    return str(expect(value, (str,), "a string"))


def _path(value: str, base_dir: Path) -> Path:
    if not value:
        raise BadValue("must not be empty")
    try:
        return expand_path(value, base_dir)
    except BadPath as e:
        raise BadValue(str(e)) from None


def _password_file(value: object, base_dir: Path) -> Path:
    return _path(expect(value, (str,), "a string, the path of a file"), base_dir)


def _credential(value: object, base_dir: Path) -> str:
    name: str = expect(value, (str,), 'a string, a systemd credential name ("mail-work")')
    # systemd's own rule for a credential name: a file name in $CREDENTIALS_DIRECTORY.
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise BadValue(f'must be a credential name (a file name, no "/"), not {show_value(name)}')
    return name


def _netrc(value: object, base_dir: Path) -> Path | None:
    chosen = expect(value, (bool, str), "true (for ~/.netrc) or the path of a netrc file")
    if chosen is False:
        return None
    return _path("~/.netrc" if chosen is True else chosen, base_dir)


def _keyring(value: object, base_dir: Path) -> bool:
    chosen = bool(expect(value, (bool,), "true or false"))
    if chosen and importlib.util.find_spec("keyring") is None:
        raise BadValue(KEYRING_MISSING)
    return chosen


READERS: Mapping[str, Reader] = {
    "password": _password,
    "password_command": command('["pass", "show", "mail/work"]'),
    "password_file": _password_file,
    "password_credential": _credential,
    "netrc": _netrc,
    "keyring": _keyring,
}


def chosen(table: Mapping[str, Any]) -> list[str]:
    """The password keys ``table`` sets, in ``KEYS`` order (``false`` sets none)."""
    return [key for key in KEYS if key in table and table[key] is not False]


def count_problem(table: Mapping[str, Any]) -> str | None:
    """What is wrong with how many sources ``table`` sets, or None for exactly one."""
    keys = chosen(table)
    if len(keys) == 1:
        return None
    listed = ", ".join(show_value(k) for k in (keys or KEYS))
    if keys:
        return f"sets {len(keys)} password sources ({listed}): keep exactly one"
    return f"needs a password source: one of {listed}"


def fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ImapRepository`` fields of the values read (None for a key not set)."""
    found = {key: values.get(key) for key in KEYS}
    found["keyring"] = bool(found["keyring"])
    return found
