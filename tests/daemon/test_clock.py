"""The suspend/resume detector: an injected clock, and the test hook an end-to-end test uses."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from mailtide.daemon.clock import (
    SLEPT_FILE_ENV,
    ResumeDetector,
    slept_since_boot,
    watch_resumes,
)


class SleptClock:
    """Seconds slept so far, as the test says."""

    def __init__(self) -> None:
        self.slept = 100.0

    def __call__(self) -> float:
        return self.slept


@pytest.mark.parametrize(
    ("growth", "reported"),
    [
        (0.0, None),
        (0.003, None),  # clock jitter between the two readings
        (5.0, None),  # at the threshold: not a sleep
        (5.5, 5.5),
        (8 * 3600.0, 8 * 3600.0),
    ],
)
def test_a_growth_above_the_threshold_is_a_sleep(growth: float, reported: float | None) -> None:
    clock = SleptClock()
    detector = ResumeDetector(clock, threshold=5.0)
    assert detector.check() is None  # the baseline
    clock.slept += growth
    assert detector.check() == reported


def test_each_sleep_is_reported_once_and_small_growths_do_not_add_up() -> None:
    clock = SleptClock()
    detector = ResumeDetector(clock, threshold=5.0)
    seen = []
    for growth in (0, 3, 3, 3, 60, 0, 0, 120, 4):
        clock.slept += growth
        seen.append(detector.check())
    assert seen == [None, None, None, None, 60, None, None, 120, None]


async def test_watch_resumes_calls_back_with_the_time_slept() -> None:
    clock = SleptClock()
    resumes: asyncio.Queue[float] = asyncio.Queue()
    watch = asyncio.create_task(
        watch_resumes(resumes.put_nowait, interval=0.01, detector=ResumeDetector(clock))
    )
    try:
        await asyncio.sleep(0.05)
        assert resumes.empty()
        clock.slept += 3600
        assert await asyncio.wait_for(resumes.get(), 2) == 3600
        await asyncio.sleep(0.05)
        assert resumes.empty()  # one sleep, one call
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


async def test_the_slept_file_simulates_a_resume_through_the_real_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept_file = tmp_path / "slept"
    monkeypatch.setenv(SLEPT_FILE_ENV, str(slept_file))
    resumes: asyncio.Queue[float] = asyncio.Queue()
    watch = asyncio.create_task(watch_resumes(resumes.put_nowait, interval=0.01))
    try:
        await asyncio.sleep(0.05)
        assert resumes.empty()
        slept_file.write_text("3600\n")
        slept = await asyncio.wait_for(resumes.get(), 2)
        assert 3599.9 < slept < 3601  # the two clocks drift by nanoseconds between reads
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


@pytest.mark.parametrize("content", [None, "", "soon", "\x00"])
def test_a_missing_or_unreadable_slept_file_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    slept_file = tmp_path / "slept"
    if content is not None:
        slept_file.write_text(content)
    real = slept_since_boot()
    monkeypatch.setenv(SLEPT_FILE_ENV, str(slept_file))
    assert abs(slept_since_boot() - real) < 1


def test_the_real_clock_does_not_report_a_sleep_while_awake() -> None:
    detector = ResumeDetector()
    assert detector.check() is None
    assert detector.check() is None
