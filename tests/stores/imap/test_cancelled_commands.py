"""An IMAP command cancelled ends cancelled, whenever the cancellation comes: also in the
very loop steps in which its answer arrives (Python 3.11's ``asyncio.wait_for`` then returned
the answer, and a push source cancelled there ran on for ever: ``mailtide.deadline``)."""

from __future__ import annotations

import asyncio

import pytest

from dovecot import ImapAccount
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.parse import Untagged
from push_helpers import settings_of

ENDS_WITHIN = 5.0  # seconds from the cancellation to the end (a live server answers in ms)


def cancel_after(
    loop: asyncio.AbstractEventLoop, steps: int, task: asyncio.Future[object], asked: list[bool]
) -> None:
    """Cancel ``task`` ``steps`` loop steps from now (each step a hop through call_soon);
    ``asked`` gets whether it still ran then (``cancel`` returned True)."""
    if steps == 0:
        loop.call_soon(lambda: asked.append(task.cancel()))
    else:
        loop.call_soon(cancel_after, loop, steps - 1, task, asked)


@pytest.mark.parametrize("steps", range(8))
async def test_a_command_cancelled_as_its_answer_arrives_ends_cancelled(
    imap_account: ImapAccount, steps: int
) -> None:
    """The cancellation comes ``steps`` loop steps after the untagged CAPABILITY, which
    Dovecot sends in one write with the tagged OK: each step of the answer's way to the
    command is hit by one of the parameters."""
    loop = asyncio.get_running_loop()
    client = ImapClient(settings_of(imap_account))
    await client.connect()
    try:
        task: asyncio.Future[object] | None = None
        asked: list[bool] = []

        def heard(u: Untagged) -> bool:
            assert task is not None
            cancel_after(loop, steps, task, asked)
            return True

        task = asyncio.ensure_future(client.run("CAPABILITY", on_untagged=heard))
        done, _ = await asyncio.wait({task}, timeout=ENDS_WITHIN)
        assert done == {task}, "the command still runs"
        await asyncio.sleep(0.05)  # the cancellation has come (the last steps come after the end)
        if asked == [True]:  # it still ran: a cancellation it must not lose
            assert task.cancelled(), f"cancelled {steps} steps after the answer, it returned"
        else:
            assert asked == [False] and task.result().ok  # it had ended: nothing to cancel
    finally:
        await client.close()
