"""What a reader promises whatever its input, beyond its result: it ends within a deadline,
and it opens no file outside what it was given.

Every ``open`` (``open()``, ``os.open``, ``Path.open``) raises an audit event
(PEP 578) with the path and the flags; one hook, added once for the process
(a hook cannot be removed), records them while ``recording`` is set, in the
calling context and in the threads that copy it (anyio's worker threads do).
Files that C code opens itself (OpenSSL's) are not seen.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ephemeral_registry import _scratch


@dataclass(frozen=True)
class Opened:
    """One open: the path as the reader gave it, made absolute, and its flags."""

    path: Path
    flags: int

    def where(self, *, follow_links: bool) -> Path:
        """What was opened: with ``follow_links``, the path once links are resolved (but
        its last part, when opened with ``O_NOFOLLOW``: a link there fails the open)."""
        if not follow_links:
            return self.path
        if self.flags & os.O_NOFOLLOW:
            return self.path.parent.resolve() / self.path.name
        return self.path.resolve()


_recording: contextvars.ContextVar[list[Opened] | None] = contextvars.ContextVar(
    "recording", default=None
)


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open":
        return
    opened = _recording.get()
    if opened is None:
        return
    path, flags = args[0], args[2]
    if isinstance(path, str | bytes | os.PathLike) and isinstance(flags, int):
        opened.append(Opened(Path(os.path.abspath(os.fsdecode(path))), flags))


sys.addaudithook(_hook)


@contextlib.contextmanager
def recording(directory: Path) -> Iterator[list[Opened]]:
    """Record every open in this context, with ``directory`` as the working directory (so
    that a path relative to a directory opened inside, ``dir_fd``, is taken as inside)."""
    opened: list[Opened] = []
    token = _recording.set(opened)
    try:
        with contextlib.chdir(directory):
            yield opened
    finally:
        _recording.reset(token)


_CODE = (".py", ".pyc", ".so")


def _is_code(path: Path) -> bool:
    """Whether ``path`` is a module being imported (a library imports lazily, mid-call): code
    of this process, not input."""
    roots = {sys.prefix, sys.base_prefix, *sys.path}
    return path.suffix in _CODE and any(path.is_relative_to(root) for root in roots if root)


def outside(opened: list[Opened], root: Path, *, follow_links: bool) -> list[str]:
    """The files of ``opened`` that are not in ``root`` described for an assertion; modules
    imported aside, and the library's own: this process's start time (``/proc/PID/stat``, for
    the owner of what it makes), its own private directories (``_scratch``: checked
    copies of what it read from ``root``) and ``/proc/self/fd/N`` (``_files`` opens a file
    for reading through the descriptor it looked at it by, whose open by path is seen)."""
    return [
        f"{entry.path} ({entry.where(follow_links=follow_links)})"
        for entry in opened
        if not entry.where(follow_links=follow_links).is_relative_to(root)
        and not _is_code(entry.path)
        and not _is_the_librarys_own(Path(entry.path))
    ]


def _is_the_librarys_own(path: Path) -> bool:
    if path == Path(f"/proc/{os.getpid()}/stat"):
        return True
    if path.parent == Path("/proc/self/fd"):  # a reopening of what was opened, and seen, by path
        return True
    for candidate in (path, *path.parents):
        scratch = _scratch.parse(candidate)
        if scratch is not None:
            return scratch.pid == os.getpid()
    return False


MEMORY_BUDGET = 96 << 20
"""The most memory a reading may take at its peak, where ``tracemalloc`` traces: the 64 MiB
of JSON documents a layout's check holds (docs/errors.md), and one 8 MiB document's passing
copies as it is parsed (its bytes, its text, what it parses to)."""

TRACING_SLOWDOWN = 4
"""How many times ``seconds`` a call may take where ``tracemalloc`` traces: tracing every
allocation makes Python code several times slower (the layout of one layer named 1,000
times through 30 links reads in 0.3 s, and in 2.6 s traced), and a deadline here is there
to catch a reading that never ends, not a slow machine."""


def within(seconds: float, call: Callable[[], None], unblock: Callable[[], None]) -> None:
    """Run ``call`` on a thread of its own, in this context; re-raise what it raises.

    Raises:
        AssertionError: it has not ended after ``seconds`` (``TRACING_SLOWDOWN`` times
            that where ``tracemalloc`` traces). ``unblock`` is then
            called, a few times, so that a thread stuck on a FIFO can end (a
            thread cannot be stopped from outside). Or, where ``tracemalloc``
            traces (the unit tests; fuzzing would be slower), its peak of
            memory passed ``MEMORY_BUDGET``.
    """
    if tracemalloc.is_tracing():
        seconds *= TRACING_SLOWDOWN
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    outcome: list[BaseException | None] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(call)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name="fuzz-within", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for _ in range(20):
            unblock()
            thread.join(0.1)
        raise AssertionError(f"the call did not end within {seconds} s")
    if outcome[0] is not None:
        raise outcome[0]
    peak = tracemalloc.get_traced_memory()[1] - start
    assert peak <= MEMORY_BUDGET, f"the call took {peak >> 20} MiB (at most {MEMORY_BUDGET >> 20})"
