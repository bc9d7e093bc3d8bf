"""The IMAP store (aioimaplib with our own response reader)."""

from mailtide.stores.imap.client import ImapSettings
from mailtide.stores.imap.store import ImapMailbox, ImapStore

__all__ = ["ImapMailbox", "ImapSettings", "ImapStore"]
