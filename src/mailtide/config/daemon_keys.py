"""The daemon's and the hooks' keys: set in ``[account.NAME]``, defaulted in ``[general]``.

Each key has one reader (its type and bounds, see ``config.values``) and one field of
``DaemonSettings`` or ``Hooks``.  An account's value wins over ``[general]``'s, which wins
over the field's default.  Two pairs of keys must also agree with each other (``clashes``):
``debounce <= max_delay``, and ``max_connections`` above the number of ``idle_folders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailtide.config.duration import show_duration
from mailtide.config.lines import KeyPath
from mailtide.config.model import DaemonSettings, Hooks
from mailtide.config.values import Reader, boolean, command, duration, folder_names, integer

_RFC_2177 = " (RFC 2177: a server may log out a client idle for 30 minutes)"
_HOOK = command('["notmuch", "new"]')


@dataclass(frozen=True, slots=True)
class Key:
    name: str  # as written in the file
    read: Reader
    field: str  # of DaemonSettings, or of Hooks when ``hook``
    hook: bool = False


KEYS: tuple[Key, ...] = (
    Key("debounce", duration(0, 60), "debounce"),
    Key("max_delay", duration(0, 600, above=True), "max_delay"),
    Key("idle_folders", folder_names, "idle_folders"),
    Key("idle_renew", duration(60, 29 * 60, why=_RFC_2177), "idle_renew"),
    Key("poll", duration(10), "poll"),
    Key("notify", boolean, "notify"),
    Key("max_connections", integer(1, 20), "max_connections"),
    Key("watch_maildir", boolean, "watch_maildir"),
    Key("rescan", duration(0, above=True), "rescan"),
    Key("autorefresh", duration(0), "autorefresh"),
    Key("quick", integer(-1), "quick"),
    Key("hold_connection_open", boolean, "hold_connection_open"),
    Key("keepalive", duration(10, 29 * 60), "keepalive"),
    Key("presync_hook", _HOOK, "presync", hook=True),
    Key("postsync_hook", _HOOK, "postsync", hook=True),
    Key("newmail_hook", _HOOK, "newmail", hook=True),
    Key("hook_timeout", duration(0, above=True), "timeout", hook=True),
)
NAMES: tuple[str, ...] = tuple(key.name for key in KEYS)
BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}


@dataclass(frozen=True, slots=True)
class Setting:
    """A key's value for one account, and where it was set (None: the default).

    ``usable`` False: the key was set to a bad value (reported), and ``value`` is None.
    """

    value: Any
    origin: KeyPath | None
    usable: bool = True


def defaults() -> dict[str, Setting]:
    """Every key's default value."""
    daemon, hooks = DaemonSettings(), Hooks()
    return {
        key.name: Setting(getattr(hooks if key.hook else daemon, key.field), None) for key in KEYS
    }


def unusable(values: Mapping[str, Setting]) -> bool:
    """Whether one of ``values`` was set to a bad value."""
    return not _usable(*values.values())


def settings(values: Mapping[str, Setting]) -> tuple[DaemonSettings, Hooks]:
    """The account's values as its two groups; ``values`` holds every key."""
    daemon = {k.field: values[k.name].value for k in KEYS if not k.hook}
    hooks = {k.field: values[k.name].value for k in KEYS if k.hook}
    return DaemonSettings(**daemon), Hooks(**hooks)


def clashes(values: Mapping[str, Setting], table: KeyPath) -> list[tuple[KeyPath, str]]:
    """The keys of ``table`` whose values disagree with another key: (key path, message).

    Only a pair with at least one key set in ``table`` is reported, so a clash that
    ``[general]`` sets up is reported there once, not again for every account.  The key set
    in ``table`` is blamed (the second of the pair when both are).
    """
    found: list[tuple[KeyPath, str]] = []
    debounce, max_delay = values["debounce"], values["max_delay"]
    if _usable(debounce, max_delay) and debounce.value > max_delay.value:
        found += _blame(
            table,
            (
                debounce,
                f"must be at most {_other('max_delay', max_delay, table)},"
                f" not {_shown(debounce.value)}",
            ),
            (
                max_delay,
                f"must be at least {_other('debounce', debounce, table)},"
                f" not {_shown(max_delay.value)}",
            ),
        )
    folders, connections = values["idle_folders"], values["max_connections"]
    if _usable(folders, connections) and connections.value <= len(folders.value):
        found += _blame(
            table,
            (
                folders,
                f"names {_shown(folders.value)}, one connection each for IDLE, but"
                f" {_other('max_connections', connections, table)} leaves"
                f" {connections.value - 1} besides the one to sync with:"
                " name fewer folders or raise max_connections",
            ),
            (
                connections,
                f"must be at least {len(folders.value) + 1}, one connection for IDLE on each of"
                f" {_other('idle_folders', folders, table)} and one to sync with,"
                f" not {connections.value}",
            ),
        )
    return found


def _usable(*settings: Setting) -> bool:
    return all(setting.usable for setting in settings)


def _blame(
    table: KeyPath, first: tuple[Setting, str], second: tuple[Setting, str]
) -> list[tuple[KeyPath, str]]:
    """The problem at the key of ``table`` to blame, or none when neither is set there."""
    for setting, message in (second, first):
        if setting.origin is not None and setting.origin[:-1] == table:
            return [(setting.origin, message)]
    return []


def _other(name: str, setting: Setting, table: KeyPath) -> str:
    """The other key of a pair, its value, and where it was set when not in ``table``."""
    shown = _shown(setting.value)
    if setting.origin is None:
        return f"{name} ({shown}, the default)"
    if setting.origin[:-1] == table:
        return f"{name} ({shown})"
    return f"{'.'.join(setting.origin)} ({shown})"


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return f"{len(value)} folder" + ("" if len(value) == 1 else "s")
    if isinstance(value, float):
        return show_duration(value)
    return str(value)
