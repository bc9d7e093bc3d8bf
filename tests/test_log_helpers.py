"""pristine_logging puts every logger's level back: a -vv test leaves no debug output on."""

from __future__ import annotations

import logging

import pytest

from log_helpers import capture, pristine_logging
from mailtide.ui import log as ui_log


@pytest.mark.parametrize(
    "name", [*ui_log._CHATTY_LIBRARIES, *ui_log._RAW_LIBRARIES, ui_log.WIRE_LOGGER, "mailtide"]
)
def test_after_a_vv_capture_no_library_logs_at_debug(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pristine_logging():
        capture(2)
    logging.getLogger(name).debug("an event after the test")
    assert [r.getMessage() for r in caplog.records] == []
