"""The one retry of the engine's passing refusals.

Engines refuse some requests for a moment and then take them (Podman's
broken pipe while it unpacks, Docker 20.10's stale endpoint on a network
being removed, ...). Each such refusal is named where its request is made,
by a predicate on our own errors; this runs the request again, a few times.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

logger = logging.getLogger("ephemeral_registry")

T = TypeVar("T")

ATTEMPTS = 5
"""How many times a request is made, in all, while the engine refuses it in passing."""
DELAY = 0.5
"""Seconds between two attempts."""


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    passing: Callable[[Exception], bool],
    what: str,
    attempts: int | None = None,
    delay: float | None = None,
    before_again: Callable[[Exception], Awaitable[None]] | None = None,
) -> T:
    """Await ``attempt()`` until it returns; return what it returns.

    An error for which ``passing(error)`` is true, while attempts remain, is
    logged (``what`` says what is tried again), handed to ``before_again``
    (to undo what the attempt left, say) and followed, after ``delay``
    seconds, by the next attempt. Any other error, and the last attempt's,
    is raised as itself. ``attempts`` and ``delay`` default to ``ATTEMPTS``
    and ``DELAY``, read at each call.

    Cancellation: propagates from the attempt, ``before_again`` or the delay;
    nothing is tried again.
    """
    attempts = ATTEMPTS if attempts is None else attempts
    delay = DELAY if delay is None else delay
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            if number == attempts or not passing(exc):
                raise
            logger.debug("%s again: %s", what, exc)
            if before_again is not None:
                await before_again(exc)
        if delay:
            await anyio.sleep(delay)
    raise AssertionError("not reached")  # the last attempt returns or raises
