"""An OfflineIMAP config (``~/.offlineimaprc``, INI) translated into mailtide's TOML.

Each ``[Account X]`` becomes ``[account.X]`` with its two repositories.  Every key is either
translated or listed in a comment under its table with the reason: nothing is dropped
silently.  Python in the config (``remotepasseval``, lambdas) is parsed, never run.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailtide.config import import_lambdas as lambdas
from mailtide.config.import_toml import (
    LOOPBACK,
    SourceError,
    TableDraft,
    absolute,
    braces,
    duration,
    regex_literal,
    shell,
)

_NO_KEY = "mailtide has no such setting"
_STATE = "mailtide keeps its own state in state_dir and pairs the mail already here by content"
_TRUE = {"yes", "true", "on", "1"}
_FALSE = {"no", "false", "off", "0"}
_GMAIL_HOST = "imap.gmail.com"
_PROVIDERS = {
    "google": ("accounts.google.com", "googleapis.com"),
    "microsoft": ("microsoftonline",),
}
_TLS_VERSIONS = {"tls1_2": "1.2", "tls1_3": "1.3"}
# Keys read as part of another key's translation, or that only choose the table's kind.
_USED_ELSEWHERE = {"type", "localrepository", "remoterepository"}


@dataclass(frozen=True, slots=True)
class Source:
    """The parsed file: its name (for messages), its text, the INI sections."""

    file: str
    text: str
    ini: configparser.RawConfigParser

    def line_of(self, section: str) -> str:
        """``file:line`` of a section's header, for a message."""
        header = re.compile(r"^\s*\[\s*" + re.escape(section) + r"\s*\]", re.MULTILINE)
        found = header.search(self.text)
        line = self.text.count("\n", 0, found.start()) + 1 if found else 0
        return f"{self.file}:{line}" if line else self.file


def parse(text: str, file: str) -> Source:
    """The INI sections of ``text``; SourceError (one line, file:line) when it does not parse."""
    ini = configparser.RawConfigParser(default_section="\0none", strict=True)
    try:
        ini.read_string(text, source=file)
    # The offending line is never shown: it may hold a password.
    except configparser.MissingSectionHeaderError as e:
        raise SourceError(
            f"{file}:{e.lineno}: a setting before the first [section] header; move it into one"
        ) from None
    except configparser.ParsingError as e:
        raise SourceError(
            f"{file}:{e.errors[0][0]}: not a KEY = VALUE line, a [section] header or a "
            "comment; fix or remove it"
        ) from None
    except configparser.DuplicateSectionError as e:
        raise SourceError(f"{file}:{e.lineno}: [{e.section}] appears twice; merge them") from None
    except configparser.DuplicateOptionError as e:
        raise SourceError(
            f"{file}:{e.lineno}: {e.option} is set twice in [{e.section}]; keep one"
        ) from None
    return Source(file, text, ini)


def _bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _names(value: str) -> list[str] | None:
    try:
        items = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return None
    if isinstance(items, list | tuple) and all(isinstance(i, str) for i in items):
        return list(items)
    return None


def translate(source: Source) -> list[TableDraft]:
    """The mailtide tables: ``[general]``, then per account its table and its repositories'."""
    general = TableDraft(("general",))
    accounts = _accounts(source, general)
    tables = [general]
    done: set[str] = set()
    for name in accounts:
        account = TableDraft(("account", name))
        local, remote = _repositories(source, name)
        tables.append(account)
        for role, repo in (("local", local), ("remote", remote)):
            account.set(role, repo)
            if repo in done:
                continue
            done.add(repo)
            table = TableDraft(("repository", repo))
            if role == "local":
                _local(source, repo, account, table)
            else:
                _remote(source, repo, account, table)
            tables.append(table)
        _account_keys(source, name, account)
    return tables


def _accounts(source: Source, general: TableDraft) -> list[str]:
    sections = [s for s in source.ini.sections() if s.lower().startswith("account ")]
    defined = [s.split(None, 1)[1].strip() for s in sections]
    listed = defined
    for section in source.ini.sections():
        if section.lower() in ("general", "mbnames", "default"):
            for key, value in source.ini.items(section):
                if section.lower() == "general" and key == "accounts":
                    listed = [a.strip() for a in value.split(",") if a.strip()]
                elif section.lower() == "general" and key == "maxsyncaccounts":
                    general.set("max_sync_accounts", int(_number(value) or 1))
                else:
                    why = _STATE if key == "metadata" else _NO_KEY
                    general.untranslated(f"[{section}] {key}", value, why)
    missing = [a for a in listed if a not in defined]
    if missing:
        raise SourceError(
            f"{source.file}: [general] accounts names {missing[0]!r}, which has no "
            f"[Account {missing[0]}] section; add it or take the name out"
        )
    if not listed:
        raise SourceError(f"{source.file}: no [Account NAME] section: nothing to import")
    if listed != defined:
        general.set("accounts", listed)
    return listed


def _section(source: Source, kind: str, name: str) -> str:
    for section in source.ini.sections():
        if section.lower() == f"{kind.lower()} {name.lower()}":
            return section
    raise SourceError(f"{source.file}: no [{kind} {name}] section; add it")


def _repositories(source: Source, account: str) -> tuple[str, str]:
    section = _section(source, "Account", account)
    names = []
    for key in ("localrepository", "remoterepository"):
        if not source.ini.has_option(section, key):
            raise SourceError(f"{source.line_of(section)}: [{section}] has no {key}; add it")
        names.append(source.ini.get(section, key).strip())
    return names[0], names[1]


def _account_keys(source: Source, name: str, account: TableDraft) -> None:
    section = _section(source, "Account", name)
    for key, value in source.ini.items(section):
        if key in _USED_ELSEWHERE:
            continue
        if key in ("autorefresh",) and _number(value) is not None:
            account.set("autorefresh", duration(round(float(value) * 60, 3)))
        elif key == "quick" and _number(value) is not None:
            account.set("quick", int(float(value)))
        elif key in ("presynchook", "postsynchook"):
            account.set(f"{key[:-4]}_hook", shell(value.strip()))
        elif key == "utf8foldernames":
            account.untranslated(key, value, "mailtide always names local folders in UTF-8")
        elif key in ("synclabels", "labelsheader", "ignorelabels"):
            why = "the X-Keywords header is not built yet; see gmail_labels and gmail_labels_as"
            account.untranslated(key, value, why)
        elif key in ("maxage", "maxsize", "startdate"):
            account.untranslated(key, value, "mailtide syncs every message; not built yet")
        else:
            account.untranslated(key, value, _NO_KEY)


def _local(source: Source, name: str, account: TableDraft, table: TableDraft) -> None:
    section = _section(source, "Repository", name)
    keys = dict(source.ini.items(section))
    table.set("type", "maildir")
    if "localfolders" not in keys:
        raise SourceError(f"{source.line_of(section)}: [{section}] has no localfolders; add it")
    table.set("path", absolute(keys["localfolders"].strip()))
    table.set("layout", "fs")
    sep = keys.get("sep", ".").strip()
    if sep != "/":
        _separated(keys["localfolders"].strip(), sep, account, table)
    for key, value in keys.items():
        if key in (*_USED_ELSEWHERE, "localfolders", "sep"):
            continue
        if key == "folderfilter":
            _filter(table, key, value)
        elif key == "nametrans":
            table.untranslated(key, value, "the way back is derived from the account's rules")
        else:
            table.untranslated(key, value, _NO_KEY)


def _separated(path: str, sep: str, account: TableDraft, table: TableDraft) -> None:
    """OfflineIMAP keeps a subfolder A/B in the directory ``A<sep>B``, where mailtide's fs
    layout nests it (A/B).  The directories it left get a rename rule each, so their mail is
    paired, not downloaded again beside them (nor uploaded as new folders)."""
    found = _dirs_holding(path, sep)
    rules = [{"from": regex_literal(name.replace(sep, "/")), "to": braces(name)} for name in found]
    _add_renames(account, rules)
    kept = f"; the {len(rules)} such directories here keep their names (folders.rename)"
    table.note(
        f"sep = {sep}: OfflineIMAP kept a subfolder A/B in the directory A{sep}B, mailtide "
        f"nests a new one (A/B){kept if rules else ''}"
    )


def _dirs_holding(path: str, sep: str) -> list[str]:
    """The Maildir folders directly under ``path`` whose names hold ``sep``."""
    root = Path(os.path.expandvars(os.path.expanduser(path)))
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []  # not there (yet): nothing to keep
    return sorted(
        e.name for e in entries if sep in e.name and e.is_dir() and Path(e.path, "cur").is_dir()
    )


def _add_renames(account: TableDraft, rules: list[dict[str, str]], first: bool = False) -> None:
    """Add rename rules to the account's (the first match wins: ``first`` puts them ahead)."""
    if not rules:
        return
    old = account.keys.get("folders.rename", [])
    assert isinstance(old, list)
    account.set("folders.rename", [*rules, *old] if first else [*old, *rules])


def _filter(table: TableDraft, key: str, value: str) -> None:
    found = lambdas.folder_filter(value)
    if found is None:
        table.untranslated(key, value, "Python: write it as folders.include / folders.exclude")
        return
    if found.include:
        table.set("folders.include", list(found.include))
    if found.exclude:
        table.set("folders.exclude", list(found.exclude))


def _tls(keys: dict[str, str], table: TableDraft) -> None:
    ssl = _bool(keys.get("ssl", "yes")) is not False
    starttls = _bool(keys.get("starttls", "yes")) is not False
    host = keys.get("remotehost", "").strip()
    if ssl:
        table.set("tls", "implicit")
    elif starttls or host not in LOOPBACK:
        table.set("tls", "starttls")
        if not starttls:
            table.note("ssl = no, starttls = no: mailtide speaks plain IMAP only to 127.0.0.1")
    else:
        table.set("tls", "none")


def _password(keys: dict[str, str], account: TableDraft, table: TableDraft) -> None:
    if "remotepasseval" in keys:
        why = "Python code cannot be translated"
        table.untranslated("remotepasseval", keys["remotepasseval"], why)
    if "oauth2_client_id" in keys:
        for key in ("remotepass", "remotepassfile"):
            if key in keys:
                table.untranslated(key, keys[key], "OAuth2 signs in instead")
        return
    if "remotepass" in keys:
        table.set("password", keys["remotepass"])
        table.note(
            "a password copied from remotepass: keep this file chmod 600, or better, "
            'replace it with password_command = ["pass", "show", "..."]'
        )
    elif "remotepassfile" in keys:
        table.set("password_file", keys["remotepassfile"].strip())
    else:  # nothing else mailtide can sign in with
        table.note(
            "netrc = true is OfflineIMAP's own fallback; replace it with the command that "
            "prints the password"
        )
        table.set("netrc", True)
        table.placeholders.append('password_command = ["pass", "show", "mail/..."]')


def _oauth2_keys(keys: dict[str, str]) -> bool:
    return any(k.startswith("oauth2_") for k in keys)


def _oauth2(keys: dict[str, str], repo: str, table: TableDraft) -> None:
    if not _oauth2_keys(keys):
        return
    for key in ("oauth2_client_id", "oauth2_client_secret"):
        if key in keys:
            table.set(key, keys[key].strip())
    url = keys.get("oauth2_request_url", "").strip()
    provider = next((p for p, hosts in _PROVIDERS.items() if any(h in url for h in hosts)), None)
    if provider or table.keys.get("type") == "gmail":
        table.set("oauth2_provider", provider or "google")
    elif url:
        table.set("oauth2_token_url", url)
    if "oauth2_client_id" in keys:
        table.set("oauth2_refresh_token_file", f"~/.config/mailtide/{repo}.refresh-token")
        table.note(
            "OAuth2: run mailtide oauth2 authorize ACCOUNT once to fill the refresh-token file"
        )
    if "oauth2_access_token_eval" in keys:
        table.placeholders.append('oauth2_token_command = ["..."]')


def _remote(source: Source, name: str, account: TableDraft, table: TableDraft) -> None:
    section = _section(source, "Repository", name)
    keys = {k: v for k, v in source.ini.items(section)}
    gmail = keys.get("type", "IMAP").strip().lower() == "gmail"
    table.set("type", "gmail" if gmail else "imap")
    host = keys.get("remotehost", "").strip()
    if not gmail or host not in ("", _GMAIL_HOST):
        if not host:
            raise SourceError(f"{source.line_of(section)}: [{section}] has no remotehost; add it")
        table.set("host", host)
    if "remoteport" in keys:
        table.set("port", int(_number(keys["remoteport"]) or 0))
    _tls(keys, table)
    if "remoteuser" in keys:
        table.set("user", keys["remoteuser"].strip())
    _password(keys, account, table)
    _oauth2(keys, name, table)
    if gmail:
        table.note(
            "type = gmail leaves out All Mail, Spam and Trash (OfflineIMAP synced them unless "
            "folderfilter left them out); name one in folders.include to sync it"
        )
    for key, value in keys.items():
        _remote_key(key, value, keys, account, table)
    _connections(account)


_PASSWORD_KEYS = {"remotepass", "remotepassfile", "remotepasseval"}
_DONE_KEYS = {
    *_USED_ELSEWHERE,
    *_PASSWORD_KEYS,
    "remotehost",
    "remoteport",
    "remoteuser",
    "ssl",
    "starttls",
    "oauth2_client_id",
    "oauth2_client_secret",
    "oauth2_request_url",
}


@dataclass(frozen=True, slots=True)
class Plain:
    """A repository key that is one mailtide key: where it goes (the account's table or the
    repository's), its name, and how its value reads (None: a value mailtide cannot take)."""

    on_account: bool
    name: str
    read: Callable[[str], object]


def _text(value: str) -> str | None:
    return value or None


def _int_in(low: int, high: int) -> Callable[[str], int | None]:
    def read(value: str) -> int | None:
        number = _number(value)
        ok = number is not None and number.is_integer() and low <= number <= high
        return int(number) if ok and number is not None else None

    return read


# The ranges are mailtide's, so the output loads.
_PLAIN = {
    "sslcacertfile": Plain(False, "ca_file", _text),
    "sslclientcert": Plain(False, "client_cert", _text),
    "sslclientkey": Plain(False, "client_key", _text),
    "usecompression": Plain(False, "compress", _bool),
    "ssl_version": Plain(False, "tls_min_version", _TLS_VERSIONS.get),
    "subscribedonly": Plain(True, "subscribed_only", _bool),
    "holdconnectionopen": Plain(True, "hold_connection_open", _bool),
    "maxconnections": Plain(True, "max_connections", _int_in(1, 20)),
    "keepalive": Plain(True, "keepalive", _int_in(10, 29 * 60)),
    "retrycount": Plain(True, "retries", _int_in(0, 100)),
}


def _remote_key(
    key: str, value: str, keys: dict[str, str], account: TableDraft, table: TableDraft
) -> None:
    if key in _DONE_KEYS or (key == "sslcacertfile" and value.strip() == "OS-DEFAULT"):
        return  # OS-DEFAULT: the system trust store, mailtide's default too
    plain = _PLAIN.get(key)
    if plain is None:
        _special_key(key, value, keys, account, table)
        return
    read = plain.read(value.strip())
    if read is None:
        table.untranslated(key, value, "a value mailtide cannot take")
    else:
        (account if plain.on_account else table).set(plain.name, read)


def _special_key(
    key: str, value: str, keys: dict[str, str], account: TableDraft, table: TableDraft
) -> None:
    if key == "folderfilter":
        _filter(table, key, value)
    elif key == "nametrans":
        _nametrans(value, account, table)
    elif key == "idlefolders":
        _idle(value, account, table)
    elif key == "cert_fingerprint":
        pins = [p.strip().replace(":", "") for p in value.split(",")]
        sha256 = [p for p in pins if re.fullmatch(r"[0-9A-Fa-f]{64}", p)]
        if sha256:
            table.set("cert_fingerprint", "sha256:" + sha256[0])
            others = ", ".join(p for p in pins if p != sha256[0])
            if others:
                table.untranslated(key, others, "mailtide pins one SHA-256 fingerprint")
        else:
            why = "mailtide pins SHA-256: openssl x509 -noout -fingerprint -sha256"
            table.untranslated(key, value, why)
    elif key == "auth_mechanisms" and value.split(",")[0].strip().upper() == "XOAUTH2":
        table.set("auth", "xoauth2")
    elif key == "newmail_hook":
        command = lambdas.hook_command(value)
        if command is None:
            account.untranslated(key, value, "Python: write it as newmail_hook = [argv]")
        else:
            account.set("newmail_hook", shell(command))
    elif key == "tls_level":
        table.untranslated(key, value, "mailtide refuses TLS older than 1.2 anyway")
    elif key == "oauth2_refresh_token":
        table.untranslated(key, value, "never inline: run mailtide oauth2 authorize ACCOUNT")
    elif key.endswith("eval"):
        table.untranslated(key, value, "Python code cannot be translated")
    else:
        table.untranslated(key, value, _NO_KEY)


def _nametrans(value: str, account: TableDraft, table: TableDraft) -> None:
    found = lambdas.name_translation(value)
    if found is None:
        table.untranslated(
            "nametrans", value, "Python: write it as folders.rename in [account], see README"
        )
        return
    _add_renames(account, list(found.rules), first=True)
    if found.namespace:
        table.note("nametrans took off INBOX.: mailtide takes the server's prefix off itself")


def _idle(value: str, account: TableDraft, table: TableDraft) -> None:
    names = _names(value)
    if names is None:
        table.untranslated("idlefolders", value, "not a list of folder names")
        return
    account.set("idle_folders", names)


def _connections(account: TableDraft) -> None:
    """mailtide needs one connection beyond the IDLE ones to sync with."""
    idle = account.keys.get("idle_folders")
    wanted = account.keys.get("max_connections", 4)
    if isinstance(idle, list) and isinstance(wanted, int) and wanted <= len(idle):
        account.set("max_connections", len(idle) + 1)
