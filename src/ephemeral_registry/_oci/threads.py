"""Long work on a worker thread that still honours the cancellation of the task waiting on it."""

from __future__ import annotations

import anyio.from_thread


def check_cancelled() -> None:
    """Raise the cancellation of the task that runs this worker thread, if it was cancelled.

    A no-op outside anyio's worker threads (a unit test calling the work directly).
    """
    try:
        anyio.from_thread.check_cancelled()
    except RuntimeError:  # NoEventLoopError: not an anyio worker thread
        return
