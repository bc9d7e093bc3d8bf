"""The validated configuration: plain values, no I/O.

Everything here has been checked by ``mailtide.config.load``: names refer to
things that exist, paths are expanded and absolute, defaults are filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailtide.config.oauth2 import OAuth2
from mailtide.core.fingerprint import Fingerprint
from mailtide.core.folder_filter import FolderFilter
from mailtide.core.folder_rules import FolderRules

Layout = Literal["fs", "maildir++"]
ServerKind = Literal["imap", "gmail"]  # the repository's type (config.gmail: Gmail's preset)
Tls = Literal["implicit", "starttls", "none"]
TlsVersion = Literal["1.2", "1.3"]
# COMPRESS=DEFLATE: "auto" (offered, and the host is not loopback), True (offered), False.
Compress = bool | Literal["auto"]

LAYOUTS: tuple[Layout, ...] = ("fs", "maildir++")
# what a folder deleted on one side means for the other (engine.folder_policy.FolderPolicy)
FolderDelete = Literal["propagate-if-empty", "propagate", "never"]
FOLDER_DELETE_MODES: tuple[FolderDelete, ...] = ("propagate-if-empty", "propagate", "never")
TLS_MODES: tuple[Tls, ...] = ("implicit", "starttls", "none")
TLS_VERSIONS: tuple[TlsVersion, ...] = ("1.2", "1.3")
# tls = "none" sends the password in clear text, so only these hosts may use it.
LOOPBACK_HOSTS = ("127.0.0.1", "::1")

DEFAULT_PORTS: dict[Tls, int] = {"implicit": 993, "starttls": 143, "none": 143}
DEFAULT_TIMEOUT = 60.0
DEFAULT_MASS_DELETE_SHARE = 0.5
DEFAULT_MASS_DELETE_FLOOR = 10
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = 2.0
MAX_RETRY_DELAY = 60.0  # the backoff doubles up to this
DEFAULT_MAX_SYNC_ACCOUNTS = 2


@dataclass(frozen=True, slots=True)
class MaildirRepository:
    name: str
    path: Path
    layout: Layout = "fs"
    folders: FolderFilter = field(default_factory=FolderFilter)


@dataclass(frozen=True, slots=True)
class ImapRepository:
    """An IMAP server account.

    Exactly one password source or ``oauth2`` token source is set (``config.password_keys``,
    ``config.oauth2_keys``): ``password``,
    ``password_command``, ``password_file``, ``password_credential`` (a systemd credential
    name), ``netrc`` (the netrc file) or ``keyring``; ``mailtide.auth`` reads it at every
    connect.  ``ca_file`` None means the system trust store.  With ``cert_fingerprint`` and
    no ``ca_file`` the pin alone decides whether the server is trusted (neither the chain nor
    the host name is checked); with both, both must hold.  ``client_key`` None with a
    ``client_cert``: the key is in the certificate's file.  The TLS fields are defaults
    when ``tls`` is "none".

    ``kind`` "gmail" is ``type = "gmail"`` (config.gmail).  Folders whose special use
    (``\\All``, ``\\Trash``) is in ``left_out`` are not synced unless a ``folders.include``
    pattern without ``*`` or ``?`` selects them.
    """

    name: str
    host: str
    user: str
    port: int = 993
    tls: Tls = "implicit"
    ca_file: Path | None = None
    tls_min_version: TlsVersion = "1.2"
    client_cert: Path | None = None
    client_key: Path | None = None
    cert_fingerprint: Fingerprint | None = None
    # repr=False: a repository printed in a log line or a traceback must not show it.
    password: str | None = field(default=None, repr=False)
    password_command: tuple[str, ...] | None = None
    password_file: Path | None = None
    password_credential: str | None = None
    netrc: Path | None = None
    keyring: bool = False
    oauth2: OAuth2 | None = None  # instead of a password source (config.oauth2_keys)
    timeout: float = DEFAULT_TIMEOUT
    compress: Compress = "auto"
    folders: FolderFilter = field(default_factory=FolderFilter)
    kind: ServerKind = "imap"
    left_out: tuple[str, ...] = ()
    # kind "gmail" only: Gmail's labels mode (config.gmail, engine/gmail_labels.py)
    gmail_labels: bool = False
    # how labels show locally: a folder each (hard links), or keywords of All Mail's messages
    gmail_labels_as: Literal["folders", "keywords"] = "folders"

    @property
    def gmail_keywords(self) -> bool:
        """Gmail's labels mode with labels as keywords of All Mail's messages."""
        return self.gmail_labels and self.gmail_labels_as == "keywords"

    @property
    def gmail_folders(self) -> bool:
        """Gmail's labels mode with a folder per label (one file, a hard link per label)."""
        return self.gmail_labels and self.gmail_labels_as == "folders"


Repository = MaildirRepository | ImapRepository


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """How ``mailtide daemon`` watches an account and when it syncs it.  Durations are seconds.

    Maildir changes are merged into one sync once none has come for ``debounce``, but no
    later than ``max_delay`` after the first (``debounce <= max_delay``); the other triggers
    (server news, the autorefresh timer, a signal) start a sync at once.

    Server push: IDLE on each of ``idle_folders`` (canonical names; empty: no IDLE),
    re-issued every ``idle_renew``, or NOTIFY instead where the server has it and ``notify``;
    the other mailboxes are polled (LIST-STATUS or STATUS) every ``poll``.  At most
    ``max_connections`` connections to the server, those of IDLE included; there are more
    than ``len(idle_folders)`` of them, so one is always left to sync with.

    Maildir push: inotify on the Maildir when ``watch_maildir``, and a full listing every
    ``rescan`` (for what inotify misses: a network file system, an overflow).

    ``autorefresh``: a sync every so often whatever the triggers (0: only push and signals).
    ``quick`` has OfflineIMAP's meaning: that many quick syncs between full ones, -1 always
    quick, 0 always full.

    ``hold_connection_open`` keeps the sync connections between syncs, with a NOOP every
    ``keepalive``.
    """

    debounce: float = 0.3
    max_delay: float = 5.0
    idle_folders: tuple[str, ...] = ("INBOX",)
    idle_renew: float = 600.0
    poll: float = 120.0
    notify: bool = True
    max_connections: int = 4
    watch_maildir: bool = True
    rescan: float = 900.0
    autorefresh: float = 900.0
    quick: int = 10
    hold_connection_open: bool = True
    keepalive: float = 120.0


@dataclass(frozen=True, slots=True)
class Hooks:
    """Commands run around a sync of the account: argv tuples, run without a shell.

    ``presync`` before it, ``postsync`` after it, ``newmail`` after a sync that brought new
    mail from the server; None means none.  Each may run for ``timeout`` seconds.  The
    program (the first element) is expanded like a path in the config (``~``, ``$VAR``, and
    absolute), or a bare name for $PATH; the arguments are as written.
    """

    presync: tuple[str, ...] | None = None
    postsync: tuple[str, ...] | None = None
    newmail: tuple[str, ...] | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Account:
    """A pair of repositories kept in sync.

    The mass-delete guard refuses a run that would delete more than
    ``mass_delete_share`` of a mailbox's messages, unless it deletes no more
    than ``mass_delete_floor`` of them.

    A lost connection (reset, refused, a server that stops answering) is retried on a new
    connection up to ``retries`` times, the first after ``retry_delay`` seconds, each later
    one after twice the delay before (at most ``MAX_RETRY_DELAY``).

    ``folders``: which folders take part and their local names (``config.folder_keys``).
    ``folder_delete``: a folder synced before and deleted on one side is deleted on the other
    when it is empty there ("propagate-if-empty"), also with its messages ("propagate"), or
    never; otherwise it is reported and left alone.  ``subscribed_only``: only the server
    folders subscribed to are synced (a folder made on the server is subscribed to).
    ``trash``: a remote folder (canonical name) that a message deleted locally is moved to,
    instead of being expunged on the server (mbsync's ``Trash``); ``TRASH_SPECIAL_USE``: the
    folder the server marks ``\\Trash``; None: expunged.  ``trash_new_only`` (mbsync's
    ``TrashNewOnly``): only a message the other side never had recorded (an upload whose
    result no sync recorded, then deleted locally) goes to the trash; one synced before is
    expunged, as its user deleted it where they had it.
    """

    name: str
    local: Repository
    remote: Repository
    mass_delete_share: float = DEFAULT_MASS_DELETE_SHARE
    mass_delete_floor: int = DEFAULT_MASS_DELETE_FLOOR
    retries: int = DEFAULT_RETRIES
    retry_delay: float = DEFAULT_RETRY_DELAY
    folder_delete: FolderDelete = "propagate-if-empty"
    subscribed_only: bool = False
    trash: str | None = None
    trash_new_only: bool = False
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    hooks: Hooks = field(default_factory=Hooks)
    folders: FolderRules = field(default_factory=FolderRules)


@dataclass(frozen=True, slots=True)
class General:
    accounts: tuple[str, ...]  # the accounts a sync without -a covers, in order
    state_dir: Path
    max_sync_accounts: int = DEFAULT_MAX_SYNC_ACCOUNTS  # the daemon syncs at most this many at once


@dataclass(frozen=True, slots=True)
class Config:
    """A checked configuration.

    ``warnings`` are lines for the user about a config that works but should change (each
    says what to do); loading only collects them, the command shows each once.
    """

    path: Path  # the file it was read from
    general: General
    accounts: tuple[Account, ...]  # every [account.*], in file order
    repositories: tuple[Repository, ...]  # every [repository.*], in file order
    warnings: tuple[str, ...] = ()

    def account(self, name: str) -> Account:
        """The account called ``name``; KeyError when there is none."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    @property
    def account_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accounts)
