"""What a real `mailtide -vv sync` against Dovecot logs: the IMAP conversation, readable and
fit for a bug report: no password (whatever it is), no message body, nothing starred that
is not a secret, no "connection lost" for a connection closed on purpose."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import Dovecot, ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config
from mailtide.stores.imap.wire import SECRET_MARKER

SERVER_BODY = "Server-side body text 4f1c"
LOCAL_BODY = "Local body text 9b2e"
LONG_RANDOM = "vQ3xN8tKp2LzR7wYc5Hm"
# Regex and format characters, and the two that IMAP escapes in a quoted string.
PUNCTUATED = 'a.b*c(d)[e]{0}%s|^$+?\\"q'


def message(i: int, folder: str, body: str) -> bytes:
    head = srv.make_message(i, folder).split(b"\r\n\r\n")[0]
    return head + f"\r\n\r\n{body} of message {i}.\r\n".encode()


def vv_sync(s: Setup) -> tuple[int, str]:
    """A two-way sync with a folder of a name of its own: one message down, one up, at -vv."""
    srv.append(s.imap, "INBOX", message(1, "INBOX", SERVER_BODY))
    srv.append(s.imap, "Tata", message(2, "Tata", SERVER_BODY))
    loc.deliver(s.root, s.layout, "INBOX", message(3, "INBOX", LOCAL_BODY))
    return run_forked(write_config(s), "-vv")


def with_password(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path, password: str
) -> Setup:
    account = dovecot.account(imap_account.user, password)
    return make_setup(account, tmp_path)


@pytest.fixture
def setup(imap_account: ImapAccount, tmp_path: Path) -> Setup:
    return make_setup(imap_account, tmp_path)


def conversation(text: str, event: str) -> list[str]:
    return [line for line in text.splitlines() if f"event={event} " in line]


def imap_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize(
    "password",
    ["t", "a", "secret", "Dovecot", LONG_RANDOM, PUNCTUATED],
    ids=["t", "a", "secret", "Dovecot", "long-random", "punctuated"],
)
def test_no_password_and_nothing_starred_at_vv(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path, password: str
) -> None:
    s = with_password(dovecot, imap_account, tmp_path, password)
    code, text = vv_sync(s)
    assert code == 0, text
    # (c) the LOGIN lines (a connection each) are there, the password replaced by the marker
    logins = [line for line in conversation(text, "imap.sent") if " LOGIN " in line]
    assert logins
    for login in logins:
        assert f'LOGIN \\"{s.imap.user}\\" {SECRET_MARKER}"' in login, login
    # (a) none of the forms the password takes on the wire or in a log
    token = base64.b64encode(f"\0{s.imap.user}\0{password}".encode()).decode()
    for form in (imap_quoted(password), repr(password), token):
        assert form not in text, form
    innocent = re.sub(r"Dovecot( \(\w+\))? ready", "", text.replace(SECRET_MARKER, ""))
    if len(password) >= 6:  # "t" and "a" are in every other word
        assert password not in innocent
    # (b) nothing starred: event names, the user, folder names and paths stay whole
    assert "***" not in text
    for whole in ("event=account.done account=test", "mailbox=Tata", f"{s.imap.user}"):
        assert whole in text, whole


def test_a_failed_login_with_a_one_letter_password_reads_whole(
    dovecot: Dovecot, imap_account: ImapAccount, tmp_path: Path
) -> None:
    """``account.failed`` stayed ``accoun***.failed`` for the password "t"."""
    s = make_setup(replace(imap_account, password="t"), tmp_path)
    code, text = run_forked(write_config(s), "-vv")
    assert code == 1, text
    (failed,) = [line for line in text.splitlines() if "event=account.failed" in line]
    assert "account=test" in failed and f"authentication failed for user {s.imap.user}" in failed
    stderr_line = f"mailtide: account test: authentication failed for user {s.imap.user} at "
    assert stderr_line in text
    assert "***" not in text


def test_the_conversation_is_shown_without_bodies(setup: Setup) -> None:
    code, text = vv_sync(setup)
    assert code == 0, text
    sent = conversation(text, "imap.sent")
    received = conversation(text, "imap.received")
    commands = " ".join(sent)
    for command in (" SELECT ", " UID FETCH ", " APPEND ", " LOGOUT"):
        assert command in commands, command
    assert any(re.search(r"\* OK .*Dovecot.* ready", line) for line in received)
    # each line of the conversation carries the account, and the mailbox it is for
    assert all("account=test" in line for line in sent + received)
    assert any("mailbox=INBOX" in line and " UID FETCH " in line for line in sent)
    assert any("mailbox=Tata" in line and "FETCH" in line for line in received)
    # bodies (and headers) become their sizes, both ways
    assert re.search(r"APPEND .*\{\d+ bytes\}", commands), commands
    assert any(re.search(r"BODY\[[^\]]*\] \{\d+ bytes\}", line) for line in received)
    for body in (SERVER_BODY, LOCAL_BODY, "Subject:", "Message-ID:"):
        assert body not in text, body
    assert len(loc.messages(setup.root, "fs", "Tata")) == 1  # it did sync


def test_a_clean_sync_logs_no_lost_connection(setup: Setup) -> None:
    """A LOGOUT's close was logged by aioimaplib as ``connection lost: None``."""
    code, text = vv_sync(setup)
    assert code == 0, text
    assert "event=imap.closed" in text  # the connections were closed, and said so
    for wrong in ("connection lost", "connection_broken", "closed by server"):
        assert wrong not in text.lower(), wrong
