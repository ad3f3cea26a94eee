"""Small structured-concurrency helpers that raise one plain exception, never a group.

anyio's task groups wrap every error in an ExceptionGroup. The library
promises its callers one typed exception, so the helpers here run steps
concurrently and re-raise the first failure as itself. Also here: a file
that is closed even when its user is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, Literal, TypeVar, cast

import anyio
import anyio.abc

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import AsyncFile, open_file

from ._errors import AsyncioRequiredError

T = TypeVar("T")

Step = Callable[[], Awaitable[object]]


StartSoon = Callable[[Step], None]


@asynccontextmanager
async def _steps(*, first_return_wins: bool) -> AsyncIterator[StartSoon]:
    """A task group whose first error, of a step or of the block, is raised as itself."""
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:

        async def run(step: Step) -> None:
            try:
                await step()
            except Exception as exc:  # cancellation is a BaseException: it propagates
                errors.append(exc)
                tg.cancel_scope.cancel()
            else:
                if first_return_wins:
                    tg.cancel_scope.cancel()

        def start_soon(step: Step) -> None:
            tg.start_soon(run, step)

        try:
            yield start_soon
        except Exception as exc:
            errors.append(exc)
            tg.cancel_scope.cancel()
    if errors:
        raise errors[0]


async def run_all(*steps: Step) -> None:
    """Run ``steps`` concurrently until all return.

    If one raises, the others are cancelled and that first error is raised as
    itself. Cancelling the caller cancels every step.
    """
    async with _steps(first_return_wins=False) as start_soon:
        for step in steps:
            start_soon(step)


async def race(*steps: Step) -> None:
    """Run ``steps`` concurrently until the first one returns or raises; cancel the rest.

    The first error is raised as itself. Cancelling the caller cancels every step.
    """
    async with _steps(first_return_wins=True) as start_soon:
        for step in steps:
            start_soon(step)


def beside() -> AbstractAsyncContextManager[StartSoon]:
    """Yield a ``start_soon(step)`` for steps that run beside the block; the exit waits for them.

    The first error, of a step or of the block, cancels the others and the
    block, and is raised as itself. Cancelling the caller cancels every step.
    """
    return _steps(first_return_wins=False)


@asynccontextmanager
async def serving() -> AsyncIterator[anyio.abc.TaskGroup]:
    """A task group for tasks that serve as long as the block runs (listeners, say):
    cancelled when the block ends, by any path; the block's own error is raised as
    itself, not in a group. Cancelling the caller cancels them too."""
    body_error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        try:
            yield tg
        except anyio.get_cancelled_exc_class():
            raise  # the task group must see it; it comes out as itself
        except BaseException as exc:
            body_error = exc  # kept out of the task group, which would wrap it in a group
        finally:
            tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


class Outcome(Generic[T]):
    """The result of a background step, awaited by any number of tasks."""

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def set_value(self, value: T) -> None:
        self._value = value
        self._done.set()

    def set_error(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    async def get(self) -> T:
        """Wait for the outcome; return the value or raise the error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


@asynccontextmanager
async def opened(
    path: str | os.PathLike[str], mode: Literal["rb", "wb"]
) -> AsyncIterator[AsyncFile[bytes]]:
    """``anyio.open_file``, closed on exit even when cancelled.

    anyio before 4.16 closed an ``AsyncFile`` in a thread call that a
    cancellation skipped, so a cancelled block left the file open until the
    garbage collector found it. 4.16, the floor now, shields that close
    itself; this stays the one way files are opened here.
    """
    file = await open_file(path, mode)
    try:
        yield file
    finally:
        with anyio.CancelScope(shield=True):
            await file.aclose()


def require_asyncio(what: str) -> None:
    """Raise ``AsyncioRequiredError`` unless this runs on an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        try:
            library = "trio" if trio is not None and trio.lowlevel.current_task() else ""
        except RuntimeError:
            library = ""
        raise AsyncioRequiredError(what, library or "another event loop") from None
