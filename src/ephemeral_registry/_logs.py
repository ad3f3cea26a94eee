"""A container's output, as the engine streams it: frames in, lines out, in order.

Without a TTY, the engine multiplexes stdout and stderr on one answer: each
write arrives as a frame, an 8-byte header (the stream: 1 for stdout, 2 for
stderr; three zero bytes; the payload's length, big-endian) and then the
payload. Reading both streams on one request keeps their relative order,
which two requests lose.

Everything here is pure: no I/O, no awaiting. ``_docker`` reads the bytes,
``_push`` decides when to stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from ._types import LogLine

Stream = Literal["stdout", "stderr"]

HEADER_SIZE = 8
_STREAMS: dict[int, Stream] = {1: "stdout", 2: "stderr"}


class FrameError(ValueError):
    """The bytes do not follow the engine's framing. Internal: ``_docker`` translates it."""


@dataclass
class Frames:
    """Splits a byte stream, fed in arbitrary pieces, into ``(stream, payload)`` frames."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> Iterator[tuple[Stream, bytes]]:
        """The frames that ``data`` completes, in order; the rest waits for more."""
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            kind = self._buffer[0]
            if kind not in _STREAMS or any(self._buffer[1:4]):
                raise FrameError(f"a frame header {bytes(self._buffer[:HEADER_SIZE])!r}")
            end = HEADER_SIZE + int.from_bytes(self._buffer[4:HEADER_SIZE], "big")
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER_SIZE:end])
            del self._buffer[:end]
            yield _STREAMS[kind], payload

    def end(self) -> None:
        """Say the stream ended; a frame cut short is an error."""
        if self._buffer:
            raise FrameError(f"the stream ended inside a frame ({len(self._buffer)} bytes left)")


@dataclass
class Lines:
    """Turns payloads into lines, each stream keeping its own unfinished line.

    It counts the bytes it has taken from each stream, so that a second read
    of the whole output (see ``replay``) can continue where the first one
    stopped without repeating a line.
    """

    received: dict[Stream, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    _pending: dict[Stream, bytes] = field(default_factory=lambda: {"stdout": b"", "stderr": b""})
    _replayed: dict[Stream, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})

    def feed(self, stream: Stream, payload: bytes) -> list[LogLine]:
        """The lines ``payload`` completes."""
        self.received[stream] += len(payload)
        *complete, self._pending[stream] = (self._pending[stream] + payload).split(b"\n")
        return [LogLine(line.decode(errors="replace"), stream) for line in complete]

    def replay(self, stream: Stream, payload: bytes) -> list[LogLine]:
        """Like ``feed``, for a payload of a second read from the start: skip what was taken."""
        start = self._replayed[stream]
        self._replayed[stream] = start + len(payload)
        skip = max(0, self.received[stream] - start)
        return self.feed(stream, payload[skip:]) if skip < len(payload) else []

    def end(self) -> list[LogLine]:
        """The unfinished lines, stdout's first, once the output has ended."""
        ends = [
            LogLine(self._pending[stream].decode(errors="replace"), stream)
            for stream in ("stdout", "stderr")
            if self._pending[stream]
        ]
        self._pending = {"stdout": b"", "stderr": b""}
        return ends
