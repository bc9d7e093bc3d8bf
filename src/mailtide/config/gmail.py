"""``type = "gmail"``: an IMAP repository with Gmail's settings filled in.

The preset: ``host = "imap.gmail.com"``, port 993 with implicit TLS (the IMAP defaults),
and for the built-in OAuth2 flow Google's endpoints and scope (``oauth2_provider =
"google"``).  Each may be set: ``host``, ``port`` and ``tls`` to reach a test server on
127.0.0.1, ``oauth2_token_url`` for another token service.  A password source (an app
password) works as for any IMAP server.

Gmail shows each label as a folder and has three folders of its own that a plain sync must
not take: All Mail (every message a second time), Spam and Trash.  They are left out, found
by their special use (``\\All``, ``\\Junk``, ``\\Trash``), since Gmail names them in the
account's language (``[Gmail]/Papierkorb``); one is synced when a ``folders.include`` pattern
without ``*`` or ``?`` selects it: a pattern that names that one folder.  In the glob language
``[Gmail]`` is a set of letters, so the folder ``[Gmail]/Trash`` is written ``[[]Gmail]/Trash``;
a pattern that starts with ``[Gmail]`` or ``[Google Mail]`` is refused with that advice.

``gmail_labels = true`` is Gmail's labels mode: a message is one file however many labels show
it, and one deleted from every local folder goes to Gmail's Trash.  ``gmail_labels_as`` says
how labels show locally: ``"folders"`` (the default; ``engine/gmail_labels.py``): the file is
hard-linked into the folder of each label; ``"keywords"``: only All Mail is synced, into one
local folder, and each message's labels are keywords of it (``stores/imap/gmail_keywords.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailtide.config import oauth2_keys
from mailtide.config.model import ImapRepository, MaildirRepository, Repository
from mailtide.config.show import show_value
from mailtide.core.folder_filter import FolderFilter

HOST = "imap.gmail.com"
OAUTH2_PROVIDER = "google"
LEFT_OUT = ("\\All", "\\Junk", "\\Trash")
LABELS = "gmail_labels"
LABELS_AS = "gmail_labels_as"
KEYS = (LABELS, LABELS_AS)  # the keys only a Gmail repository has
LABELS_AS_CHOICES = ("folders", "keywords")
LABELS_AS_WITHOUT_LABELS = f"has no effect without {LABELS} = true; set that too"
_WILDCARDS = frozenset("*?")
# Labels as keywords: the server folders that may take part, Gmail's own (of which the store
# lists All Mail alone, by its special use): a local folder is never made a label folder.
ALL_MAIL_ONLY = FolderFilter(include=("re:\\[(Gmail|Google Mail)\\]/.*",))
# The prefixes Gmail gives its own folders (Google Mail in Germany and the UK).
_PREFIXES = ("[Gmail]", "[Google Mail]")


def with_preset(table: Mapping[str, Any]) -> dict[str, Any]:
    """The repository's keys with the preset's filled in where the user set none."""
    filled = dict(table)
    filled.setdefault("host", HOST)
    own_provider = {"oauth2_provider", "oauth2_token_url"} & set(table)
    if oauth2_keys.CLIENT_ID in table and not own_provider:
        filled["oauth2_provider"] = OAUTH2_PROVIDER
    return filled


def sides_problems(local: Repository | None, remote: Repository | None) -> list[tuple[str, str]]:
    """(account key, problem) for a repository in the labels mode on the wrong side of an
    account: it must be the remote, and the local one a Maildir (links are files)."""
    out = []
    if isinstance(local, ImapRepository) and local.gmail_labels:
        out.append(("local", f"{LABELS} works only on the account's remote repository"))
    labels = isinstance(remote, ImapRepository) and remote.gmail_labels
    if labels and local is not None and not isinstance(local, MaildirRepository):
        out.append(("local", f"{LABELS} of the remote repository needs a Maildir here"))
    return out


def named(include: tuple[str, ...]) -> FolderFilter:
    """The patterns of ``folders.include`` that name single folders (no ``*`` or ``?``): the
    left-out folders a user asks for.  ``*`` never brings back All Mail."""
    return FolderFilter(include=tuple(p for p in include if not _WILDCARDS & set(p)))


def pattern_problem(pattern: str) -> str | None:
    """Why a folder pattern of a Gmail repository would not select what it seems to name
    (None: it is fine)."""
    for prefix in _PREFIXES:
        if pattern.startswith(prefix):
            literal = "[[]" + pattern[1:]
            return (
                f"pattern {show_value(pattern)} does not select the folder of that name:"
                f" {prefix} is a set of letters in a glob; write {show_value(literal)}"
            )
    return None
