"""Reading a user's file: a regular file, bounded, opened without blocking."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import anyio
import pytest

from ephemeral_registry._files import FileProblem, read_regular, read_regular_async

from .leftovers import no_thread_left


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert read_regular(tmp_path / "f", limit=3) == b"abc"


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="no such file") as caught:
        read_regular(tmp_path / "none", limit=10)
    assert caught.value.missing


def test_a_file_over_the_limit_is_refused_not_cut(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abcd")
    with pytest.raises(FileProblem, match="over the 3 read"):
        read_regular(tmp_path / "f", limit=3)


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path: Path) -> None:
    """The open does not wait for a writer: the descriptor is checked, then refused."""
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(FileProblem, match="a FIFO") as caught:
        read_regular(tmp_path / "fifo", limit=10)
    assert time.monotonic() - started < 1
    assert not caught.value.missing


def test_a_device_is_refused_not_read(tmp_path: Path) -> None:
    """/dev/zero would never end; behind a link it is refused all the same."""
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(FileProblem, match="a character device"):
        read_regular(tmp_path / "zero", limit=10)


def test_a_directory_and_a_socket_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="a directory"):
        read_regular(tmp_path, limit=10)
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "sock"))
        with pytest.raises(FileProblem, match=r"not a regular file \(it is a socket\)"):
            read_regular(tmp_path / "sock", limit=10)


_OPENS: list[tuple[str, int]] | None = None


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if _OPENS is not None and event == "open" and isinstance(args[2], int):
        _OPENS.append((str(args[0]), args[2]))


sys.addaudithook(_record_opens)


@pytest.mark.skipif(not hasattr(os, "O_PATH"), reason="O_PATH is Linux's")
def test_a_device_is_looked_at_never_opened(tmp_path: Path) -> None:
    """A device's open may act (a tape rewinds): only a descriptor that opens nothing
    (O_PATH) ever names it; a regular file is opened through such a descriptor."""
    global _OPENS
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "file").write_bytes(b"x")
    _OPENS = []
    try:
        with pytest.raises(FileProblem, match="a character device"):
            read_regular(tmp_path / "zero", limit=10)
        assert read_regular(tmp_path / "file", limit=10) == b"x"
        opens = list(_OPENS)
    finally:
        _OPENS = None
    by_path = [(path, flags) for path, flags in opens if path.startswith(str(tmp_path))]
    assert [path for path, _ in by_path] == [str(tmp_path / "zero"), str(tmp_path / "file")]
    assert all(flags & os.O_PATH for _, flags in by_path)


def test_a_nul_in_the_path_is_a_problem_not_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="NUL"):
        read_regular(tmp_path / "a\0b", limit=10)


def test_the_async_read_keeps_no_thread_and_honours_a_deadline(tmp_path: Path) -> None:
    """A FIFO fails at once, under a deadline, and no worker thread is left behind."""
    os.mkfifo(tmp_path / "fifo")

    async def main() -> None:
        with anyio.fail_after(2), pytest.raises(FileProblem, match="a FIFO"):
            await read_regular_async(tmp_path / "fifo", limit=10)

    with no_thread_left():
        anyio.run(main)
