"""The library runs on asyncio; under trio it says so at once, before anything is made."""

from __future__ import annotations

import threading

import anyio
import pytest

import ephemeral_registry
from ephemeral_registry import AsyncioRequiredError


async def _enter() -> None:
    async with ephemeral_registry.ephemeral_registry():
        pytest.fail("entered under trio")


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (_enter, "ephemeral_registry()"),
        (ephemeral_registry.sweep, "sweep()"),
        (ephemeral_registry.find_leftovers, "find_leftovers()"),
    ],
)
def test_under_trio_the_entry_points_raise_asyncio_required_at_once(
    call: object, named: str
) -> None:
    """A typed error naming trio and the way that works, not aiohttp's 'no running loop'."""
    threads = threading.active_count()
    with pytest.raises(AsyncioRequiredError, match="start_blocking_portal") as caught:
        anyio.run(call, backend="trio")  # type: ignore[arg-type]
    assert caught.value.library == "trio"
    assert str(caught.value).startswith(f"{named} runs on asyncio, not on trio")
    assert threading.active_count() == threads  # nothing was started
