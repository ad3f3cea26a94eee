"""What a push tells its caller, whichever pusher makes it: lines, progress, its end.

One ``Report`` per push. Each line goes to ``on_log`` and to the
``ephemeral_registry`` logger as it comes, and the last ``OUTPUT_LINES`` are
kept for the ``PushError`` the push may end in; progress goes to
``on_progress``. Both callbacks may be plain functions or coroutine functions.
"""

from __future__ import annotations

import collections
import inspect
import logging
from collections.abc import Callable
from typing import Any, Literal

from .._options import Pusher
from .._reference import Reference
from .._types import LogLine, OnLog, OnProgress, PushResult

logger = logging.getLogger("ephemeral_registry")

OUTPUT_LINES = 30
"""How many of a push's last lines a PushError carries."""
PROGRESS_STEP = 1 << 20
"""Progress is reported at most every this many bytes (and at the end)."""


async def call(callback: Callable[..., Any], *args: object) -> None:
    """Call a plain or async callback; await it if it is async."""
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


Phase = Literal["check", "export", "push"]
"""Reading the source to check it, exporting the image from the engine, or pushing."""


class Report:
    """What one push has told so far, and tells next."""

    def __init__(
        self,
        pusher: Pusher,
        reference: Reference,
        on_log: OnLog | None,
        on_progress: OnProgress | None,
    ) -> None:
        self.pusher: Pusher = pusher
        self.reference = reference
        self._on_log = on_log
        self._on_progress = on_progress
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=OUTPUT_LINES)
        self.done = 0
        """Bytes of the source handled so far."""
        self.total: int | None = None
        """The source's size, where known before the push: a file's, a layout's blobs'."""
        self._shown = -1
        self.phase: Phase = "push"
        """What the push is doing, for the error a time limit ends it in."""

    @property
    def wants_progress(self) -> bool:
        return self._on_progress is not None

    @property
    def output(self) -> tuple[LogLine, ...]:
        """The last lines, oldest first."""
        return tuple(self._lines)

    async def line(self, line: LogLine) -> None:
        """Tell one line of the push's output."""
        self._lines.append(line)
        logger.info("%s push %s %s: %s", self.pusher, self.reference, line.stream, line)
        if self._on_log is not None:
            await call(self._on_log, line)

    async def say(self, text: str) -> None:
        """Tell a line of this library's own (on stderr, as crane's progress is)."""
        await self.line(LogLine(text, "stderr"))

    async def advance(self, size: int, *, at_once: bool = False) -> None:
        """Count ``size`` more bytes handled; report them every ``PROGRESS_STEP``
        (or ``at_once``)."""
        self.done += size
        if at_once or self.done - self._shown >= PROGRESS_STEP:
            await self._progress()

    async def _progress(self) -> None:
        self._shown = self.done
        if self._on_progress is not None:
            await call(self._on_progress, self.done, self.total)

    async def finish(self, pull_endpoint: str, digest: str) -> PushResult:
        """Report the end (all of the source handled); return what was pushed."""
        if self.total is not None:
            self.done = self.total  # a tarball's end-of-archive padding is never read
        if self._shown != self.done:
            await self._progress()
        repository = self.reference.repository
        return PushResult(
            ref=f"{pull_endpoint}/{self.reference}",
            digest=digest,
            digest_ref=f"{pull_endpoint}/{repository}@{digest}",
        )
