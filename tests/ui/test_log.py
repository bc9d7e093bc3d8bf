"""The log pipeline: context, secret redaction, renderers, levels."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from log_helpers import capture, pristine_logging
from mailtide.ui import log as ui_log
from mailtide.ui.log import log_context, register_secret

SECRET = "hunter2-Zq9"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    with pristine_logging():
        yield


@pytest.mark.parametrize("tty", [False, True], ids=["logfmt", "console"])
def test_registered_secret_never_appears(tty: bool) -> None:
    out = capture(1, tty=tty)
    register_secret(SECRET)
    log = structlog.get_logger()
    log.info(f"event text {SECRET}", note=f"embedded:{SECRET}:here", raw=SECRET.encode())
    log.info("nested", reply={"lines": [f"x {SECRET}"]}, error=ValueError(SECRET))
    logging.getLogger("aioimaplib").warning("Sending : LOGIN me %s", SECRET)
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        log.exception("boom")
    text = out.getvalue()
    assert SECRET not in text
    assert "embedded:***:here" in text
    assert "Sending : LOGIN me ***" in text
    assert "RuntimeError: failed with ***" in text


def test_password_named_keys_are_redacted() -> None:
    out = capture()
    structlog.get_logger().info(
        "login",
        user="me",
        password="pw-1",
        imap_password="pw-2",
        token="pw-3",
        settings={"pass": "pw-4"},
    )
    text = out.getvalue()
    assert "user=me" in text and "password=***" in text
    assert not any(f"pw-{i}" in text for i in range(1, 5))


def test_logfmt_lines_carry_context() -> None:
    out = capture()
    with log_context(account="work", mailbox="Archive/2024"):
        structlog.get_logger().info("copied", count=3)
    line = out.getvalue().strip()
    assert "level=info event=copied account=work mailbox=Archive/2024 count=3" in line


def test_json_lines() -> None:
    out = capture(json_lines=True)
    with log_context(account="work"):
        structlog.get_logger().warning("slow server", seconds=2.5)
    event = json.loads(out.getvalue())
    assert (event["event"], event["level"], event["account"], event["seconds"]) == (
        "slow server",
        "warning",
        "work",
        2.5,
    )


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [(-1, ["warning"]), (0, ["info", "warning"]), (1, ["debug", "info", "warning"])],
)
def test_levels(verbosity: int, shown: list[str]) -> None:
    out = capture(verbosity)
    log = structlog.get_logger()
    log.debug("debug")
    log.info("info")
    log.warning("warning")
    events = [line.split("event=")[1] for line in out.getvalue().splitlines()]
    assert events == shown


@pytest.mark.parametrize("name", ["asyncio", "mailtide.wire.imap"])
def test_library_and_conversation_debug_only_with_vv(name: str) -> None:
    out = capture(1)
    logging.getLogger(name).debug("wire chatter")
    assert out.getvalue() == ""
    out = capture(2)
    logging.getLogger(name).debug("wire chatter")
    assert "wire chatter" in out.getvalue()


def test_aioimaplib_raw_lines_never_shown() -> None:
    """Its debug and info lines are raw bytes on the wire (bodies, LOGIN): never, even at -vv."""
    out = capture(2)
    raw = logging.getLogger("aioimaplib")
    raw.debug("Sending : b'A1 LOGIN me pw'")
    raw.info("unknown data received b'body text'")
    raw.warning("something the user should know")
    text = out.getvalue()
    assert "LOGIN" not in text and "body text" not in text
    assert "something the user should know" in text


@pytest.mark.parametrize("short", ["t", "a", "secret", "Dovecot", "1234567"])
def test_a_short_secret_never_stars_ordinary_words(short: str) -> None:
    """Masking the password "t" everywhere made ``accoun***.failed``: stars that give it away."""
    out = capture(1)
    register_secret(short)
    path = "/home/test/Mail/Dovecot-secret/1234567"
    structlog.get_logger().error("account.failed", account="test", path=path, error="a timeout")
    line = out.getvalue()
    assert "***" not in line
    assert "event=account.failed" in line and f"path={path}" in line
    assert ui_log.redact("account.failed at tail") == "account.failed at tail"


PUNCTUATED = 'a.b*c(d)[e]{0}%s|^$+?\\"q'


@pytest.mark.parametrize(
    ("secret", "text", "shown"),
    [
        ("hunter2pw", "pw=hunter2pw end", "pw=*** end"),
        ("hunter2pw", 'LOGIN "me" "hunter2pw"', 'LOGIN "me" "***"'),
        ("hunter2pw", "imap://me:hunter2pw@host", "imap://me:***@host"),
        # inside a longer word it is not the secret standing whole
        ("hunter2pw", "xhunter2pwy hunter2pw2", "xhunter2pwy hunter2pw2"),
        # punctuation at an end is a boundary by itself
        ("%pa$$word!", "x%pa$$word!y", "x***y"),
        ("Passwörter", "key=Passwörter.", "key=***."),
        # regex and format characters are only characters
        (PUNCTUATED, f"got {PUNCTUATED} there", "got *** there"),
        # escaped as in a repr, or in a JSON or IMAP quoted string
        ('q"uo\\te-pw', 'LOGIN "me" "q\\"uo\\\\te-pw"', 'LOGIN "me" "***"'),
        ('it\'s-"pw"', repr(ValueError('it\'s-"pw"')), "ValueError('***')"),
    ],
)
def test_only_whole_secrets_of_eight_characters_or_more_are_masked(
    secret: str, text: str, shown: str
) -> None:
    out = capture()
    register_secret(secret)
    assert ui_log.redact(text) == shown
    structlog.get_logger().info("seen", text=text, raw=text.encode())
    line = out.getvalue()
    if shown != text:
        assert secret not in line and "***" in line


def test_under_journald_lines_carry_their_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd names the stream it connected to the journal in JOURNAL_STREAM (device:inode);
    a line written there starts with its syslog priority, and journald stamps the time."""
    with (tmp_path / "journal").open("w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        ui_log.setup_logging(1, stream=stream)
        log = structlog.get_logger()
        log.error("broke", account="work")
        log.warning("odd")
        log.info("fine")
        log.debug("detail")
        stream.seek(0)
        lines = stream.read().splitlines()
    assert [line[:3] for line in lines] == ["<3>", "<4>", "<6>", "<7>"], lines
    assert lines[0] == "<3>level=error event=broke account=work", lines[0]
    assert not any("timestamp" in line for line in lines)


def test_another_stream_than_the_journals_gets_no_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with (tmp_path / "log").open("w+") as stream:
        ui_log.setup_logging(0, stream=stream)
        structlog.get_logger().info("fine")
        stream.seek(0)
        line = stream.read().strip()
    assert line.startswith("timestamp=") and "event=fine" in line, line
