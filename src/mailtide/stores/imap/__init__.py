"""The IMAP store (aioimaplib with our own response reader).

Its names are loaded at first use: the blocking parts (the quiet check's probe, quiet/) import
a module of this package without the event loop the store's modules load (issue 12)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailtide.stores.imap.client import ImapSettings
    from mailtide.stores.imap.store import ImapMailbox, ImapStore

__all__ = ["ImapMailbox", "ImapSettings", "ImapStore"]

_MODULE_OF = {"ImapSettings": "client", "ImapMailbox": "store", "ImapStore": "store"}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
