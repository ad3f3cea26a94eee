"""Checks that a test left no thread of the library's running."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

SETTLE = 2.0
"""How long a worker thread may take to end once its event loop has closed."""


@contextlib.contextmanager
def no_thread_left() -> Iterator[None]:
    """Fail if a thread started in the block still runs ``SETTLE`` seconds after it.

    anyio's idle worker threads end when their event loop closes, not at once:
    they are given a moment.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + SETTLE
    while (left := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not left, f"threads still running: {sorted(thread.name for thread in left)}"
