"""Backoff with decorrelated jitter: seeded delays, reset, and retry-now."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from mailtide.daemon.backoff import Backoff

GUARD = 3.0


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.failed() for _ in range(count)]


@pytest.mark.parametrize("seed", range(20))
def test_delays_stay_between_first_and_a_doubling_ceiling_up_to_the_cap(seed: int) -> None:
    seen = delays(Backoff(first=1.0, cap=300.0, rng=random.Random(seed)), 40)
    assert seen[0] == 1.0
    assert all(1.0 <= d <= min(300.0, 2.0**n) for n, d in enumerate(seen))
    assert max(seen[9:]) > 150.0  # from the tenth failure on, drawn up to the cap


def test_the_same_seed_gives_the_same_delays_and_others_drift_apart() -> None:
    assert delays(Backoff(rng=random.Random(7)), 10) == delays(Backoff(rng=random.Random(7)), 10)
    fifth = {delays(Backoff(rng=random.Random(seed)), 5)[-1] for seed in range(20)}
    assert len(fifth) == 20  # daemons that failed together retry apart


def test_success_starts_over() -> None:
    backoff = Backoff(first=1.0, cap=300.0, rng=random.Random(3))
    delays(backoff, 30)
    assert backoff.failures == 30
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.failed() == 1.0
    assert 1.0 <= backoff.failed() <= 2.0


def test_first_must_be_positive_and_below_the_cap() -> None:
    for first, cap in ((0.0, 1.0), (5.0, 1.0)):
        with pytest.raises(ValueError, match="first"):
            Backoff(first=first, cap=cap)


async def test_wait_waits_out_the_delay() -> None:
    backoff = Backoff(first=0.05, cap=0.05)
    delay = backoff.failed()
    start = time.monotonic()
    assert await asyncio.wait_for(backoff.wait(), GUARD) is False
    assert time.monotonic() - start >= delay


async def test_retry_now_cuts_a_wait_short() -> None:
    backoff = Backoff(first=60.0, cap=300.0)
    backoff.failed()
    waiting = asyncio.create_task(backoff.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    backoff.retry_now()
    assert await asyncio.wait_for(waiting, GUARD) is True


async def test_retry_now_between_failure_and_wait_is_not_lost() -> None:
    backoff = Backoff(first=60.0, cap=300.0)
    backoff.failed()
    backoff.retry_now()
    assert await asyncio.wait_for(backoff.wait(), GUARD) is True
    # ...and the retry that fails again waits its full, grown delay.
    assert 60.0 <= backoff.failed() <= 120.0
    assert backoff.failures == 2


async def test_retry_now_while_all_is_well_does_not_skip_a_later_wait() -> None:
    backoff = Backoff(first=0.05, cap=0.05)
    backoff.retry_now()  # SIGUSR1 with no failure outstanding
    assert await backoff.wait() is False  # nothing to wait for
    backoff.failed()
    start = time.monotonic()
    assert await asyncio.wait_for(backoff.wait(), GUARD) is False
    assert time.monotonic() - start >= 0.05


async def test_a_signal_is_used_once() -> None:
    backoff = Backoff(first=0.05, cap=0.05)
    backoff.failed()
    backoff.retry_now()
    assert await backoff.wait() is True
    backoff.failed()
    assert await asyncio.wait_for(backoff.wait(), GUARD) is False
