"""What ``mailtide check-config`` shows: every key each account resolves to, as
``key = value`` in the config's own syntax, defaults included, secrets redacted.

The lines are made from the checked model's fields, not from a list of keys kept here, so
a key added to the model shows up without a change in this file; only the fields whose key
is spelt otherwise are named (``KEY_OF``, the daemon's and the hooks' keys).  Secrets never
show: a field the model hides from ``repr`` (a password, a client secret) is ``<redacted>``,
and a program that gives a credential (``password_command``, the OAuth2 commands) shows
only its name, since its arguments may hold one (``["sh", "-c", "echo …"]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from mailtide.config import daemon_keys
from mailtide.config.duration import show_duration
from mailtide.config.model import (
    Account,
    Config,
    DaemonSettings,
    Hooks,
    MaildirRepository,
    Repository,
)
from mailtide.config.oauth2 import OAuth2
from mailtide.config.show import show_value
from mailtide.core.fingerprint import Fingerprint
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderRules

REDACTED = "<redacted>"
# Fields whose config key is spelt otherwise (OAuth2's fields also get "oauth2_").
KEY_OF = {"mechanism": "auth"}
_DAEMON_KEY_OF = {(key.hook, key.field): key.name for key in daemon_keys.KEYS}
# Shown with units ("15m"); a duration missing here shows as seconds, which reads back alike.
DURATIONS = frozenset(
    {"retry_delay", "timeout", "debounce", "max_delay", "idle_renew", "poll", "rescan"}
    | {"autorefresh", "keepalive", "hook_timeout"}
)
# Keys that mean nothing with tls = "none" (the model holds their defaults then).
_TLS_ONLY = frozenset(
    {"ca_file", "tls_min_version", "client_cert", "client_key", "cert_fingerprint"}
)


def summary(config: Config) -> Iterator[str]:
    """The lines of check-config after "FILE: ok" and the warnings."""
    general = config.general
    yield f"state: {general.state_dir}"
    yield f"accounts = {_toml(general.accounts)}"
    yield f"max_sync_accounts = {_toml(general.max_sync_accounts)}"
    for account in config.accounts:
        synced = "" if account.name in general.accounts else " (only with -a)"
        yield f"account {account.name}{synced}"
        yield from _account(account)


def describe(repository: Repository) -> str:
    """One repository in a few words: its name, type and where it is."""
    if isinstance(repository, MaildirRepository):
        return f"{repository.name} (maildir, {repository.layout}, {repository.path})"
    return (
        f"{repository.name} ({repository.kind}, {repository.host}:{repository.port},"
        f" tls {repository.tls}, user {repository.user})"
    )


def _account(account: Account) -> Iterator[str]:
    for side in ("local", "remote"):
        repository: Repository = getattr(account, side)
        yield f"  {side}:{' ' * (7 - len(side))}{describe(repository)}"
        yield from (f"    {line}" for line in _repository(repository))
    for field in dataclasses.fields(account):
        value = getattr(account, field.name)
        if isinstance(value, DaemonSettings | Hooks):
            yield from (f"  {line}" for line in _settings(value))
        elif isinstance(value, FolderRules):
            yield from (f"  {line}" for line in _rules(value, f"[account.{account.name}]"))
        elif field.name not in ("name", "local", "remote") and value is not None:
            yield f"  {_line(field.name, value, field.repr)}"


def _rules(rules: FolderRules, owner: str) -> Iterator[str]:
    """The account's own ``folders`` keys (its repositories' filters show under them)."""
    for f in rules.server_filters:
        if f.owner == owner:
            yield f"folders.include = {_toml(f.include)}"
            yield f"folders.exclude = {_toml(f.exclude)}"
    if rules.renames:
        shown = (f"{{ from = {_toml(r.source)}, to = {_toml(r.template)} }}" for r in rules.renames)
        yield f"folders.rename = [{', '.join(shown)}]"
    yield f"folders.map_special = {_toml(rules.map_special)}"


def _settings(settings: DaemonSettings | Hooks) -> Iterator[str]:
    hook = isinstance(settings, Hooks)
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            yield _line(_DAEMON_KEY_OF[(hook, field.name)], value, field.repr)


def _repository(repository: Repository) -> Iterator[str]:
    tls_off = getattr(repository, "tls", None) == "none"
    kind = "maildir" if isinstance(repository, MaildirRepository) else repository.kind
    yield f"type = {_toml(kind)}"
    for field in dataclasses.fields(repository):
        value = getattr(repository, field.name)
        if field.name in ("name", "kind", "left_out") or (tls_off and field.name in _TLS_ONLY):
            continue
        if field.name == "gmail_labels_as" and not getattr(repository, "gmail_labels", False):
            continue  # means nothing outside Gmail's labels mode
        if isinstance(value, OAuth2):
            yield from _oauth2(value)
        elif isinstance(value, FolderFilter):
            yield f"folders.include = {_toml(value.include)}"
            yield f"folders.exclude = {_toml(value.exclude)}"
        elif _chosen(field, value):
            yield _line(KEY_OF.get(field.name, field.name), value, field.repr, credential=True)


def _oauth2(oauth2: OAuth2) -> Iterator[str]:
    for field in dataclasses.fields(oauth2):
        value = getattr(oauth2, field.name)
        key = KEY_OF.get(field.name, f"oauth2_{field.name}")
        if key == "auth":  # the model holds the SASL name, the config the word
            yield f"auth = {_toml((value or 'auto').lower())}"
        elif _chosen(field, value):
            yield _line(key, value, field.repr, credential=True)


def _chosen(field: dataclasses.Field[object], value: object) -> bool:
    """Whether a key was set or has a default worth showing: not None, not a source left
    unchosen (``keyring = false``), not an empty list nobody asked for."""
    if value is None:
        return False
    if value is False or value == ():
        return value != field.default
    return True


def _line(key: str, value: object, shown: bool, credential: bool = False) -> str:
    """``key = value``; a secret redacted, a credential program without its arguments."""
    if not shown:
        return f"{key} = {REDACTED}"
    if credential and key.endswith("_command") and isinstance(value, tuple) and value:
        hidden = f"  # {len(value) - 1} argument(s) {REDACTED}" if len(value) > 1 else ""
        return f"{key} = {_toml(value[:1])}{hidden}"
    if key in DURATIONS and isinstance(value, int | float):
        return f"{key} = {_toml(show_duration(value))}"
    return f"{key} = {_toml(value)}"


def _toml(value: object) -> str:
    """A value in TOML syntax (strings and paths quoted, lists bracketed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path | Fingerprint):
        return show_value(str(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return show_value(value)
