"""``type = "gmail"``: an IMAP repository with Gmail's settings filled in.

The preset: ``host = "imap.gmail.com"``, port 993 with implicit TLS (the IMAP defaults),
and for the built-in OAuth2 flow Google's endpoints and scope (``oauth2_provider =
"google"``).  Each may be set: ``host``, ``port`` and ``tls`` to reach a test server on
127.0.0.1, ``oauth2_token_url`` for another token service.  A password source (an app
password) works as for any IMAP server.

Gmail shows each label as a folder and has three folders of its own that a plain sync must
not take: All Mail (every message a second time), Spam and Trash.  They are left out, found
by their special use (``\\All``, ``\\Junk``, ``\\Trash``), since Gmail names them in the
account's language (``[Gmail]/Papierkorb``); a folder among them named exactly in
``folders.include`` (no wildcard) is synced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailtide.config import oauth2_keys

HOST = "imap.gmail.com"
OAUTH2_PROVIDER = "google"
LEFT_OUT = ("\\All", "\\Junk", "\\Trash")
_GLOB = frozenset("*?[")


def with_preset(table: Mapping[str, Any]) -> dict[str, Any]:
    """The repository's keys with the preset's filled in where the user set none."""
    filled = dict(table)
    filled.setdefault("host", HOST)
    own_provider = {"oauth2_provider", "oauth2_token_url"} & set(table)
    if oauth2_keys.CLIENT_ID in table and not own_provider:
        filled["oauth2_provider"] = OAUTH2_PROVIDER
    return filled


def named(include: tuple[str, ...]) -> frozenset[str]:
    """The folder names ``folders.include`` spells out whole (patterns without a wildcard):
    the left-out folders a user asks for.  ``*`` alone never brings back All Mail."""
    return frozenset(p for p in include if not _GLOB & set(p))
