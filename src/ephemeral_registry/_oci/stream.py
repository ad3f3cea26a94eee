"""A stream of outside bytes, read a chunk at a time: the one chunk loop of every reader.

A reader takes its input as a ``ReadExactly`` (an engine's export, a file,
the current member of a tar) and reads a member's or a blob's data through
``each_chunk``, which returns to the event loop at every chunk: memory is
one chunk, and deadlines and cancellation work however long the input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.lowlevel

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import AsyncFile

ReadExactly = Callable[[int], Awaitable[bytes]]
"""Reads exactly ``n`` bytes, or raises ``EOFError`` where the input ends first."""
Take = Callable[[bytes], Awaitable[object]]
"""What is done with each chunk read."""

CHUNK = 1 << 20
"""The most bytes read, hashed or sent in one step."""


async def each_chunk(read_exactly: ReadExactly, size: int, take: Take | None = None) -> None:
    """Read ``size`` bytes, a chunk of at most ``CHUNK`` at a time, handing each to ``take``
    (or dropping it). Returns to the event loop before every chunk.

    Cancellation: stops before the next chunk.
    """
    while size:
        await anyio.lowlevel.checkpoint()
        chunk = await read_exactly(min(CHUNK, size))
        size -= len(chunk)
        if take is not None:
            await take(chunk)


def file_reader(file: AsyncFile[bytes]) -> ReadExactly:
    """``read_exactly`` over an open file: ``EOFError`` where the file ends first."""

    async def read_exactly(size: int) -> bytes:
        data = await file.read(size)
        if len(data) < size:
            raise EOFError
        return data

    return read_exactly
