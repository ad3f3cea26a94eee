"""A stand-in for the Docker engine's socket that a test can make fail.

It forwards a unix socket to the real engine's. ``stop()`` makes the engine
look stopped (existing connections are cut, new ones refused); ``hang()``
makes it look stuck (connections stay open, nothing more is answered);
``resume()`` brings it back.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel


def engine_socket() -> str:
    """The socket of the engine under test: DOCKER_HOST's, or the default one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), f"the engine proxy forwards to a unix socket, not {host}"
    return host.removeprefix("unix://")


class EngineProxy:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self._upstream = engine_socket()
        self.port = 0
        """With ``over_tcp()``: the port on 127.0.0.1 it listens on."""
        self._tg: anyio.abc.TaskGroup | None = None
        self._listening: anyio.CancelScope | None = None
        self._connections: set[anyio.abc.ByteStream] = set()
        self._running = anyio.Event()
        self._running.set()
        self._drained = anyio.Event()

    async def _pump(self, source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        with contextlib.suppress(
            anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
        ):
            while True:
                data = await source.receive()
                await self._running.wait()  # a hung engine answers nothing more
                await sink.send(data)

    async def _handle(self, client: anyio.abc.ByteStream) -> None:
        async with client:
            await self._running.wait()
            upstream = await anyio.connect_unix(self._upstream)
            async with upstream:
                self._connections |= {client, upstream}
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._pump, client, upstream)
                        await self._pump(upstream, client)
                        tg.cancel_scope.cancel()
                finally:
                    self._connections -= {client, upstream}
                    if not self._connections:
                        self._drained.set()

    async def _listen(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.CancelScope() as self._listening:
            self.path.unlink(missing_ok=True)
            listener = await anyio.create_unix_listener(self.path)
            task_status.started()
            async with listener:
                # Connections belong to the proxy's task group, not to this
                # scope: stop() ends them with _cut() instead of cancelling.
                await listener.serve(self._handle, task_group=self._tg)

    async def stop(self) -> None:
        """Like a stopped engine: the socket is gone, open connections are cut."""
        assert self._listening is not None
        self._listening.cancel()
        self._cut()
        self.path.unlink(missing_ok=True)
        await anyio.lowlevel.checkpoint()

    def _cut(self) -> None:
        """End every connection: its pumps see the end of their streams and return.

        Connections are never cancelled or closed under a reading task: on
        asyncio, anyio's unix streams then race their reader callback, which
        sets an already cancelled future (InvalidStateError).
        """
        for stream in list(self._connections):
            with contextlib.suppress(OSError):
                stream.extra(anyio.abc.SocketAttribute.raw_socket).shutdown(socket.SHUT_RDWR)

    async def _close(self) -> None:
        """Cut every connection, wait (briefly) for their handlers to end."""
        self._running.set()
        self._cut()
        if self._connections:
            self._drained = anyio.Event()
            with anyio.move_on_after(5):
                await self._drained.wait()

    def hang(self) -> None:
        """Like a stuck engine: connections are accepted, nothing is answered."""
        self._running = anyio.Event()

    async def resume(self) -> None:
        """The engine is back."""
        self._running.set()
        assert self._tg is not None
        if not self.path.exists():
            await self._tg.start(self._listen)

    async def _listen_tcp(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.url = f"tcp://127.0.0.1:{self.port}"
        task_status.started()
        async with listener:
            await listener.serve(self._handle, task_group=self._tg)

    @contextlib.asynccontextmanager
    async def _serving(
        self, listen: Callable[..., Coroutine[Any, Any, None]]
    ) -> AsyncIterator[EngineProxy]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(listen)
            yield self
            await self._close()
            tg.cancel_scope.cancel()

    @classmethod
    @contextlib.asynccontextmanager
    async def over_tcp(cls) -> AsyncIterator[EngineProxy]:
        """The engine reached over TCP on 127.0.0.1, as a remote engine is reached."""
        proxy = cls(Path("/nonexistent"))
        async with proxy._serving(proxy._listen_tcp):
            yield proxy

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, path: Path) -> AsyncIterator[EngineProxy]:
        proxy = cls(path)
        async with proxy._serving(proxy._listen):
            yield proxy
