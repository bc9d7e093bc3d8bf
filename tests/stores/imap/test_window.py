"""Commands sent through a window (``ImapProtocol.window``, ``ImapClient.window``): each is on
the wire at once, before any answer to the ones before; each answer is asked for when its
caller wants it, and is its own; what is left unanswered is waited for on the way out, so the
connection stays in step; a hang-up fails what is left."""

from __future__ import annotations

import asyncio

import pytest

from mailtide.stores.base import ConnectionLost, StoreError
from mailtide.stores.imap.parse import Untagged
from mailtide.stores.imap.protocol import Pipelined
from stores.imap.test_pipelined import scripted_client


def noop(seen: list[tuple[str, int | None]], name: str, check: bool = True) -> Pipelined:
    def take(u: Untagged) -> bool:
        seen.append((name, u.number))
        return True

    return Pipelined(("NOOP",), take, check=check)


def test_a_window_sends_each_command_before_any_answer_and_each_gets_its_own() -> None:
    """The scripted server answers only once it has read three commands: a window that
    waited for an answer before sending the next would hang.  It ends them out of order."""
    answer = b"* 1 EXISTS\r\nT2 OK second\r\n* 2 EXISTS\r\nT1 OK first\r\nT3 NO third\r\n"

    async def run() -> None:
        async with scripted_client(answer) as client:
            seen: list[tuple[str, int | None]] = []
            async with client.window() as window:
                sent = [
                    window.send(noop(seen, "first")),
                    window.send(noop(seen, "second")),
                    window.send(noop(seen, "third", check=False)),
                ]
                third = await asyncio.wait_for(window.answer(sent[2]), 10)
                first = await window.answer(sent[0])
                second = await window.answer(sent[1])
            assert (first.text, second.text) == ("first", "second")
            assert (third.status, third.text) == ("NO", "third")
            assert seen == [("first", 1), ("first", 2)]  # the oldest still running
            assert (await client.run("NOOP")).ok  # in step again

    asyncio.run(run())


def test_a_no_answer_raises_where_it_is_asked_for() -> None:
    async def run() -> None:
        async with scripted_client(
            b"T1 OK first\r\nT2 NO [TRYCREATE] second\r\nT3 OK third\r\n"
        ) as client:
            async with client.window() as window:
                sent = [window.send(noop([], n)) for n in ("first", "second", "third")]
                assert (await window.answer(sent[0])).ok
                with pytest.raises(StoreError, match="NOOP failed: NO second"):
                    await window.answer(sent[1])
                assert (await window.answer(sent[2])).ok
            assert (await client.run("NOOP")).ok

    asyncio.run(run())


def test_answers_not_asked_for_are_waited_for_on_the_way_out() -> None:
    """A caller that stops early (a copy that failed, a generator closed) leaves its
    commands' answers to the window, which reads them before the connection serves another
    command: that command gets its own answer, not an earlier one's."""

    async def run() -> None:
        answer = b"T1 OK first\r\nT2 OK second\r\nT3 OK third\r\n"
        async with scripted_client(answer) as client:
            with pytest.raises(RuntimeError, match="the caller's"):
                async with client.window() as window:
                    for name in ("first", "second", "third"):
                        window.send(noop([], name))
                    raise RuntimeError("the caller's own failure passes through as it is")
            after = await asyncio.wait_for(client.run("NOOP"), 10)
            assert (after.status, after.text) == ("OK", "done")
            assert client.usable

    asyncio.run(run())


def test_a_server_that_hangs_up_fails_what_is_left_and_the_window_ends() -> None:
    async def run() -> None:
        async with scripted_client(b"T1 OK first\r\n", hang_up=True) as client:
            with pytest.raises(ConnectionLost):
                async with client.window() as window:
                    sent = [window.send(noop([], n)) for n in ("first", "second", "third")]
                    assert (await window.answer(sent[0])).ok
                    await asyncio.wait_for(window.answer(sent[1]), 10)
            assert not client.usable

    asyncio.run(run())


def test_a_literal_cannot_go_through_a_window() -> None:
    async def run() -> None:
        answer = b"T1 OK first\r\nT2 OK second\r\nT3 OK third\r\n"
        async with scripted_client(answer) as client, client.window() as window:
            with pytest.raises(ValueError, match="literal"):
                window.send(Pipelined(("APPEND", '"INBOX"', (1, _one()))))
            sent = [window.send(noop([], n)) for n in ("first", "second", "third")]
            texts = [(await window.answer(s)).text for s in sent]
        assert texts == ["first", "second", "third"]

    asyncio.run(run())


async def _one():  # type: ignore[no-untyped-def]
    yield b"x"


def test_a_window_cancelled_with_commands_unanswered_drops_the_connection() -> None:
    """Their answers may still be coming: the stream could not be followed any more, so the
    connection is closed (the next sync opens another) rather than left out of step."""

    async def run() -> None:
        async with scripted_client(b"T1 OK first\r\n") as client:
            started = asyncio.Event()

            async def waiting() -> None:
                async with client.window() as window:
                    sent = [window.send(noop([], n)) for n in ("first", "second", "third")]
                    await window.answer(sent[0])
                    started.set()
                    await window.answer(sent[1])  # never comes

            task = asyncio.create_task(waiting())
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not client.usable

    asyncio.run(run())
