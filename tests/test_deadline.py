"""``within``: an await with a deadline that a cancellation always gets through (Python 3.11's
``asyncio.wait_for`` returns the result instead when both come in the same loop step)."""

from __future__ import annotations

import asyncio

import pytest

from mailtide.deadline import within


@pytest.mark.parametrize("steps", range(6))
async def test_cancelled_at_any_step_around_the_result_ends_cancelled(steps: int) -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    async def waiting() -> None:
        await within(asyncio.shield(answer), 10)
        await asyncio.sleep(3600)  # had the cancellation been lost, the task would wait here

    task = asyncio.ensure_future(waiting())
    await asyncio.sleep(0)
    loop.call_soon(answer.set_result, "OK")
    _cancel_after(loop, steps, task)
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task} and task.cancelled(), f"cancelled {steps} steps after the result"


def _cancel_after(loop: asyncio.AbstractEventLoop, steps: int, task: asyncio.Task[None]) -> None:
    """Cancel ``task`` ``steps`` loop steps from now (each step a hop through call_soon)."""
    if steps == 0:
        loop.call_soon(task.cancel)
    else:
        loop.call_soon(_cancel_after, loop, steps - 1, task)


async def test_the_deadline_raises_timeout_and_cancels_the_awaitable() -> None:
    slow = asyncio.ensure_future(asyncio.sleep(3600))
    with pytest.raises(TimeoutError):
        await within(slow, 0.05)
    assert slow.cancelled()


async def test_a_timeout_inside_a_task_being_cancelled_is_still_a_timeout() -> None:
    """``ImapClient.close`` waits for LOGOUT with a deadline while its task is cancelled."""
    outcome = []

    async def closing() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            try:
                await within(asyncio.sleep(3600), 0.05)
            except TimeoutError:
                outcome.append("timed out")
            raise

    task = asyncio.ensure_future(closing())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task} and task.cancelled()
    assert outcome == ["timed out"]


async def test_the_result_comes_back() -> None:
    assert await within(asyncio.sleep(0, "OK"), 1) == "OK"
    assert await within(asyncio.sleep(0, "OK"), None) == "OK"
