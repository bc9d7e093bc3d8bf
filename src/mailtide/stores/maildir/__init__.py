"""The Maildir store: one account's Maildir tree (``fs`` or ``maildir++`` layout)."""

from mailtide.stores.maildir.mailbox import DeliveryError, MaildirBody, MaildirMailbox
from mailtide.stores.maildir.settings import MaildirSettings
from mailtide.stores.maildir.store import MaildirStore

__all__ = ["DeliveryError", "MaildirBody", "MaildirMailbox", "MaildirSettings", "MaildirStore"]
