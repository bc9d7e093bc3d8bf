"""Read and check the TOML configuration.

Every mistake in the file is collected, not just the first, and each is one
line for the user: ``FILE:LINE: KEY.PATH: what is wrong``.  Unknown keys are
errors (with a "did you mean" when a known key is close), because a misspelt
key silently ignored is a setting the user believes in and does not have.

Relative paths in the file are taken relative to the file's directory, so
the meaning of a config does not depend on where mailtide is started from.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from mailtide.config import daemon_keys, folder_keys, gmail, oauth2_keys, password_keys, tls_keys
from mailtide.config.daemon_keys import Setting
from mailtide.config.expand import BadPath, expand_path
from mailtide.config.exposure import exposed_secret, exposure_warning
from mailtide.config.lines import KeyPath, key_lines, line_of
from mailtide.config.model import (
    DEFAULT_MASS_DELETE_FLOOR,
    DEFAULT_MASS_DELETE_SHARE,
    DEFAULT_MAX_SYNC_ACCOUNTS,
    DEFAULT_PORTS,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
    DEFAULT_TIMEOUT,
    FOLDER_DELETE_MODES,
    LAYOUTS,
    LOOPBACK_HOSTS,
    MAX_RETRY_DELAY,
    TLS_MODES,
    Account,
    Config,
    FolderDelete,
    General,
    ImapRepository,
    Layout,
    MaildirRepository,
    Repository,
    Tls,
)
from mailtide.config.oauth2 import OAuth2
from mailtide.config.overlap import Clash, MaildirSide, maildir_clashes, state_file_clashes
from mailtide.config.show import kind_of, show_value
from mailtide.config.values import (
    BadValue,
    Reader,
    auto_or_bool,
    boolean,
    duration,
    expect,
    integer,
    string_list,
)
from mailtide.core.folder_filter import BadPattern, FolderFilter, compile_pattern
from mailtide.core.folder_rules import FolderRules
from mailtide.core.model import TRASH_SPECIAL_USE
from mailtide.core.names import canonical


class ConfigError(Exception):
    """The configuration cannot be used.  ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _xdg_dir(variable: str, fallback: str) -> Path:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = os.environ.get(variable, "")
    base = Path(value) if value and os.path.isabs(value) else Path.home() / fallback
    return base / "mailtide"


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/mailtide/config.toml`` (``~/.config/mailtide/config.toml``)."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config") / "config.toml"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/mailtide`` (``~/.local/state/mailtide``)."""
    return _xdg_dir("XDG_STATE_HOME", ".local/state")


def load_config(path: str | None) -> Config:
    """Read, check and return the configuration; raise ConfigError listing every problem.

    ``path`` None means the default location (``default_config_path()``).
    """
    file = Path(path) if path is not None else default_config_path()
    shown = path if path is not None else str(file)
    try:
        with file.open("rb") as opened:
            raw = opened.read()
            mode = os.fstat(opened.fileno()).st_mode
    except OSError as e:
        reason = e.strerror or str(e)
        hint = "" if path is not None else " (write one, see config.example.toml, or use -c FILE)"
        raise ConfigError([f"{shown}: cannot read the config file: {reason}{hint}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError([f"{shown}:{line}: the file is not valid UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        where = f"{shown}:{m.group(1)}" if m else shown
        raise ConfigError([f"{where}: TOML syntax error: {e}"]) from None
    checker = _Checker(shown, text, file.absolute().parent)
    config = checker.config(data, file.absolute())
    if checker.problems or config is None:
        raise ConfigError(checker.problems)
    exposed = exposed_secret(mode, config.repositories)
    if exposed is None:
        return config
    warning = exposure_warning(shown, mode, str(exposed[-1]))
    return replace(config, warnings=(checker.located(exposed, warning),))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _show_key(path: KeyPath) -> str:
    return ".".join(
        p if _BARE_KEY.fullmatch(p) else json.dumps(p, ensure_ascii=False) for p in path
    )


def _suggest(word: str, candidates: Iterable[str]) -> str:
    import difflib  # only for a mistake's hint

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {show_value(close[0])}?)" if close else ""


_MAILDIR_KEYS = ("type", "path", "layout", "folders")
_IMAP_KEYS = (
    "type",
    "host",
    "port",
    "tls",
    "ca_file",
    *tls_keys.NAMES,
    "user",
    *password_keys.KEYS,
    *oauth2_keys.KEYS,
    "timeout",
    "compress",
    "folders",
)
_GMAIL_KEYS = (*_IMAP_KEYS, *gmail.KEYS)
_REPOSITORY_KEYS = {"maildir": _MAILDIR_KEYS, "imap": _IMAP_KEYS, "gmail": _GMAIL_KEYS}
# [general] also holds a default for each of daemon_keys.NAMES.
_GENERAL_KEYS = ("accounts", "state_dir", "max_sync_accounts")
_ACCOUNT_KEYS = (
    "local",
    "remote",
    "mass_delete_share",
    "mass_delete_floor",
    "retries",
    "retry_delay",
    "folders",
    "folder_delete",
    "subscribed_only",
    "trash",
    "trash_new_only",
)

Table = dict[str, Any]


class _Checker:
    """Walks the parsed TOML, collecting problems and building the Config."""

    def __init__(self, file: str, text: str, base_dir: Path) -> None:
        self.file = file
        self.lines = key_lines(text)
        self.base_dir = base_dir
        self.found: list[tuple[int, str]] = []
        self.unknown: dict[KeyPath, list[str]] = {}  # unknown keys seen, per table
        self.maildir_sides: list[MaildirSide] = []  # of every account, even one with mistakes

    @property
    def problems(self) -> list[str]:
        """Every problem found so far, in the order of the file."""
        return [text for _, text in sorted(self.found, key=lambda found: found[0])]

    def problem(self, path: KeyPath, message: str) -> None:
        self.found.append((line_of(self.lines, path) or 0, self.located(path, message)))

    def located(self, path: KeyPath, message: str) -> str:
        """``FILE:LINE: KEY.PATH: message``, as far as the key is found."""
        line = line_of(self.lines, path)
        where = f"{self.file}:{line}" if line is not None else self.file
        return f"{where}: {_show_key(path)}: {message}" if path else f"{where}: {message}"

    def report(self, clashes: Iterable[Clash]) -> None:
        for clash in clashes:
            self.problem(clash.key, clash.message)

    # -- the file, section by section --------------------------------------------------

    def config(self, data: Table, file: Path) -> Config | None:
        self.known_keys(data, (), ("general", "account", "repository"))
        repositories_table = self.table(data, (), "repository") or {}
        accounts_table = self.table(data, (), "account") or {}
        general_table = self.table(data, (), "general") or {}
        shared = self.shared_defaults(("general",), general_table)

        repositories: dict[str, Repository] = {}
        for name, value in repositories_table.items():
            path = ("repository", name)
            if self.name_ok(path, "repository", name) and self.is_table(path, value):
                repository = self.repository(path, name, value)
                if repository is not None:
                    repositories[name] = repository

        accounts: dict[str, Account] = {}
        named: list[str] = []  # the account names that can be checked further
        for name, value in accounts_table.items():
            path = ("account", name)
            if not self.name_ok(path, "account", name):
                continue
            named.append(name)
            if self.is_table(path, value):
                account = self.account(path, name, value, repositories, repositories_table, shared)
                if account is not None:
                    accounts[name] = account
        if not accounts_table:
            self.problem((), "no [account.NAME] table: there is nothing to sync")

        general = self.general(("general",), general_table, accounts_table)
        self.report(state_file_clashes(named))
        state_dir_key = ("general", "state_dir") if "state_dir" in general_table else None
        state_dir = general.state_dir if general is not None else None
        self.report(maildir_clashes(self.maildir_sides, state_dir, state_dir_key))
        if self.problems or general is None:
            return None
        return Config(
            path=file,
            general=general,
            accounts=tuple(accounts.values()),
            repositories=tuple(repositories.values()),
        )

    def general(self, path: KeyPath, table: Table, accounts: Table) -> General | None:
        self.known_keys(
            table,
            path,
            (*_GENERAL_KEYS, *daemon_keys.NAMES),
            elsewhere=dict.fromkeys(_ACCOUNT_KEYS, "[account.NAME]"),
        )
        max_sync = self.value(table, path, "max_sync_accounts", integer(1, 64))
        names = self.string_list(table, path, "accounts")
        if names is not None:
            if not names:
                self.problem((*path, "accounts"), "must name at least one account")
            seen: set[str] = set()
            for name in names:
                if name not in accounts:
                    self.problem(
                        (*path, "accounts"),
                        f"no account named {show_value(name)}{_suggest(name, accounts)}",
                    )
                elif name in seen:
                    self.problem((*path, "accounts"), f"account {show_value(name)} is named twice")
                seen.add(name)
        state_dir = self.path(table, path, "state_dir")
        if "state_dir" not in table:
            state_dir = default_state_dir()
        if state_dir is None:
            return None
        return General(
            accounts=tuple(names) if names else tuple(accounts),
            state_dir=state_dir,
            max_sync_accounts=DEFAULT_MAX_SYNC_ACCOUNTS if max_sync is None else max_sync,
        )

    def shared_defaults(self, path: KeyPath, table: Table) -> dict[str, Setting]:
        """Every daemon key's value for an account without its own: [general]'s or the default.

        A clash between two of them is reported here, once, at [general].
        """
        values = daemon_keys.defaults() | self.shared_values(path, table)
        self.report_pairs(daemon_keys.clashes(values, path))
        return values

    def shared_values(self, path: KeyPath, table: Table) -> dict[str, Setting]:
        """The daemon keys ``table`` sets; a bad value is reported, and its Setting unusable."""
        found: dict[str, Setting] = {}
        for name in daemon_keys.NAMES:
            if name in table:
                value = self.value(table, path, name, daemon_keys.BY_NAME[name].read)
                found[name] = Setting(value, (*path, name), usable=value is not None)
        return found

    def report_pairs(self, problems: Iterable[tuple[KeyPath, str]]) -> None:
        for key, message in problems:
            self.problem(key, message)

    def account(
        self,
        path: KeyPath,
        name: str,
        table: Table,
        repositories: dict[str, Repository],
        declared: Table,
        shared: dict[str, Setting],
    ) -> Account | None:
        self.known_keys(
            table,
            path,
            (*_ACCOUNT_KEYS, *daemon_keys.NAMES),
            elsewhere=dict.fromkeys(_GENERAL_KEYS, "[general]"),
        )
        own = self.shared_values(path, table)
        values = shared | own
        self.report_pairs(daemon_keys.clashes(values, path))
        sides: dict[str, Repository | None] = {}
        for side in ("local", "remote"):
            target = self.string(table, path, side, required=True)
            sides[side] = None
            if target is None:
                continue
            if target not in declared:
                self.problem(
                    (*path, side),
                    f"no repository named {show_value(target)}{_suggest(target, declared)}",
                )
            sides[side] = repository = repositories.get(target)
            if isinstance(repository, MaildirRepository):
                self.maildir_sides.append(MaildirSide(name, side, repository))
        if table.get("local") == table.get("remote") and isinstance(table.get("local"), str):
            self.problem((*path, "remote"), "must not be the same repository as local")
        share = self.number(table, path, "mass_delete_share")
        if share is not None and not 0 < share <= 1:
            self.problem(
                (*path, "mass_delete_share"), f"must be above 0 and at most 1, not {share:g}"
            )
        floor = self.integer(table, path, "mass_delete_floor")
        if floor is not None and floor < 0:
            self.problem((*path, "mass_delete_floor"), f"must be 0 or more, not {floor}")
        retries = self.integer(table, path, "retries")
        if retries is not None and not 0 <= retries <= 100:
            self.problem((*path, "retries"), f"must be from 0 to 100, not {retries}")
        delay = self.value(table, path, "retry_delay", duration(0, MAX_RETRY_DELAY))
        folder_delete = self.choice(table, path, "folder_delete", FOLDER_DELETE_MODES)
        subscribed_only = self.get(table, path, "subscribed_only", (bool,), "true or false")
        trash = self.value(table, path, "trash", _trash)
        new_only = self.get(table, path, "trash_new_only", (bool,), "true or false")
        if new_only and table.get("trash", False) is False:
            self.problem(
                (*path, "trash_new_only"),
                "has no effect without trash: set the account's trash too, or remove this key",
            )
        local, remote = sides["local"], sides["remote"]
        for key, problem in gmail.sides_problems(local, remote):
            self.problem((*path, key), problem)
        folders = self.account_folders((*path, "folders"), table, local, remote)
        if local is None or remote is None or folders is None or daemon_keys.unusable(values):
            return None
        daemon, hooks = daemon_keys.settings(values)
        return Account(
            name=name,
            local=local,
            remote=remote,
            mass_delete_share=DEFAULT_MASS_DELETE_SHARE if share is None else share,
            mass_delete_floor=DEFAULT_MASS_DELETE_FLOOR if floor is None else floor,
            retries=DEFAULT_RETRIES if retries is None else retries,
            retry_delay=DEFAULT_RETRY_DELAY if delay is None else delay,
            folder_delete=cast(FolderDelete, folder_delete or "propagate-if-empty"),
            subscribed_only=bool(subscribed_only),
            trash=trash,
            trash_new_only=bool(new_only),
            daemon=daemon,
            hooks=hooks,
            folders=folders,
        )

    def repository(self, path: KeyPath, name: str, table: Table) -> Repository | None:
        kind = self.string(table, path, "type", required=True)
        if kind is None:
            self.known_keys(table, path, sorted(set(_MAILDIR_KEYS + _IMAP_KEYS)))
            return None
        if kind not in _REPOSITORY_KEYS:
            self.problem(
                (*path, "type"),
                f'must be "maildir", "imap" or "gmail", not {show_value(kind)}'
                + _suggest(kind, _REPOSITORY_KEYS),
            )
            self.known_keys(table, path, sorted(set(_MAILDIR_KEYS + _IMAP_KEYS)))
            return None
        self.known_keys(table, path, _REPOSITORY_KEYS[kind], kind=kind)
        errors_before = len(self.found)
        folders = self.folders((*path, "folders"), self.table(table, path, "folders") or {})
        if kind == "maildir":
            repository: Repository | None = self.maildir(path, name, table, folders)
        elif kind == "gmail":
            repository = self.gmail(path, name, table, folders)
        else:
            repository = self.imap(path, name, table, folders)
        return repository if len(self.found) == errors_before else None

    def maildir(
        self, path: KeyPath, name: str, table: Table, folders: FolderFilter | None
    ) -> MaildirRepository | None:
        root = self.path(table, path, "path", required=True)
        layout = self.choice(table, path, "layout", LAYOUTS) or "fs"
        if root is None or folders is None:
            return None
        return MaildirRepository(name=name, path=root, layout=cast(Layout, layout), folders=folders)

    def imap(
        self, path: KeyPath, name: str, table: Table, folders: FolderFilter | None
    ) -> ImapRepository | None:
        host = self.string(table, path, "host", required=True, nonempty=True)
        user = self.string(table, path, "user", required=True, nonempty=True)
        tls = cast(Tls, self.choice(table, path, "tls", TLS_MODES) or "implicit")
        if tls == "none" and host is not None and host not in LOOPBACK_HOSTS:
            self.problem(
                (*path, "tls"),
                f'"none" is refused for host {show_value(host)}: the password would cross the'
                ' network in clear text (use "implicit" or "starttls"; "none" is only allowed for'
                " 127.0.0.1 and ::1)",
            )
        port = self.integer(table, path, "port")
        if port is not None and not 1 <= port <= 65535:
            self.problem((*path, "port"), f"must be between 1 and 65535, not {port}")
        ca_file = self.path(table, path, "ca_file")
        if ca_file is not None and not ca_file.is_file():
            self.problem((*path, "ca_file"), f"no such file: {ca_file}")
        tls_options = self.tls_options(path, table, tls)
        timeout = self.value(table, path, "timeout", duration(0, above=True))
        compress = self.value(table, path, "compress", auto_or_bool)
        readers = password_keys.READERS.items()
        passwords = {key: self.value(table, path, key, read) for key, read in readers}
        sources = oauth2_keys.source_problem(table)
        if sources is not None:
            self.problem(path, sources)
        oauth2 = self.oauth2(path, table)
        if host is None or user is None or folders is None:
            return None
        return ImapRepository(
            name=name,
            host=host,
            user=user,
            port=DEFAULT_PORTS[tls] if port is None else port,
            tls=tls,
            ca_file=ca_file,
            **password_keys.fields(passwords),
            oauth2=oauth2,
            **tls_options,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            compress="auto" if compress is None else compress,
            folders=folders,
        )

    def gmail(
        self, path: KeyPath, name: str, table: Table, folders: FolderFilter | None
    ) -> ImapRepository | None:
        """``type = "gmail"``: an IMAP repository with Gmail's preset (config.gmail)."""
        self.gmail_patterns((*path, "folders"), table.get("folders"))
        labels = self.get(table, path, gmail.LABELS, (bool,), "true or false")
        labels_as = self.choice(table, path, gmail.LABELS_AS, gmail.LABELS_AS_CHOICES)
        if labels_as is not None and not labels:
            self.problem((*path, gmail.LABELS_AS), gmail.LABELS_AS_WITHOUT_LABELS)
        imap = self.imap(path, name, gmail.with_preset(table), folders)
        if imap is None:
            return None
        return replace(
            imap,
            kind="gmail",
            left_out=gmail.LEFT_OUT,
            gmail_labels=bool(labels),
            gmail_labels_as="keywords" if labels_as == "keywords" else "folders",
        )

    def gmail_patterns(self, path: KeyPath, folders: object) -> None:
        """Report the folder patterns that cannot mean what they seem on Gmail."""
        for key in ("include", "exclude"):
            written = folders.get(key) if isinstance(folders, dict) else None
            for pattern in written if isinstance(written, list) else []:
                problem = gmail.pattern_problem(pattern) if isinstance(pattern, str) else None
                if problem is not None:
                    self.problem((*path, key), problem)

    def oauth2(self, path: KeyPath, table: Table) -> OAuth2 | None:
        """The OAuth2 keys of ``oauth2_keys`` (None: the repository uses a password)."""
        for key, message in oauth2_keys.clashes(table):
            self.problem(path if key is None else (*path, key), message)
        read = oauth2_keys.READERS.items()
        return oauth2_keys.settings({key: self.value(table, path, key, r) for key, r in read})

    def tls_options(self, path: KeyPath, table: Table, tls: Tls) -> dict[str, Any]:
        """The TLS keys of ``tls_keys`` that are set, as ``ImapRepository`` fields."""
        for key, message in tls_keys.clashes(table, tls):
            self.problem(path if key is None else (*path, key), message)
        options: dict[str, Any] = {
            "tls_min_version": self.value(table, path, "tls_min_version", tls_keys.tls_version),
            "cert_fingerprint": self.value(table, path, "cert_fingerprint", tls_keys.fingerprint),
        }
        for key in tls_keys.FILE_KEYS:
            file = self.path(table, path, key)
            why = None if file is None else tls_keys.unreadable(file)
            if why is not None:
                self.problem((*path, key), why)
            options[key] = file
        return {key: value for key, value in options.items() if value is not None}

    def account_folders(
        self,
        path: KeyPath,
        account: Table,
        local: Repository | None,
        remote: Repository | None,
    ) -> FolderRules | None:
        """The account's folder rules (``config.folder_keys``); None when they have a mistake
        (reported) or a repository is missing."""
        table = self.table(account, path[:-1], "folders") or {}
        errors_before = len(self.found)
        self.known_keys(table, path, folder_keys.ACCOUNT_KEYS)
        own = self.folder_filter(path, table)
        map_special = self.value(table, path, "map_special", boolean)
        rename = table.get("rename", [])
        for problem in folder_keys.rename_problems(rename):
            self.problem((*path, "rename"), problem)
        if len(self.found) != errors_before or own is None or local is None or remote is None:
            return None
        return folder_keys.account_rules(
            own,
            remote.folders,
            local.folders,
            folder_keys.rename_rules(rename),
            bool(map_special),
        )

    def folders(self, path: KeyPath, table: Table) -> FolderFilter | None:
        """A repository's ``folders`` table: include/exclude on its own names."""
        elsewhere = dict.fromkeys(folder_keys.ACCOUNT_ONLY_KEYS, "[account.NAME] folders")
        self.known_keys(table, path, folder_keys.FILTER_KEYS, elsewhere=elsewhere)
        return self.folder_filter(path, table)

    def folder_filter(self, path: KeyPath, table: Table) -> FolderFilter | None:
        """``include`` and ``exclude`` of a ``folders`` table (the others are not looked at)."""
        patterns: dict[str, tuple[str, ...]] = {"include": ("*",), "exclude": ()}
        ok = True
        for key in ("include", "exclude"):
            value = self.string_list(table, path, key)
            if key in table and value is None:
                ok = False
                continue
            if value is None:
                continue
            if key == "include" and not value:
                self.problem((*path, key), "selects no folder (leave it out to sync every folder)")
                ok = False
            for pattern in value:
                try:
                    compile_pattern(pattern)
                except BadPattern as e:
                    self.problem((*path, key), str(e))
                    ok = False
            patterns[key] = tuple(value)
        if not ok:
            return None
        owner = f"[{_show_key(path[:-1])}]"
        return FolderFilter(patterns["include"], patterns["exclude"], owner=owner)

    # -- keys and values ----------------------------------------------------------------

    def known_keys(
        self,
        table: Table,
        path: KeyPath,
        allowed: Collection[str],
        kind: str | None = None,
        elsewhere: Mapping[str, str] | None = None,
    ) -> None:
        """Report each key of ``table`` not in ``allowed``; ``elsewhere`` maps a key that
        belongs to another table to that table's name, for a more helpful message."""
        for key in table:
            if key in allowed:
                continue
            self.unknown.setdefault(path, []).append(key)
            message = "unknown key" + _suggest(key, allowed)
            if elsewhere and key in elsewhere:
                message = f"not a key for [{_show_key(path)}] (it is one for {elsewhere[key]})"
            if kind is not None:
                other = [k for k, keys in _REPOSITORY_KEYS.items() if k != kind and key in keys]
                if other:
                    message = f'not a key for type = "{kind}" (it is one for "{other[0]}")'
            self.problem((*path, key), message)

    def name_ok(self, path: KeyPath, what: str, name: str) -> bool:
        bad = [c for c in name if unicodedata.category(c) == "Cc" or c in "/,\\"]
        if not name or bad:
            self.problem(
                path,
                f"{what} name {show_value(name)} must be non-empty and hold no '/', ',', '\\'"
                " or control characters",
            )
            return False
        return True

    def is_table(self, path: KeyPath, value: object) -> bool:
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, not {kind_of(value)}")
            return False
        return True

    def get(self, table: Table, path: KeyPath, key: str, kinds: tuple[type, ...], what: str) -> Any:
        """The value of ``key`` if present and of one of ``kinds``, else None (reported)."""
        return self.value(table, path, key, lambda value, _: expect(value, kinds, what))

    def value(self, table: Table, path: KeyPath, key: str, read: Reader) -> Any:
        """``read`` of the value of ``key`` if present, else None; a BadValue is reported."""
        if key not in table:
            return None
        try:
            return read(table[key], self.base_dir)
        except BadValue as e:
            self.problem((*path, key), str(e))
            return None

    def required(self, table: Table, path: KeyPath, key: str) -> bool:
        if key not in table:
            # A misspelling of this key was reported as unknown already, with a suggestion.
            import difflib  # only for a mistake's hint

            if not difflib.get_close_matches(key, self.unknown.get(path, []), cutoff=0.6):
                self.problem(path, f"missing key {show_value(key)}")
            return False
        return True

    def table(self, table: Table, path: KeyPath, key: str) -> Table | None:
        value = self.get(table, path, key, (dict,), "a table")
        return cast(Table | None, value)

    def string(
        self,
        table: Table,
        path: KeyPath,
        key: str,
        required: bool = False,
        nonempty: bool = False,
    ) -> str | None:
        if required and not self.required(table, path, key):
            return None
        value = self.get(table, path, key, (str,), "a string")
        if nonempty and value == "":
            self.problem((*path, key), "must not be empty")
            return None
        return cast(str | None, value)

    def integer(self, table: Table, path: KeyPath, key: str) -> int | None:
        return cast(int | None, self.get(table, path, key, (int,), "an integer"))

    def number(self, table: Table, path: KeyPath, key: str) -> float | None:
        value = self.get(table, path, key, (int, float), "a number")
        return None if value is None else float(value)

    def string_list(self, table: Table, path: KeyPath, key: str) -> list[str] | None:
        return cast(list[str] | None, self.value(table, path, key, lambda v, _: string_list(v)))

    def choice(self, table: Table, path: KeyPath, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(table, path, key)
        if value is not None and value not in choices:
            listed = ", ".join(show_value(c) for c in choices)
            self.problem((*path, key), f"must be one of {listed}, not {show_value(value)}")
            return None
        return value

    def path(self, table: Table, path: KeyPath, key: str, required: bool = False) -> Path | None:
        value = self.string(table, path, key, required=required, nonempty=True)
        if value is None:
            return None
        try:
            return expand_path(value, self.base_dir)
        except BadPath as e:
            self.problem((*path, key), str(e))
            return None


def _trash(value: object, _base: object) -> str | None:
    """``trash``: a folder name (canonical), true for the folder the server marks ``\\Trash``,
    false for none."""
    if value is True or value == TRASH_SPECIAL_USE:
        return TRASH_SPECIAL_USE
    if value is False:
        return None
    if not isinstance(value, str):
        raise BadValue(
            f"must be a folder name, or true for the server's \\Trash folder, not {kind_of(value)}"
        )
    if not value:
        raise BadValue("must not be empty (a folder name, or true for the server's \\Trash folder)")
    return canonical(value)
