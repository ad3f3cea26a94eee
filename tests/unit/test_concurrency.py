"""The helpers that run steps at once and raise one plain exception."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from ephemeral_registry._concurrency import Outcome, beside, opened, race, run_all

pytestmark = pytest.mark.anyio


async def test_run_all_waits_for_every_step() -> None:
    """All steps run concurrently and all finish."""
    done: list[str] = []
    both_started = anyio.Event()

    async def first() -> None:
        await both_started.wait()
        done.append("first")

    async def second() -> None:
        both_started.set()
        done.append("second")

    await run_all(first, second)
    assert sorted(done) == ["first", "second"]


async def test_run_all_raises_the_first_error_as_itself_and_cancels_the_rest() -> None:
    """No ExceptionGroup: the caller gets the error that happened."""
    cancelled = False

    async def slow() -> None:
        nonlocal cancelled
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise

    async def failing() -> None:
        await anyio.lowlevel.checkpoint()
        raise LookupError("first failure")

    with pytest.raises(LookupError, match="first failure"):
        await run_all(slow, failing)
    assert cancelled


async def test_race_ends_when_the_first_step_returns() -> None:
    """The other steps are cancelled."""
    finished: list[str] = []

    async def quick() -> None:
        finished.append("quick")

    async def forever() -> None:
        await anyio.sleep_forever()
        finished.append("forever")

    with anyio.fail_after(1):
        await race(forever, quick)
    assert finished == ["quick"]


async def test_cancelling_the_caller_cancels_every_step() -> None:
    """Cancellation propagates out of run_all."""
    with anyio.move_on_after(0.01) as scope:
        await run_all(anyio.sleep_forever, anyio.sleep_forever)
    assert scope.cancelled_caught


async def test_outcome_is_shared_by_every_waiter() -> None:
    """Waiters before and after the value get it; an error is raised to each."""
    outcome: Outcome[int] = Outcome()
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(lambda: _append(got, outcome))
        await anyio.lowlevel.checkpoint()
        outcome.set_value(7)
    got.append(await outcome.get())
    assert got == [7, 7, 7, 7]

    failed: Outcome[int] = Outcome()
    failed.set_error(OSError("no"))
    for _ in range(2):
        with pytest.raises(OSError, match="no"):
            await failed.get()


async def _append(into: list[int], outcome: Outcome[int]) -> None:
    into.append(await outcome.get())


async def test_beside_waits_for_its_steps_at_the_exit() -> None:
    """Steps started beside the block run while it goes on; leaving it waits for them."""
    done: list[str] = []
    block_went_on = anyio.Event()

    async def step() -> None:
        await block_went_on.wait()
        await anyio.sleep(0.01)
        done.append("step")

    async with beside() as start_soon:
        start_soon(step)
        done.append("block")
        block_went_on.set()
    assert done == ["block", "step"]


async def test_a_failing_step_cancels_the_block_and_is_raised_as_itself() -> None:
    """No ExceptionGroup; the block stops where it waits."""
    reached_end_of_block = False

    async def step() -> None:
        raise ValueError("step failed")

    with pytest.raises(ValueError, match="step failed"):
        async with beside() as start_soon:
            start_soon(step)
            await anyio.sleep_forever()
            reached_end_of_block = True
    assert not reached_end_of_block


async def test_a_failing_block_cancels_its_steps_and_is_raised_as_itself() -> None:
    cancelled = False

    async def step() -> None:
        nonlocal cancelled
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise

    with pytest.raises(KeyError):
        async with beside() as start_soon:
            start_soon(step)
            await anyio.lowlevel.checkpoint()
            raise KeyError("block failed")
    assert cancelled


async def test_a_file_is_closed_when_its_block_is_cancelled(tmp_path: Path) -> None:
    """Closed at once, not by the garbage collector (anyio before 4.16 skipped its own close)."""
    with anyio.CancelScope() as scope:
        async with opened(tmp_path / "file", "wb") as file:
            scope.cancel()
            await anyio.sleep_forever()
    assert file.wrapped.closed
