"""The log pipeline: context, secret redaction, renderers, levels."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from mailtide.ui import log as ui_log
from mailtide.ui.log import log_context, register_secret, setup_logging

SECRET = "hunter2-Zq9"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # Other tests' passwords (registered when they resolved them) must not mask these lines.
    secrets = set(ui_log._secrets)
    ui_log._secrets.clear()
    yield
    ui_log._secrets.clear()
    ui_log._secrets.update(secrets)
    structlog.reset_defaults()
    if ui_log._handler is not None:
        logging.getLogger().removeHandler(ui_log._handler)
        ui_log._handler = None


def capture(verbosity: int = 0, *, json_lines: bool = False, tty: bool = False) -> io.StringIO:
    out = io.StringIO()
    setup_logging(verbosity, json_lines, stream=out, tty=tty)
    return out


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


def test_library_debug_only_with_vv() -> None:
    out = capture(1)
    logging.getLogger("aioimaplib").debug("wire chatter")
    assert out.getvalue() == ""
    out = capture(2)
    logging.getLogger("aioimaplib").debug("wire chatter")
    assert "wire chatter" in out.getvalue()
