"""pristine_logging puts every logger's level back: a -vv test leaves no debug output on."""

from __future__ import annotations

import logging

import pytest

from log_helpers import capture, pristine_logging
from mailtide.ui import log as ui_log


@pytest.mark.parametrize(
    "name", [*ui_log._CHATTY_LIBRARIES, *ui_log._RAW_LIBRARIES, ui_log.WIRE_LOGGER, "root"]
)
def test_after_a_vv_capture_each_logger_has_its_level_back(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger(None if name == "root" else name)
    old = logger.level
    logger.setLevel(logging.ERROR)  # a level setup_logging never sets
    try:
        with pristine_logging():
            capture(2)
        logger.debug("debug after the test")
        logger.error("error after the test")
    finally:
        logger.setLevel(old)
    assert [r.getMessage() for r in caplog.records] == ["error after the test"]
