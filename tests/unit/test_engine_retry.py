"""The one retry of the engine's passing refusals."""

from __future__ import annotations

import anyio
import pytest

from ephemeral_registry._engine.retry import retry

pytestmark = pytest.mark.anyio


class Passing(Exception):
    pass


async def test_a_passing_refusal_is_tried_again_until_the_attempt_returns() -> None:
    """Each refusal is handed to before_again, then the attempt is made again."""
    results: list[object] = [Passing("1"), Passing("2"), "made"]
    seen: list[str] = []

    async def attempt() -> str:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return str(result)

    async def before_again(exc: Exception) -> None:
        seen.append(str(exc))

    made = await retry(
        attempt,
        passing=lambda exc: isinstance(exc, Passing),
        what="making it",
        delay=0,
        before_again=before_again,
    )
    assert (made, seen) == ("made", ["1", "2"])


async def test_the_last_attempts_refusal_is_raised_as_itself() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise Passing(len(calls))

    with pytest.raises(Passing) as raised:
        await retry(attempt, passing=lambda exc: True, what="it", attempts=3, delay=0)
    assert (len(calls), raised.value.args) == (3, (3,))


async def test_another_error_is_raised_at_once_and_nothing_is_undone() -> None:
    async def attempt() -> None:
        raise ValueError("other")

    async def before_again(exc: Exception) -> None:
        raise AssertionError("not a passing refusal")

    with pytest.raises(ValueError, match="other"):
        await retry(
            attempt,
            passing=lambda exc: isinstance(exc, Passing),
            what="it",
            before_again=before_again,
        )


async def test_a_cancellation_during_the_delay_is_not_tried_again() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise Passing

    with anyio.move_on_after(0.05) as scope:
        await retry(attempt, passing=lambda exc: True, what="it", delay=10)
    assert scope.cancelled_caught
    assert len(calls) == 1
