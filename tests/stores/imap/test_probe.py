"""The quiet check's blocking IMAP probe (stores/imap/probe.py) against what no real server
sends: every oddity ends in ``Unavailable`` (the sync then runs the ordinary way and says what
is wrong), never in another error, a hang or unbounded memory."""

from __future__ import annotations

import time

import pytest

from fake_imap import fake_imap
from mailtide.stores.imap.credentials import Credentials
from mailtide.stores.imap.probe import MAX_ANSWER, Server, Unavailable, listing_now

WHO = Credentials("me", "pw")


def probe(port: int) -> list[str]:
    return listing_now(Server("127.0.0.1", port, "none", timeout=0.5), WHO).answers()


def test_the_answers_of_a_plain_server_are_read() -> None:
    with fake_imap(b'* LIST () "/" INBOX\r\n* OK chatter is not kept\r\n') as port:
        answers = probe(port)
    assert '* LIST () "/" INBOX\r\n' in answers
    assert not any("chatter" in a for a in answers)


HOSTILE = {
    "a literal never sent in full": b'* LIST () "/" {500000}\r\nshort\r\n',
    "a literal size that is no number": b'* LIST () "/" {5x}\r\n',
    "a literal bigger than the probe reads": b'* LIST () "/" {99999999999}\r\n',
    "an answer past the limit": b"* LIST () " + b"x" * (MAX_ANSWER + 10) + b"\r\n",
    "a BYE instead of the folders": b"* BYE going away\r\n",
}


@pytest.mark.parametrize("reply", HOSTILE.values(), ids=HOSTILE.keys())
def test_what_no_server_should_send_makes_the_probe_give_up(reply: bytes) -> None:
    with fake_imap(reply) as port:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            probe(port)
    assert time.monotonic() - started < 5


def test_a_port_nobody_listens_on_is_unavailable() -> None:
    with fake_imap(b"") as port:
        pass  # closed again: nothing listens there now
    with pytest.raises(Unavailable, match="cannot connect"):
        probe(port)
