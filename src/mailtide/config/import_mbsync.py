"""An mbsync config (``~/.mbsyncrc``) translated into mailtide's TOML.

mbsync pairs a far and a near Store per Channel; every Channel between the same IMAP Store
and the same Maildir Store becomes one mailtide account (its Patterns and single-mailbox
Channels become that account's folder rules).  Every line is either translated or listed in
a comment under its table with the reason: nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailtide.config.import_toml import (
    LOOPBACK,
    SourceError,
    TableDraft,
    absolute,
    braces,
    glob_literal,
    regex_literal,
    shell,
)
from mailtide.core.folder_filter import compile_pattern

_SECTIONS = {"imapaccount", "imapstore", "maildirstore", "channel", "group"}
# Channel options that may also stand before any section, for every Channel.
_CHANNEL_DEFAULTS = {"sync", "create", "remove", "expunge", "maxmessages", "copyarrivaldate"}
_NO_KEY = "mailtide has no such setting"
_CHANNEL_WHY = {
    "expunge": "mailtide expunges the messages it deletes, as Expunge Both",
    "create": "mailtide creates a new folder on the other side, as Create Both",
    "sync": "mailtide syncs everything both ways, as Sync All",
    "maxmessages": "mailtide keeps every message",
    "expireunread": "mailtide keeps every message",
    "maxsize": "mailtide copies every message whole",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One ``Key value`` line: its number in the file, the key as written, the raw value."""

    number: int
    key: str
    value: str

    @property
    def name(self) -> str:
        return self.key.lower()


@dataclass(frozen=True, slots=True)
class Section:
    """A section: ``IMAPAccount``, ``IMAPStore``, ``MaildirStore``, ``Channel`` or ``Group``."""

    kind: str  # lower case
    name: str
    lines: tuple[Line, ...]

    def get(self, key: str) -> Line | None:
        return next((line for line in reversed(self.lines) if line.name == key), None)


@dataclass(frozen=True, slots=True)
class Source:
    """The parsed file: its name (for messages), the lines before any section, the sections."""

    file: str
    globals: tuple[Line, ...]
    sections: tuple[Section, ...]

    def find(self, kinds: tuple[str, ...], name: str, where: Line) -> Section:
        for section in self.sections:
            if section.kind in kinds and section.name == name:
                return section
        raise SourceError(
            f"{self.file}:{where.number}: no store or account named {name!r}; define it"
        )


def words(value: str, file: str, number: int) -> list[str]:
    """The words of a value as mbsync reads them: blanks split them, except inside
    ``"..."`` (where a backslash escapes the next character); ``!"A B"`` is one word."""
    found: list[str] = []
    word: list[str] | None = None
    quoted = escaped = False
    for char in value:
        if escaped:
            word = (word or []) + [char]
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
            word = word or []
        elif char.isspace() and not quoted:
            if word is not None:
                found.append("".join(word))
            word = None
        else:
            word = (word or []) + [char]
    if quoted or escaped:
        # The value is never shown: it may be a password.
        raise SourceError(f"{file}:{number}: a quote is not closed; close it")
    if word is not None:
        found.append("".join(word))
    return found


def single(line: Line, file: str) -> str:
    """A one-string value: quoted, or the rest of the line as written."""
    if line.value.startswith('"'):
        found = words(line.value, file, line.number)
        return found[0] if found else ""
    return line.value


def parse(text: str, file: str) -> Source:
    """The sections of ``text``; SourceError (one line, file:line) when a line does not parse.
    A blank line ends a section, as in mbsync."""
    globals_: list[Line] = []
    sections: list[Section] = []
    current: tuple[str, str, list[Line]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped:
            _close(current, sections)
            current = None
            continue
        if stripped.startswith("#"):
            continue
        key, _, value = stripped.partition(" ")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+]*", key):
            raise SourceError(
                f"{file}:{number}: not a 'Keyword value' line or a # comment; fix or remove it"
            )
        line = Line(number, key, value.strip())
        words(line.value, file, number)  # an unclosed quote is a mistake wherever it is
        in_group = current is not None and current[0] == "group"
        if key.lower() in _SECTIONS and not (in_group and key.lower() == "channel"):
            _close(current, sections)
            name = words(line.value, file, number)
            if not name:
                raise SourceError(f"{file}:{number}: {key} needs a name")
            current = (key.lower(), name[0], [line] if key.lower() == "group" else [])
        elif current is None:
            globals_.append(line)
        else:
            current[2].append(line)
    _close(current, sections)
    return Source(file, tuple(globals_), tuple(sections))


def _close(current: tuple[str, str, list[Line]] | None, sections: list[Section]) -> None:
    if current is not None:
        sections.append(Section(current[0], current[1], tuple(current[2])))


@dataclass(frozen=True, slots=True)
class Channel:
    """A Channel reduced to what decides its account: which stores, which mailboxes."""

    section: Section
    imap: Section
    maildir: Section
    far_box: str
    near_box: str


def _side(source: Source, channel: Section, keys: tuple[str, str]) -> tuple[Section, str, Line]:
    line = channel.get(keys[0]) or channel.get(keys[1])
    if line is None:
        raise SourceError(
            f"{source.file}: Channel {channel.name} has no {keys[0].title()} line; add it"
        )
    spec = single(line, source.file) if not line.value.startswith(":") else line.value
    match = re.fullmatch(r":([^:]+):(.*)", spec)
    if match is None:
        raise SourceError(
            f"{source.file}:{line.number}: {line.key} must be :store:[mailbox]; fix it"
        )
    box = match.group(2)
    box = words(box, source.file, line.number)[0] if box.startswith('"') else box
    store = source.find(("imapstore", "maildirstore"), match.group(1), line)
    return store, box, line


def channels(source: Source, general: TableDraft) -> list[Channel]:
    """Every Channel between an IMAP Store and a Maildir Store; others are noted in
    ``general``."""
    found = []
    for section in source.sections:
        if section.kind != "channel":
            continue
        far, far_box, where = _side(source, section, ("far", "master"))
        near, near_box, _ = _side(source, section, ("near", "slave"))
        if {far.kind, near.kind} != {"imapstore", "maildirstore"}:
            general.untranslated(
                f"Channel {section.name}", where.value, "mailtide pairs an IMAP and a Maildir store"
            )
            continue
        imap, maildir = (far, near) if far.kind == "imapstore" else (near, far)
        if far.kind != "imapstore":
            far_box, near_box = near_box, far_box
        found.append(Channel(section, imap, maildir, far_box, near_box))
    return found


def translate(source: Source) -> list[TableDraft]:
    """The mailtide tables: ``[general]``, then per account its table and its stores'."""
    general = TableDraft(("general",))
    for line in source.globals:
        if line.name not in _CHANNEL_DEFAULTS:
            general.untranslated(line.key, line.value, _NO_KEY)
    tables = [general]
    pairs: dict[tuple[str, str], list[Channel]] = {}
    for channel in channels(source, general):
        pairs.setdefault((channel.imap.name, channel.maildir.name), []).append(channel)
    if not pairs:
        raise SourceError(
            f"{source.file}: no Channel between an IMAPStore and a MaildirStore: nothing to import"
        )
    for group in source.sections:
        if group.kind == "group":
            why = "mailtide syncs every account, or those named with -a"
            general.untranslated(f"Group {group.name}", _members(group, source), why)
    for chosen in pairs.values():
        tables += _account(source, chosen)
    return tables


def _members(group: Section, source: Source) -> str:
    """The Channels of a Group (its first line is ``Group NAME [channels]``)."""
    found = [w for line in group.lines for w in words(line.value, source.file, line.number)]
    return " ".join(found[1:])


def _account_name(source: Source, chosen: list[Channel]) -> str:
    if len(chosen) == 1:
        return chosen[0].section.name
    names = {c.section.name for c in chosen}
    for group in source.sections:
        if group.kind == "group":
            members = {m.partition(":")[0] for m in _members(group, source).split()}
            if names <= members:
                return group.name
    return chosen[0].imap.name


def _account(source: Source, chosen: list[Channel]) -> list[TableDraft]:
    account = TableDraft(("account", _account_name(source, chosen)))
    local = TableDraft(("repository", chosen[0].maildir.name))
    remote = TableDraft(("repository", chosen[0].imap.name))
    account.set("local", chosen[0].maildir.name)
    account.set("remote", chosen[0].imap.name)
    _folders(source, chosen, account)
    for channel in chosen:
        _channel_options(source, channel, account)
    _maildir(source, chosen[0].maildir, account, local)
    _imap(source, chosen[0].imap, account, remote)
    return [account, local, remote]


def _folders(source: Source, chosen: list[Channel], account: TableDraft) -> None:
    include: list[str] = []
    exclude: list[str] = []
    every = False
    renames: list[dict[str, str]] = []
    for channel in chosen:
        lines = _pattern_lines(channel)
        if not lines:
            far = channel.far_box or "INBOX"
            include.append(glob_literal(far))
            near = channel.near_box or "INBOX"
            if near != far:
                renames.append({"from": regex_literal(far), "to": braces(near)})
            continue
        if channel.far_box or channel.near_box:
            account.untranslated(
                f"Channel {channel.section.name} Far/Near",
                f"{channel.far_box} / {channel.near_box}",
                "a mailbox prefix with Patterns: write it as folders.rename",
            )
        patterns = [w for ln in lines for w in words(ln.value, source.file, ln.number)]
        every |= _patterns(patterns, include, exclude, account)
    if include and not every:
        account.set("folders.include", include)
    exclude = _kept_exclusions(
        exclude, [c.far_box or "INBOX" for c in chosen if not _has_patterns(c)], account
    )
    if exclude:
        account.set("folders.exclude", exclude)
    if renames:
        account.set("folders.rename", renames)


def _pattern_lines(channel: Channel) -> list[Line]:
    return [ln for ln in channel.section.lines if ln.name in ("pattern", "patterns")]


def _has_patterns(channel: Channel) -> bool:
    return bool(_pattern_lines(channel))


def _kept_exclusions(exclude: list[str], singles: list[str], account: TableDraft) -> list[str]:
    """One Channel's exclusions, minus the folders another Channel syncs alone (the usual
    way to give one folder another local name): in a mailtide account an exclusion holds
    for every folder."""
    kept = []
    for pattern in exclude:
        matched = [box for box in singles if compile_pattern(pattern).fullmatch(box)]
        if matched and pattern == glob_literal(matched[0]):
            continue
        if matched:
            account.note(
                f"folders.exclude {pattern} also leaves out {matched[0]}, which a Channel of "
                "its own syncs: narrow the pattern by hand"
            )
        kept.append(pattern)
    return kept


def _patterns(
    patterns: list[str], include: list[str], exclude: list[str], account: TableDraft
) -> bool:
    """Add mbsync ``Patterns`` to the lists; True when one selects every folder."""
    every = False
    excluded: list[str] = []
    for pattern in patterns:
        if pattern.startswith("!"):
            excluded.append(pattern[1:])
            exclude.append(_pattern(pattern[1:]))
        elif pattern == "*":
            every = True
        else:
            include.append(_pattern(pattern))
            if excluded:
                account.note(
                    f"Patterns: {pattern} after !{excluded[-1]}: in mailtide an exclude always "
                    "wins; narrow folders.exclude by hand if this pattern re-included folders"
                )
    return every


def _pattern(pattern: str) -> str:
    """An mbsync pattern (``*`` anything, ``%`` anything but ``/``) as a mailtide pattern."""
    if "%" not in pattern and re.search(r"[?\[]", pattern) is None:
        return pattern
    regex = "".join(
        ".*" if c == "*" else "[^/]*" if c == "%" else regex_literal(c) for c in pattern
    )
    return "re:" + regex


def _channel_lines(source: Source, channel: Channel) -> Iterator[Line]:
    own = {ln.name for ln in channel.section.lines}
    yield from (ln for ln in source.globals if ln.name in _CHANNEL_DEFAULTS and ln.name not in own)
    yield from channel.section.lines


def _channel_options(source: Source, channel: Channel, account: TableDraft) -> None:
    for line in _channel_lines(source, channel):
        value = line.value.strip().lower()
        if line.name in ("far", "near", "master", "slave", "pattern", "patterns"):
            continue
        if line.name == "remove" and value in ("none", "both"):
            account.set("folder_delete", "never" if value == "none" else "propagate-if-empty")
        elif line.name == "syncstate":
            account.untranslated(line.key, line.value, "ignored: mailtide keeps its own state")
        elif line.name in ("sync", "create", "expunge") and value in ("all", "full", "both"):
            continue  # what mailtide always does
        else:
            account.untranslated(line.key, line.value, _CHANNEL_WHY.get(line.name, _NO_KEY))


def _maildir(source: Source, store: Section, account: TableDraft, local: TableDraft) -> None:
    local.set("type", "maildir")
    subfolders = store.get("subfolders")
    style = subfolders.value.lower() if subfolders else ""
    path_line, inbox_line = store.get("path"), store.get("inbox")
    inbox = single(inbox_line, source.file) if inbox_line else "~/Maildir"
    if style == "maildir++" or path_line is None:
        local.set("path", absolute(inbox.rstrip("/")))
        local.set("layout", "maildir++")
        if path_line is None and style != "maildir++":
            # Without Path, mbsync reaches the inbox alone: so does the translation.
            account.set("folders.include", ["INBOX"])
            local.note("no Path: only the inbox is synced, as mbsync did")
    else:
        root = single(path_line, source.file).rstrip("/")
        local.set("path", absolute(root))
        local.set("layout", "fs")
        if inbox.rstrip("/") != f"{root}/INBOX":
            local.untranslated("Inbox", inbox, f"mailtide keeps the inbox at {root}/INBOX")
        if style == "legacy":
            local.untranslated("SubFolders", "Legacy", "mailtide nests folders as Verbatim does")
    for line in store.lines:
        if line.name in ("path", "inbox", "subfolders"):
            continue
        if line.name == "trash":
            local.untranslated(line.key, line.value, "a local trash folder is not built yet")
        else:
            local.untranslated(line.key, line.value, _NO_KEY)


def _imap(source: Source, store: Section, account: TableDraft, remote: TableDraft) -> None:
    lines = list(store.lines)
    named = store.get("account")
    if named is not None:
        lines = [*source.find(("imapaccount",), single(named, source.file), named).lines, *lines]
    keys = {line.name: line for line in lines if line.name != "account"}
    remote.set("type", "imap")
    for key in ("host", "port", "user"):
        if key in keys:
            value = single(keys[key], source.file)
            remote.set(key, int(value) if key == "port" and value.isdigit() else value)
    _tls(keys, source, remote)
    _password(keys, source, remote)
    for line in keys.values():
        _imap_line(line, source, account, remote)


def _tls(keys: dict[str, Line], source: Source, remote: TableDraft) -> None:
    line = keys.get("tlstype") or keys.get("ssltype")
    kind = single(line, source.file).lower() if line else "starttls"
    host = str(remote.keys.get("host", ""))
    if kind == "imaps":
        remote.set("tls", "implicit")
    elif kind == "none" and host in LOOPBACK:
        remote.set("tls", "none")
    else:
        remote.set("tls", "starttls")
        if kind == "none":
            remote.note("TLSType None: mailtide speaks plain IMAP only to 127.0.0.1")
    versions = keys.get("tlsversions") or keys.get("sslversions")
    if versions is not None and min(_tls_versions(versions.value), default="1.2") >= "1.3":
        remote.set("tls_min_version", "1.3")


def _tls_versions(value: str) -> set[str]:
    """The TLS versions an ``SSLVersions TLSv1.2 TLSv1.3`` or a ``TLSVersions +1.3 -1.2`` line
    allows; a list that starts with + or - changes mbsync's default set."""
    named = [
        w.removeprefix("TLSv") if w[:1] not in "+-" else w[0] + w[1:].removeprefix("TLSv")
        for w in value.split()
    ]
    relative = bool(named) and named[0][:1] in "+-"
    allowed = {"1.0", "1.1", "1.2", "1.3"} if relative else set()
    for word in named:
        if word.startswith("-"):
            allowed.discard(word[1:])
        else:
            allowed.add(word.lstrip("+"))
    return allowed


def _password(keys: dict[str, Line], source: Source, remote: TableDraft) -> None:
    oauth = "xoauth2" in (keys["authmechs"].value.lower() if "authmechs" in keys else "")
    if "passcmd" in keys:
        line = keys["passcmd"]
        # A leading + only tells mbsync that the command talks to the terminal.
        unmarked = Line(line.number, line.key, line.value.removeprefix("+"))
        command = shell(single(unmarked, source.file))
        remote.set("oauth2_token_command" if oauth else "password_command", command)
        if oauth:
            remote.set("auth", "xoauth2")
    elif "pass" in keys:
        remote.set("password", single(keys["pass"], source.file))
        remote.note(
            "a password copied from Pass: keep this file chmod 600, or better, replace it "
            'with password_command = ["pass", "show", "..."]'
        )
    else:
        remote.note("mbsync asked for the password; netrc = true reads ~/.netrc instead")
        remote.set("netrc", True)
        remote.placeholders.append('password_command = ["pass", "show", "mail/..."]')


_DONE = {"host", "port", "user", "tlstype", "ssltype", "pass", "passcmd", "account"}


def _imap_line(line: Line, source: Source, account: TableDraft, remote: TableDraft) -> None:
    value = single(line, source.file)
    files = {
        "certificatefile": "ca_file",
        "clientcertificate": "client_cert",
        "clientkey": "client_key",
    }
    if line.name in _DONE or line.name in ("tlsversions", "sslversions"):
        return
    if line.name in files:
        remote.set(files[line.name], value)
    elif line.name == "timeout" and value.isdigit() and int(value) > 0:
        remote.set("timeout", int(value))
    elif line.name == "trash":
        account.set("trash", value)
    elif line.name == "trashnewonly" and value.lower() in ("yes", "true"):
        account.set("trash_new_only", True)
    elif line.name == "authmechs" and "xoauth2" in value.lower():
        return
    else:
        remote.untranslated(line.key, line.value, _NO_KEY)
