"""A container's output, as the engine streams it: frames in, lines out, in order.

Without a TTY, the engine multiplexes stdout and stderr on one answer: each
write arrives as a frame, an 8-byte header (the stream: 1 for stdout, 2 for
stderr; three zero bytes; the payload's length, big-endian) and then the
payload. Reading both streams on one request keeps their relative order,
which two requests lose.

Everything here is pure: no I/O, no awaiting. ``_engine.docker`` reads the bytes,
the crane pusher decides when to stop.
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
    """The bytes do not follow the engine's framing. Internal: ``_engine.docker`` translates it."""


@dataclass
class Frames:
    """Splits a byte stream, fed in arbitrary pieces, into ``(stream, payload)`` pieces.

    A frame's payload is handed on as it arrives, in as many pieces as it
    came in: a header that claims 4 GiB holds nothing back (lines are put
    together by ``Lines``, which bounds them). Only a header cut in two waits.
    """

    _header: bytearray = field(default_factory=bytearray)
    _stream: Stream = "stdout"
    _left: int = 0
    """Payload bytes of the current frame still to come."""

    def feed(self, data: bytes) -> Iterator[tuple[Stream, bytes]]:
        """The payload pieces that ``data`` holds, in order."""
        view = memoryview(data)
        while view:
            if self._left:
                piece, view = view[: self._left], view[self._left :]
                self._left -= len(piece)
                yield self._stream, bytes(piece)
                continue
            needed = HEADER_SIZE - len(self._header)
            self._header += view[:needed]
            view = view[needed:]
            if len(self._header) < HEADER_SIZE:
                return
            kind = self._header[0]
            if kind not in _STREAMS or any(self._header[1:4]):
                raise FrameError(f"a frame header {bytes(self._header)!r}")
            self._stream = _STREAMS[kind]
            self._left = int.from_bytes(self._header[4:HEADER_SIZE], "big")
            self._header.clear()

    def end(self) -> None:
        """Say the stream ended; a frame cut short is an error."""
        if self._header or self._left:
            raise FrameError(
                f"the stream ended inside a frame ({self._left} payload bytes missing)"
            )


MAX_LINE = 1 << 16
"""The longest line kept whole: a longer one is cut into lines of this many bytes."""


@dataclass
class Lines:
    """Turns payloads into lines, each stream keeping its own unfinished line.

    It counts the bytes it has taken from each stream, so that a second read
    of the whole output (see ``replay``) can continue where the first one
    stopped without repeating a line. Time is linear in the bytes fed (only
    the new bytes are searched for a newline), and an unfinished line is at
    most ``MAX_LINE`` bytes: a longer one is handed on in parts.
    """

    received: dict[Stream, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    _pending: dict[Stream, bytearray] = field(
        default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()}
    )
    _replayed: dict[Stream, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})

    def feed(self, stream: Stream, payload: bytes) -> list[LogLine]:
        """The lines ``payload`` completes."""
        self.received[stream] += len(payload)
        pending = self._pending[stream]
        lines: list[LogLine] = []
        start = 0
        while True:
            newline = payload.find(b"\n", start, start + MAX_LINE - len(pending) + 1)
            if newline >= 0:
                pending += payload[start:newline]
                start = newline + 1
            elif len(payload) - start >= MAX_LINE - len(pending):
                taken = MAX_LINE - len(pending)
                pending += payload[start : start + taken]
                start += taken
            else:
                pending += payload[start:]
                return lines
            lines.append(LogLine(pending.decode(errors="replace"), stream))
            pending.clear()

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
        self._pending = {"stdout": bytearray(), "stderr": bytearray()}
        return ends
