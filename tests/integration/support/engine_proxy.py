"""A stand-in for the Docker engine's socket that a test can make fail.

It forwards a unix socket (or a TCP port on 127.0.0.1) to the real engine's
socket. ``stop()`` makes the engine look stopped (existing connections are
cut, new ones refused); ``hang()`` makes it look stuck (connections stay
open, nothing more is answered); ``resume()`` brings it back.

Built on asyncio's streams, whose transports end a connection cleanly under a
waiting reader: anyio's unix streams on asyncio wait on the raw socket, and a
reader cancelled as its socket turns readable then sets a cancelled future
(``InvalidStateError``), which made the tests that stop the engine flaky.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

_CHUNK = 1 << 16
_REQUEST_LINE = re.compile(rb"^(GET|HEAD|POST|PUT|DELETE) (\S+) HTTP/1\.1\r$", re.MULTILINE)


def engine_socket() -> str:
    """The socket of the engine under test: DOCKER_HOST's, or the default one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), f"the engine proxy forwards to a unix socket, not {host}"
    return host.removeprefix("unix://")


class EngineProxy:
    def __init__(self, path: Path, tls: ssl.SSLContext | None = None) -> None:
        self.path = path
        self._tls = tls
        self.url = f"unix://{path}"
        self._upstream = engine_socket()
        self.port = 0
        """With ``over_tcp()``: the port on 127.0.0.1 it listens on."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._running = asyncio.Event()
        self._running.set()
        self.requests: list[str] = []
        """``METHOD /path?query`` of each request the engine was sent, in order."""

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upward: bool = False
    ) -> None:
        with contextlib.suppress(OSError):  # the other end is gone
            while data := await source.read(_CHUNK):
                if upward:  # request lines, as far as a chunk holds them whole
                    self.requests += [
                        f"{m[1].decode()} {m[2].decode()}" for m in _REQUEST_LINE.finditer(data)
                    ]
                await self._running.wait()  # a hung engine answers nothing more
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        ends = [writer]
        self._writers.add(writer)
        try:
            await self._running.wait()
            up_reader, up_writer = await asyncio.open_unix_connection(self._upstream)
            ends.append(up_writer)
            self._writers.add(up_writer)
            # Both directions run until each has ended; a cut ends both.
            await asyncio.gather(
                self._pump(reader, up_writer, upward=True), self._pump(up_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for end in ends:
                self._writers.discard(end)
                end.transport.abort()
            self._handlers.discard(task)

    async def _listen(self) -> None:
        if self.port:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, ssl=self._tls
            )
        elif self.path.name:
            self.path.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(self._handle, self.path)
        else:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._tls)
            self.port = self._server.sockets[0].getsockname()[1]
            self.url = f"tcp://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Like a stopped engine: the socket is gone, open connections are cut."""
        assert self._server is not None
        self._server.close()
        self._cut()
        if self.url.startswith("unix://"):
            self.path.unlink(missing_ok=True)
        await asyncio.sleep(0)

    def _cut(self) -> None:
        """End every connection at once, as a stopped engine does."""
        for writer in list(self._writers):
            writer.transport.abort()

    def hang(self) -> None:
        """Like a stuck engine: connections are accepted, nothing is answered."""
        self._running = asyncio.Event()

    async def resume(self) -> None:
        """The engine is back."""
        self._running.set()
        assert self._server is not None
        if not self._server.is_serving():
            await self._listen()

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[EngineProxy]:
        await self._listen()
        try:
            yield self
        finally:
            assert self._server is not None
            self._server.close()
            self._cut()
            for handler in self._handlers:
                handler.cancel()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=5)

    @classmethod
    @contextlib.asynccontextmanager
    async def over_tcp(cls, tls: ssl.SSLContext | None = None) -> AsyncIterator[EngineProxy]:
        """The engine reached over TCP on 127.0.0.1, as a remote engine is reached.

        With ``tls``, the port speaks TLS with that server context, as
        ``dockerd --tlsverify`` does.
        """
        async with cls(Path(), tls)._serving() as proxy:
            yield proxy

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, path: Path) -> AsyncIterator[EngineProxy]:
        async with cls(path)._serving() as proxy:
            yield proxy
