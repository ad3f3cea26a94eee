"""Reading a file the user wrote (a docker config, a context, a TLS file, an SSH file).

Every such read goes through ``read_regular``: the file is opened without
blocking (``O_NONBLOCK``: a FIFO with no writer does not stall the open) and
without becoming the controlling terminal, the open descriptor is checked to
be a regular file (checked on the descriptor, so a file swapped for a FIFO
after a check is still refused), and at most ``limit`` bytes are read; a
bigger file is refused rather than cut. A read of a regular file of bounded
size ends, so a worker thread that does one always ends soon: a caller on
the event loop may abandon it on cancellation (``read_regular_async``).

This is what Go's ``os.Root`` and containerd's content store do with files
they did not write: open first, then look at what was opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio.to_thread

FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


class FileProblem(Exception):
    """A file that could not be read, or that is not one this library reads.

    ``missing`` is true when there is no such file (for callers to whom a
    missing file means a default); ``problem`` says what is wrong.
    """

    def __init__(self, path: Path, problem: str, *, missing: bool = False) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.missing = missing


def read_regular(path: Path, *, limit: int) -> bytes:
    """The content of the regular file at ``path``, at most ``limit`` bytes (blocking, bounded).

    Raises:
        FileProblem: no such file (``missing``), it cannot be opened, it is
            not a regular file (a FIFO, a device, a socket, a directory), or
            it holds more than ``limit`` bytes.
    """
    try:
        fd = _open(path)
    except FileNotFoundError:
        raise FileProblem(path, "no such file", missing=True) from None
    except OSError as exc:  # ENXIO for a socket, ELOOP, EACCES, ...
        raise FileProblem(path, f"cannot be opened ({exc.strerror})") from None
    except ValueError:  # a NUL in the path
        raise FileProblem(path, "is no path: it holds a NUL character") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(path, f"is not a regular file (it is {_kind(info.st_mode)})")
        if info.st_size > limit:
            raise FileProblem(path, f"has {info.st_size} bytes, over the {limit} read")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew after fstat
            raise FileProblem(path, f"has over {limit} bytes, the most read")
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    """Open ``path`` to read it, never opening a device: where the system can (Linux's
    ``O_PATH``), the file is looked at first, by a descriptor that opens nothing, and
    opened for reading through that descriptor only if it is a regular file (a device's
    open may act: rewind a tape, arm a watchdog)."""
    if not hasattr(os, "O_PATH"):
        return os.open(path, FLAGS)
    looked_at = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(looked_at).st_mode):
            return os.dup(looked_at)  # fstat'ed and refused by the caller
        return os.open(f"/proc/self/fd/{looked_at}", FLAGS)
    finally:
        os.close(looked_at)


async def read_regular_async(path: Path, *, limit: int) -> bytes:
    """``read_regular`` on a worker thread.

    Cancellation: the read is abandoned and the cancellation propagates; the
    thread still ends soon, as the read is bounded and never blocks.
    """
    return await anyio.to_thread.run_sync(
        lambda: read_regular(path, limit=limit), abandon_on_cancel=True
    )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
