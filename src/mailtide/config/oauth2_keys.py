"""The OAuth2 keys of an IMAP repository: their readers, and the rules between them.

An OAuth2 token source takes the place of a password source, so a repository sets exactly
one of: a password key (``config.password_keys``), ``oauth2_token_command``, or the
built-in flow (``oauth2_client_id``).  The built-in flow needs the token endpoint (or an
``oauth2_provider`` preset) and exactly one place that holds the refresh token; a key that
only the other kind of source reads is an error, not silently ignored.  What the places hold
is read at every connect (``mailtide.auth.oauth2_source``), as for passwords.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailtide.config import password_keys
from mailtide.config.oauth2 import PROVIDERS, OAuth2
from mailtide.config.show import show_value
from mailtide.config.values import BadValue, Reader, boolean, command, expect, string_list

TOKEN_COMMAND = "oauth2_token_command"
CLIENT_ID = "oauth2_client_id"
REFRESH_TOKEN_KEYS = (
    "oauth2_refresh_token_file",
    "oauth2_refresh_token_credential",
    "oauth2_refresh_token_keyring",
    "oauth2_refresh_token_command",
)
SECRET_KEYS = ("oauth2_client_secret", "oauth2_client_secret_command")
BUILT_IN_KEYS = (
    "oauth2_provider",
    CLIENT_ID,
    *SECRET_KEYS,
    "oauth2_token_url",
    "oauth2_auth_url",
    "oauth2_scopes",
    *REFRESH_TOKEN_KEYS,
)
AUTH = "auth"
MECHANISMS = {"auto": None, "oauthbearer": "OAUTHBEARER", "xoauth2": "XOAUTH2"}
KEYS = (AUTH, TOKEN_COMMAND, *BUILT_IN_KEYS)
# http:// is refused but for these: a token or a client secret must not cross a network bare.
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _text(value: object, base_dir: Path) -> str:
    text: str = expect(value, (str,), "a string")
    if not text.strip():
        raise BadValue("must not be empty")
    return text


def url(value: object, base_dir: Path) -> str:
    """An https:// URL (http:// only on the loopback, for a local provider or a test)."""
    text = _text(value, base_dir)
    parts = urlsplit(text)
    if parts.scheme == "https" and parts.hostname:
        return text
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return text
    raise BadValue(f"must be an https:// URL (http:// only for 127.0.0.1), not {show_value(text)}")


def _provider(value: object, base_dir: Path) -> str:
    name = _text(value, base_dir).lower()
    if name not in PROVIDERS:
        known = " or ".join(show_value(p) for p in PROVIDERS)
        raise BadValue(
            f"must be {known}, not {show_value(value)} (for another provider leave it out and"
            ' set "oauth2_token_url" and "oauth2_auth_url")'
        )
    return name


def _scopes(value: object, base_dir: Path) -> tuple[str, ...]:
    scopes = string_list(value)
    if not scopes or not all(s.strip() for s in scopes):
        raise BadValue('must list the scopes to ask for, e.g. ["https://mail.google.com/"]')
    return tuple(scopes)


def _keyring(value: object, base_dir: Path) -> bool:
    chosen = boolean(value, base_dir)
    if chosen and importlib.util.find_spec("keyring") is None:
        raise BadValue(password_keys.KEYRING_MISSING)
    return chosen


def _file(value: object, base_dir: Path) -> Path:
    return password_keys.READERS["password_file"](value, base_dir)  # type: ignore[no-any-return]


def _auth(value: object, base_dir: Path) -> str | None:
    name = _text(value, base_dir).lower()
    if name not in MECHANISMS:
        raise BadValue(f'must be "auto", "oauthbearer" or "xoauth2", not {show_value(value)}')
    return MECHANISMS[name]


READERS: Mapping[str, Reader] = {
    AUTH: _auth,
    TOKEN_COMMAND: command('["oama", "access", "me@example.org"]'),
    "oauth2_provider": _provider,
    CLIENT_ID: _text,
    "oauth2_client_secret": _text,
    "oauth2_client_secret_command": command('["pass", "show", "mail/client-secret"]'),
    "oauth2_token_url": url,
    "oauth2_auth_url": url,
    "oauth2_scopes": _scopes,
    "oauth2_refresh_token_file": _file,
    "oauth2_refresh_token_credential": password_keys.READERS["password_credential"],
    "oauth2_refresh_token_keyring": _keyring,
    "oauth2_refresh_token_command": command('["pass", "show", "mail/refresh-token"]'),
}


def _set(table: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if key in table and table[key] is not False]


def _listed(keys: list[str] | tuple[str, ...]) -> str:
    return ", ".join(show_value(k) for k in keys)


def source_problem(table: Mapping[str, Any]) -> str | None:
    """What is wrong with how many credential sources ``table`` sets (a password source or
    an OAuth2 one), or None for exactly one."""
    tokens = _set(table, (TOKEN_COMMAND, CLIENT_ID))
    passwords = password_keys.chosen(table)
    if not tokens:
        problem = password_keys.count_problem(table)
        if problem is not None and not passwords:
            return f"{problem}, or an OAuth2 token source ({_listed((TOKEN_COMMAND, CLIENT_ID))})"
        return problem
    keys = passwords + tokens
    if len(keys) == 1:
        return None
    return f"sets {len(keys)} credential sources ({_listed(keys)}): keep exactly one"


def clashes(table: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """Problems between the OAuth2 keys: (the key to blame, or None for the table; why)."""
    found = _flow_clashes(table)
    if AUTH in table and not _set(table, (TOKEN_COMMAND, CLIENT_ID)):
        found.append((AUTH, "chooses an OAuth2 mechanism, which a password does not use"))
    return found


def _flow_clashes(table: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    if TOKEN_COMMAND in table:
        why = f'means nothing with "{TOKEN_COMMAND}" (it prints the token): remove it'
        return [(key, why) for key in _set(table, BUILT_IN_KEYS)]
    if CLIENT_ID not in table:
        why = f'needs "{CLIENT_ID}" (the built-in OAuth2 flow) or remove it'
        return [(key, why) for key in _set(table, BUILT_IN_KEYS)]
    found: list[tuple[str | None, str]] = []
    if "oauth2_provider" not in table:
        for key in ("oauth2_token_url",):
            if key not in table:
                found.append((None, f'needs "{key}" or "oauth2_provider" with "{CLIENT_ID}"'))
    places = _set(table, REFRESH_TOKEN_KEYS)
    if len(places) != 1:
        shown = _listed(places or REFRESH_TOKEN_KEYS)
        verb = f"sets {len(places)} refresh-token places ({shown}): keep exactly one"
        found.append((None, verb if places else f"needs the refresh token's place: one of {shown}"))
    if len(_set(table, SECRET_KEYS)) > 1:
        found.append((None, f"sets both {_listed(SECRET_KEYS)}: keep one"))
    return found


def settings(values: Mapping[str, Any]) -> OAuth2 | None:
    """The repository's ``OAuth2`` from the values read (None: it uses a password)."""
    if values.get(TOKEN_COMMAND) is not None:
        return OAuth2(token_command=values[TOKEN_COMMAND], mechanism=values.get(AUTH))
    if values.get(CLIENT_ID) is None:
        return None
    preset = PROVIDERS.get(values.get("oauth2_provider") or "")
    return OAuth2(
        client_id=values[CLIENT_ID],
        client_secret=values.get("oauth2_client_secret"),
        client_secret_command=values.get("oauth2_client_secret_command"),
        token_url=values.get("oauth2_token_url") or (preset.token_url if preset else None),
        auth_url=values.get("oauth2_auth_url") or (preset.auth_url if preset else None),
        scopes=values.get("oauth2_scopes") or (preset.scopes if preset else ()),
        refresh_token_file=values.get("oauth2_refresh_token_file"),
        refresh_token_credential=values.get("oauth2_refresh_token_credential"),
        refresh_token_keyring=bool(values.get("oauth2_refresh_token_keyring")),
        refresh_token_command=values.get("oauth2_refresh_token_command"),
        mechanism=values.get(AUTH),
    )
