"""What a name in NOTIFY's responses stands for (``notify_names``): Dovecot 2.3 spells a
non-ASCII mailbox in UTF-8 there, other servers in modified UTF-7; the real server's case is
in ``test_push.py``."""

from __future__ import annotations

import pytest

from mailtide.core.names import BadFolderName
from mailtide.stores.imap.names import FolderNames
from mailtide.stores.imap.notify_names import WatchedNames, sent_name


def watching(*names: str, prefix: str = "", separator: str = "/") -> WatchedNames:
    watched = WatchedNames(FolderNames(prefix, separator))
    watched.renewed(names)
    return watched


@pytest.mark.parametrize(
    ("watched", "sent", "canonical"),
    [
        # NOTIFY SET and its news both in UTF-8 (Dovecot 2.3)
        (("INBOX", "Entwürfe"), "Entwürfe", "Entwürfe"),
        # the watch in modified UTF-7, the news in UTF-8
        (("Entw&APw-rfe",), "Entwürfe", "Entwürfe"),
        # in modified UTF-7 throughout
        (("Entw&APw-rfe",), "Entw&APw-rfe", "Entwürfe"),
        # "&" is "&-" in modified UTF-7: "A&B" is not valid modified UTF-7, but is UTF-8
        (("A&B",), "A&B", "A&B"),
        (("A&-B",), "A&B", "A&B"),
        # nested, under Courier's prefix and separator
        (("INBOX.Archiv.Entwürfe",), "INBOX.Archiv.Entwürfe", "Archiv/Entwürfe"),
        (("日本語/メモ",), "日本語/メモ", "日本語/メモ"),
    ],
)
def test_a_name_maps_to_the_mailbox_watched(
    watched: tuple[str, ...], sent: str, canonical: str
) -> None:
    prefix, separator = ("INBOX.", ".") if sent.startswith("INBOX.") else ("", "/")
    names = watching(*watched, prefix=prefix, separator=separator)
    assert names.canonical_name(sent) == canonical


def test_a_utf8_name_of_no_mailbox_watched_is_not_guessed() -> None:
    names = watching("INBOX", "Entwürfe")
    with pytest.raises(BadFolderName, match="neither modified UTF-7 nor"):
        names.canonical_name("Entwurf ä")


def test_each_mailbox_is_counted_under_the_name_its_watch_gave_it() -> None:
    names = watching("Entw&APw-rfe", "Entwürfe-alt", "INBOX")
    assert names.watched_name("Entwürfe") == "Entw&APw-rfe"
    assert names.watched_name("Entwürfe-alt") == "Entwürfe-alt"
    assert names.watched_name("INBOX") == "INBOX"
    assert names.watched_name("Neu ä") == "Neu ä"  # none: as sent
    names.renewed(["Entwürfe"])
    assert names.watched_name("Entw&APw-rfe") == "Entwürfe"


def test_a_name_that_is_not_utf8_is_refused_not_replaced() -> None:
    assert sent_name(bytearray("Entwürfe".encode())) == "Entwürfe"
    assert sent_name("INBOX") == "INBOX"
    with pytest.raises(ValueError):
        sent_name(b"Entw\xfcrfe")  # Latin-1
