"""The state's calls from the event loop (state/offloop.py): the calls several tasks make at
once share one commit (group commit), each still durable when it returns, and one that
fails leaves the others' writes in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailtide.core.model import Identity, Record
from mailtide.state.db import StateDB, StateError
from mailtide.state.offloop import OffLoopState

ID = Identity("<a@x>", 120, "ab" * 32)


def record(i: int) -> Record:
    return Record((str(i), f"n{i}"), frozenset({"\\Seen"}), ID)


def test_calls_made_at_once_share_a_commit_and_a_failing_one_spoils_no_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    commits: list[str] = []

    async def main() -> list[object]:
        db = StateDB(path)
        boxes = [db.mailbox(f"box{i}") for i in range(6)]
        db._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        state = OffLoopState(db)
        try:
            bad = Record((None, "x"), frozenset(), ID)  # type: ignore[arg-type]  # NOT NULL
            calls = [state.put(box, [record(i)]) for i, box in enumerate(boxes)]
            calls.insert(3, state.put(boxes[0], [bad]))
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await state.close()

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[3], StateError), outcomes
    assert [o for at, o in enumerate(outcomes) if at != 3] == [None] * 6
    assert 1 <= len(commits) < 6  # the first alone, the others queued behind it: together
    db = StateDB(path)
    for i in range(6):
        assert db.records(db.mailbox(f"box{i}")) == [record(i)]
    db.close()


def test_a_group_on_a_state_that_takes_no_writes_fails_each_call_and_keeps_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sqlite"

    async def main() -> list[object]:
        db = StateDB(path)
        boxes = [db.mailbox(f"box{i}") for i in range(4)]
        state = OffLoopState(db)
        real = db.run_group

        def full_disk(calls: object) -> object:
            db._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full disk
            try:
                return real(calls)  # type: ignore[arg-type]
            finally:
                db._db.execute("PRAGMA query_only = OFF")

        monkeypatch.setattr(db, "run_group", full_disk)
        try:
            return await asyncio.gather(
                *(state.put(box, [record(i)]) for i, box in enumerate(boxes)),
                return_exceptions=True,
            )
        finally:
            await state.close()

    outcomes = asyncio.run(main())
    assert outcomes[0] is None  # alone: before the others queued
    assert all(isinstance(o, StateError) for o in outcomes[1:]), outcomes
    db = StateDB(path)
    assert [len(db.records(db.mailbox(f"box{i}"))) for i in range(4)] == [1, 0, 0, 0]
    db.close()


def test_writes_queued_with_the_close_are_kept_and_the_state_is_closed(tmp_path: Path) -> None:
    """A run cancelled while its mailboxes still wrote: the close comes among their calls,
    and is never made part of their transaction (it would take their writes with it)."""
    path = tmp_path / "s.sqlite"

    async def main() -> None:
        db = StateDB.for_account(path, "work")
        boxes = [db.mailbox(f"box{i}") for i in range(4)]
        state = OffLoopState(db)
        first = asyncio.ensure_future(state.put(boxes[0], [record(0)]))
        await asyncio.sleep(0)  # the worker has it: the next calls queue up behind it
        await asyncio.gather(
            first,
            state.put(boxes[1], [record(1)]),
            state.put(boxes[2], [record(2)]),
            state.close(),
            return_exceptions=True,
        )

    asyncio.run(main())
    db = StateDB.for_account(path, "work")  # the lock was let go
    assert [db.records(db.mailbox(f"box{i}")) for i in range(3)] == [
        [record(0)],
        [record(1)],
        [record(2)],
    ]
    db.close()
