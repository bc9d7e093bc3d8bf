"""The Maildir store: one account's Maildir tree (``fs`` or ``maildir++`` layout).

Its names are loaded at first use: the blocking parts (the quiet check, quiet/) import a module
of this package without the event loop the store's modules load (issue 12)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailtide.stores.maildir.mailbox import DeliveryError, MaildirBody, MaildirMailbox
    from mailtide.stores.maildir.settings import MaildirSettings
    from mailtide.stores.maildir.store import MaildirStore

__all__ = ["DeliveryError", "MaildirBody", "MaildirMailbox", "MaildirSettings", "MaildirStore"]

_MODULE_OF = {
    "DeliveryError": "mailbox",
    "MaildirBody": "mailbox",
    "MaildirMailbox": "mailbox",
    "MaildirSettings": "settings",
    "MaildirStore": "store",
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
