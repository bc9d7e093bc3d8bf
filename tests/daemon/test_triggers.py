"""The trigger queue: merging, the trailing debounce, the cap on delay, waiters.

Times are small (debounce 0.05 s); the bounds checked are the promised ones, with slack above
for a busy machine, never below.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from mailtide.daemon.triggers import Cause, SyncRequest, Trigger, TriggerQueue, merge

DEBOUNCE = 0.05
MAX_DELAY = 0.25
GUARD = 3.0  # no test waits this long unless next_batch is broken
SLACK = 0.5


def boxes(*names: str) -> frozenset[str]:
    return frozenset(names)


@pytest.mark.parametrize(
    ("triggers", "mailboxes", "full", "causes"),
    [
        (
            [Trigger(Cause.SERVER_PUSH, boxes("INBOX"))],
            boxes("INBOX"),
            False,
            {Cause.SERVER_PUSH},
        ),
        (
            [
                Trigger(Cause.SERVER_PUSH, boxes("INBOX")),
                Trigger(Cause.MAILDIR_PUSH, boxes("Sent", "INBOX")),
            ],
            boxes("INBOX", "Sent"),
            False,
            {Cause.SERVER_PUSH, Cause.MAILDIR_PUSH},
        ),
        (  # all absorbs any list, whatever the order
            [
                Trigger(Cause.MAILDIR_PUSH, boxes("Sent")),
                Trigger(Cause.TIMER),
                Trigger(Cause.SERVER_PUSH, boxes("INBOX")),
            ],
            None,
            False,
            {Cause.MAILDIR_PUSH, Cause.TIMER, Cause.SERVER_PUSH},
        ),
        (  # full wins over quick
            [Trigger(Cause.TIMER), Trigger(Cause.SIGNAL, full=True), Trigger(Cause.TIMER)],
            None,
            True,
            {Cause.TIMER, Cause.SIGNAL},
        ),
        (
            [
                Trigger(Cause.CONTROL, boxes("Archive/2024"), full=True),
                Trigger(Cause.SERVER_PUSH, boxes("INBOX")),
            ],
            boxes("Archive/2024", "INBOX"),
            True,
            {Cause.CONTROL, Cause.SERVER_PUSH},
        ),
    ],
)
def test_merge(
    triggers: list[Trigger],
    mailboxes: frozenset[str] | None,
    full: bool,
    causes: set[Cause],
) -> None:
    assert merge(triggers) == SyncRequest(frozenset(causes), mailboxes, full)


def test_a_trigger_names_a_mailbox_or_all() -> None:
    with pytest.raises(ValueError, match="at least one mailbox"):
        Trigger(Cause.SERVER_PUSH, frozenset())
    with pytest.raises(ValueError, match="nothing to merge"):
        merge([])


async def test_every_waiter_gets_the_result_of_the_sync_that_served_it() -> None:
    loop = asyncio.get_running_loop()
    first, second, gone = loop.create_future(), loop.create_future(), loop.create_future()
    gone.cancel()  # the client went away
    request = merge(
        [
            Trigger(Cause.CONTROL, boxes("INBOX"), waiter=first),
            Trigger(Cause.SERVER_PUSH, boxes("INBOX")),
            Trigger(Cause.CONTROL, waiter=gone),
            Trigger(Cause.CONTROL, boxes("Sent"), waiter=second),
        ]
    )
    assert request.waiters == (first, gone, second)
    request.settle("report")
    assert first.result() == "report"
    assert second.result() == "report"
    assert gone.cancelled()


async def test_a_failed_sync_fails_every_waiter() -> None:
    loop = asyncio.get_running_loop()
    waiters = [loop.create_future(), loop.create_future()]
    request = merge([Trigger(Cause.CONTROL, waiter=w) for w in waiters])
    request.fail(ConnectionError("server unreachable"))
    for waiter in waiters:
        with pytest.raises(ConnectionError, match="unreachable"):
            waiter.result()


@contextlib.asynccontextmanager
async def producing(queue: TriggerQueue, every: float) -> AsyncIterator[list[str]]:
    """Puts a trigger into ``queue`` every ``every`` seconds; yields the names put so far."""
    put: list[str] = []

    async def produce() -> None:
        while True:
            name = f"box{len(put)}"
            put.append(name)
            queue.put(Trigger(Cause.MAILDIR_PUSH, boxes(name)))
            await asyncio.sleep(every)

    task = asyncio.create_task(produce())
    try:
        yield put
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_maildir_change_syncs_after_the_debounce() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    start = time.monotonic()
    queue.put(Trigger(Cause.MAILDIR_PUSH, boxes("INBOX")))
    request = await asyncio.wait_for(queue.next_batch(), GUARD)
    waited = time.monotonic() - start
    assert request.mailboxes == boxes("INBOX")
    assert DEBOUNCE <= waited < DEBOUNCE + SLACK
    assert len(queue) == 0


@pytest.mark.parametrize("cause", [c for c in Cause if c is not Cause.MAILDIR_PUSH])
async def test_every_other_cause_syncs_at_once(cause: Cause) -> None:
    """The server batches its own news; a signal or control request has a user waiting."""
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    queue.put(Trigger(cause, boxes("INBOX")))
    batch = asyncio.create_task(queue.next_batch())
    await asyncio.sleep(0)  # one step of the task: no waiting at all
    assert batch.done()
    assert batch.result().causes == {cause}


async def test_server_news_takes_the_maildir_changes_pending_with_it() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    batch = asyncio.create_task(queue.next_batch())
    queue.put(Trigger(Cause.MAILDIR_PUSH, boxes("Sent")))
    await asyncio.sleep(0)
    assert not batch.done()
    queue.put(Trigger(Cause.SERVER_PUSH, boxes("INBOX")))
    await asyncio.sleep(0)  # the waiting task wakes
    await asyncio.sleep(0)  # and returns without waiting
    assert batch.done()
    request = batch.result()
    assert request.mailboxes == boxes("INBOX", "Sent")
    # the next batch starts afresh: a Maildir change alone waits out the debounce again
    queue.put(Trigger(Cause.MAILDIR_PUSH, boxes("Drafts")))
    start = time.monotonic()
    await asyncio.wait_for(queue.next_batch(), GUARD)
    assert time.monotonic() - start >= DEBOUNCE


async def test_a_burst_is_one_sync_after_its_last_trigger() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY * 4)
    batch = asyncio.create_task(queue.next_batch())
    for name in ("INBOX", "Sent", "INBOX", "Drafts"):
        queue.put(Trigger(Cause.MAILDIR_PUSH, boxes(name)))
        last = time.monotonic()
        await asyncio.sleep(DEBOUNCE / 2)  # closer together than the debounce
        assert not batch.done()
    request = await asyncio.wait_for(batch, GUARD)
    assert time.monotonic() - last >= DEBOUNCE
    assert request.mailboxes == boxes("INBOX", "Sent", "Drafts")


async def test_a_steady_stream_still_syncs_within_max_delay() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    async with producing(queue, every=DEBOUNCE / 5) as put:
        start = time.monotonic()
        first = await asyncio.wait_for(queue.next_batch(), GUARD)
        waited = time.monotonic() - start
        second = await asyncio.wait_for(queue.next_batch(), GUARD)
    assert MAX_DELAY <= waited < MAX_DELAY + SLACK
    # Each trigger is served once, in order: the first batch, then the next ones.
    assert first.mailboxes is not None and second.mailboxes is not None
    taken, then = len(first.mailboxes), len(second.mailboxes)
    assert first.mailboxes == frozenset(put[:taken])
    assert second.mailboxes == frozenset(put[taken : taken + then])


async def test_triggers_that_came_during_a_sync_are_due_at_once() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    queue.put(Trigger(Cause.MAILDIR_PUSH, boxes("INBOX")))
    await asyncio.sleep(DEBOUNCE * 2)  # the sync in flight; nobody waits on the queue
    batch = asyncio.create_task(queue.next_batch())
    await asyncio.sleep(0)  # one step of the task: no waiting at all
    assert batch.done()
    assert batch.result().mailboxes == boxes("INBOX")


async def test_max_delay_counts_from_the_first_trigger_even_during_a_sync() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    async with producing(queue, every=DEBOUNCE / 5):
        first_put = time.monotonic()
        await asyncio.sleep(MAX_DELAY * 0.6)  # a sync in flight while the stream goes on
        await asyncio.wait_for(queue.next_batch(), GUARD)
        done = time.monotonic() - first_put
    assert MAX_DELAY <= done < MAX_DELAY + SLACK


async def test_cancelling_next_batch_loses_no_trigger() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    waiter = asyncio.get_running_loop().create_future()
    queue.put(Trigger(Cause.MAILDIR_PUSH, boxes("INBOX"), waiter=waiter))
    batch = asyncio.create_task(queue.next_batch())
    await asyncio.sleep(0)
    batch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await batch
    assert len(queue) == 1
    request = await asyncio.wait_for(queue.next_batch(), GUARD)
    assert request.mailboxes == boxes("INBOX")
    assert request.waiters == (waiter,)


async def test_discard_fails_the_pending_waiters_and_empties_the_queue() -> None:
    queue = TriggerQueue(debounce=DEBOUNCE, max_delay=MAX_DELAY)
    waiter = asyncio.get_running_loop().create_future()
    queue.put(Trigger(Cause.CONTROL, waiter=waiter))
    queue.put(Trigger(Cause.TIMER))
    queue.discard(RuntimeError("the daemon is stopping"))
    with pytest.raises(RuntimeError, match="stopping"):
        waiter.result()
    assert len(queue) == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.next_batch(), DEBOUNCE * 3)


def test_the_debounce_may_not_exceed_the_cap() -> None:
    with pytest.raises(ValueError, match="debounce"):
        TriggerQueue(debounce=1.0, max_delay=0.5)
