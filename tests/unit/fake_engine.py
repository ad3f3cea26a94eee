"""An engine in memory (``_engine.base.Engine``), for unit tests of what the library does
with one: the bring-up, the teardown, the life cycle.

It keeps containers and networks in dictionaries, holds images by name,
records every call, and publishes a registry container's port for real: a
listener on this host's loopback answers ``GET /v2/`` as the registry would,
with the token from the container's environment, while that container runs.
It refuses what an engine refuses (an unknown image or network, a network
with containers attached, a name taken), and can be told to fail a call
(``fail``), to lose a create's answer (``lose_answer``) or to hang
(``hang``). ``before`` and ``after`` are called around every call, for tests
that cancel there.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ephemeral_registry._engine import (
    Attached,
    Attachment,
    ContainerSpec,
    Engine,
    ExportStream,
    Identity,
    Labelled,
    WriteArchive,
)
from ephemeral_registry._engine.base import OnFrame
from ephemeral_registry._errors import DockerEngineError, DockerUnavailableError
from ephemeral_registry._logs import Stream
from ephemeral_registry._platform import Platform
from ephemeral_registry._readiness import TOKEN_HEADER
from ephemeral_registry._types import ContainerState

P = ParamSpec("P")
T = TypeVar("T")

ENGINE_CALLS: tuple[str, ...] = tuple(
    sorted(
        name
        for name in Engine.__abstractmethods__
        if not isinstance(inspect.getattr_static(Engine, name), property)
    )
)
"""Every request the library may make of an engine, read from the interface."""

DOCKER_20_10 = Identity("docker", (1, 41), "Docker/20.10.24+dfsg1 (linux)")
DOCKER_29 = Identity("docker", (1, 52), "Docker/29.0.0 (linux)")
PODMAN = Identity("podman", (1, 41), "Libpod/4.3.1 (linux)")

LISTENING_LINE = 'level=info msg="listening on [::]:5000"'
"""What the fake registry logs once started."""


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    networks: set[str]
    """The names of the networks it is attached to."""
    copied: list[bytes] = field(default_factory=list)
    """The tars copied into it, in order."""
    running: bool = False
    exit_code: int | None = None
    logs: list[str] = field(default_factory=list)
    stopped: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class FakeNetwork:
    id: str
    name: str
    labels: Mapping[str, str]


def recorded(
    method: Callable[Concatenate[FakeEngine, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[FakeEngine, P], Coroutine[Any, Any, T]]:
    """Record the call by the method's name, with the fake's failures and hooks."""
    name = method.__name__

    @functools.wraps(method)
    async def call(engine: FakeEngine, /, *args: P.args, **kwargs: P.kwargs) -> T:
        await engine.enter(name)
        result = await method(engine, *args, **kwargs)
        engine.leave(name)
        return result

    return call


class _Process(Attached):
    """A process that reads its stdin to its end and writes nothing."""

    async def send(self, data: bytes) -> None:
        await anyio.lowlevel.checkpoint()

    def send_eof(self) -> bool:
        return True

    async def receive(self) -> tuple[Stream, bytes] | None:
        await anyio.lowlevel.checkpoint()
        return None


@dataclass
class _Export:
    data: bytes
    at: int = 0

    async def readexactly(self, n: int, /) -> bytes:
        await anyio.lowlevel.checkpoint()
        if self.at + n > len(self.data):
            raise EOFError
        self.at += n
        return self.data[self.at - n : self.at]


class FakeEngine(Engine):
    """An engine in memory; see the module docstring. Use it inside ``publishing()``."""

    def __init__(
        self,
        *,
        identity: Identity = DOCKER_20_10,
        images: Sequence[str] = (),
        rootless: bool = False,
        exits_at_once: Mapping[str, int] | None = None,
    ) -> None:
        self.identity = identity
        self.images = set(images)
        """The images it holds; a pull adds one."""
        self.saved: dict[str, bytes] = {}
        """What an image's export reads, by image."""
        self._rootless = rootless
        self.exits_at_once = dict(exits_at_once or {})
        """Images whose containers exit on start, with their exit codes."""
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, FakeNetwork] = {}
        self.calls: list[str] = []
        self.fail: dict[str, list[Exception]] = {}
        """Errors a call of that name raises, one per call, before doing anything."""
        self.lose_answer: set[str] = set()
        """Creates whose answer is lost: the resource is made, then the call raises
        ``DockerUnavailableError`` (once per name)."""
        self.hang: set[str] = set()
        """Calls that never answer."""
        self.before: Callable[[str], Awaitable[None]] | None = None
        self.after: Callable[[str], None] | None = None
        self.publishes = True
        """Whether its published port reaches a running registry (else nothing listens)."""
        self.published_port = 0
        """The port on this host's loopback where a registry container's port is published."""
        self._known: Identity | None = None

    # The fake's own

    @asynccontextmanager
    async def publishing(self) -> AsyncIterator[FakeEngine]:
        """The fake, with a port on this host's loopback where a running registry
        container answers, for the block."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.published_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            if self.publishes:
                tg.start_soon(listener.serve, self._answer)
            else:
                await listener.aclose()  # a port where nothing listens
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _answer(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            request = b""
            with anyio.move_on_after(5):
                while b"\r\n\r\n" not in request:
                    try:
                        request += await client.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return  # the client gave up
            token = next(
                (
                    c.spec.env[f"REGISTRY_HTTP_HEADERS_{TOKEN_HEADER}"].strip("[]")
                    for c in self.containers.values()
                    if c.running and c.spec.publish_port is not None
                ),
                None,
            )
            if token is None:
                return  # nothing listens behind the port: the connection is closed
            with contextlib.suppress(anyio.BrokenResourceError):
                await client.send(
                    f"HTTP/1.1 200 OK\r\n{TOKEN_HEADER}: {token}\r\nContent-Length: 2\r\n"
                    "Content-Type: application/json\r\nConnection: close\r\n\r\n{}".encode()
                )

    async def enter(self, name: str) -> None:
        self.calls.append(name)
        if self.before is not None:
            await self.before(name)
        await anyio.lowlevel.checkpoint()  # a request's await
        if name in self.hang:
            await anyio.sleep_forever()
        failures = self.fail.get(name)
        if failures:
            raise failures.pop(0)

    def leave(self, name: str) -> None:
        if self.after is not None:
            self.after(name)

    def _lost(self, name: str) -> None:
        if name in self.lose_answer:
            self.lose_answer.discard(name)
            raise DockerUnavailableError(self.address, f"the answer to {name} was lost")

    def _container(self, container_id: str, operation: str) -> FakeContainer:
        try:
            return self.containers[container_id]
        except KeyError:
            message = f"No such container: {container_id}"
            raise DockerEngineError(operation, 404, message) from None

    def _stop(self, container: FakeContainer, exit_code: int) -> None:
        container.running = False
        container.exit_code = exit_code
        container.stopped.set()

    @property
    def empty(self) -> bool:
        """Whether it holds no container and no network."""
        return not self.containers and not self.networks

    # The engine

    @property
    def address(self) -> str:
        return "unix:///fake/engine.sock"

    @property
    def known_identity(self) -> Identity | None:
        return self._known

    @recorded
    async def identify(self) -> Identity:
        self._known = self.identity
        return self.identity

    @recorded
    async def rootless(self) -> bool:
        return self._rootless

    @recorded
    async def shares_files(self) -> bool:
        return True

    @recorded
    async def platform(self) -> Platform:
        return Platform("linux", "amd64")

    @recorded
    async def tunnel(self, host: str, port: int) -> int:
        return port  # the published port is on this host's loopback already

    # Images

    @recorded
    async def has_image(self, image: str) -> bool:
        return image in self.images

    @recorded
    async def pull(self, image: str, *, timeout: float) -> None:
        self.images.add(image)

    def export(self, image: str, *, timeout: float) -> AbstractAsyncContextManager[ExportStream]:
        @asynccontextmanager
        async def exported() -> AsyncIterator[ExportStream]:
            await self.enter("export")
            if image not in self.images:
                raise DockerEngineError(f"export the image {image}", 404, "no such image")
            yield _Export(self.saved.get(image, b""))
            self.leave("export")

        return exported()

    # Networks

    @recorded
    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()
            if any(network.name == name for network in self.networks.values()):
                raise DockerEngineError(f"create the network {name}", 409, "already exists")
            network = FakeNetwork(secrets.token_hex(32), name, dict(labels))
            self.networks[network.id] = network
            self._lost("create_network")
        return network.id

    @recorded
    async def remove_network(self, network_id: str) -> None:
        network = self.networks.get(network_id)
        if network is None:
            return
        if any(network.name in c.networks for c in self.containers.values()):
            operation = f"remove the network {network_id[:12]}"
            raise DockerEngineError(
                operation, 403, "error while removing network: has active endpoints"
            )
        del self.networks[network_id]

    @recorded
    async def disconnect(self, network_id: str, container_id: str) -> None:
        network = self.networks.get(network_id)
        container = self.containers.get(container_id)
        if network is not None and container is not None:
            container.networks.discard(network.name)

    @recorded
    async def list_networks(self, label: str) -> list[Labelled]:
        return [
            Labelled("network", n.id, n.name, n.labels)
            for n in self.networks.values()
            if _labelled(n.labels, label)
        ]

    # Containers

    @recorded
    async def create_container(self, spec: ContainerSpec) -> str:
        operation = f"create the container {spec.name}"
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()
            if spec.image not in self.images:
                raise DockerEngineError(operation, 404, f"No such image: {spec.image}")
            if not any(network.name == spec.network for network in self.networks.values()):
                raise DockerEngineError(operation, 404, f"network {spec.network} not found")
            if any(c.spec.name == spec.name for c in self.containers.values()):
                raise DockerEngineError(operation, 409, f"name {spec.name} already in use")
            container = FakeContainer(secrets.token_hex(32), spec, {spec.network})
            self.containers[container.id] = container
            self._lost("create_container")
        return container.id

    @recorded
    async def copy_in(self, container_id: str, archive: bytes) -> None:
        self._container(container_id, "copy files").copied.append(archive)

    @recorded
    async def copy_archive_in(self, container_id: str, write: WriteArchive) -> None:
        container = self._container(container_id, "copy files")
        chunks: list[bytes] = []

        async def send(chunk: bytes) -> None:
            await anyio.lowlevel.checkpoint()
            chunks.append(chunk)

        await write(send)
        container.copied.append(b"".join(chunks))

    @recorded
    async def start(self, container_id: str) -> None:
        container = self._container(container_id, f"start the container {container_id[:12]}")
        container.running = True
        if container.spec.image in self.exits_at_once:
            container.logs.append('level=fatal msg="configuration error"')
            self._stop(container, self.exits_at_once[container.spec.image])
        elif container.spec.publish_port is not None:
            container.logs.append(LISTENING_LINE)

    def attached(
        self, container_id: str, command: Sequence[str]
    ) -> AbstractAsyncContextManager[Attached]:
        @asynccontextmanager
        async def attached() -> AsyncIterator[Attached]:
            await self.enter("attached")
            container = self._container(container_id, f"run {command[0]}")
            if not container.running:
                raise DockerEngineError(f"run {command[0]}", 409, "container is not running")
            yield _Process()
            self.leave("attached")

        return attached()

    @recorded
    async def attachment(self, container_id: str, container_port: int, network: str) -> Attachment:
        container = self._container(container_id, "inspect the container")
        if not container.running:
            return Attachment(host_port=None, address=None)
        published = container.spec.publish_port == container_port
        return Attachment(
            host_port=self.published_port if published else None,
            address="10.89.0.2",
            gateway="10.89.0.1",
        )

    @recorded
    async def state(self, container_id: str) -> ContainerState:
        container = self._container(container_id, "inspect the container")
        return ContainerState(
            status="running" if container.running else "exited",
            exit_code=None if container.running else (container.exit_code or 0),
            error="",
            oom_killed=False,
        )

    @recorded
    async def wait(self, container_id: str) -> int:
        container = self._container(container_id, "wait for the container")
        await container.stopped.wait()
        return container.exit_code if container.exit_code is not None else -1

    @recorded
    async def tail_logs(self, container_id: str, lines: int) -> tuple[str, ...]:
        return tuple(self._container(container_id, "read the output").logs[-lines:])

    @recorded
    async def wait_for_output(self, container_id: str, text: str) -> None:
        container = self._container(container_id, "read the output")
        if any(text in line for line in container.logs):
            return
        await anyio.sleep_forever()  # it writes nothing more

    @recorded
    async def read_output(
        self, container_id: str, on_frame: OnFrame, *, follow: bool, timeout: float | None
    ) -> None:
        container = self._container(container_id, "read the output")
        for line in container.logs:
            await on_frame("stdout", f"{line}\n".encode())
        if follow:
            await container.stopped.wait()

    @recorded
    async def remove_container(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            self._stop(container, 137 if container.running else (container.exit_code or 0))

    @recorded
    async def list_containers(self, label: str) -> list[Labelled]:
        return [
            Labelled("container", c.id, c.spec.name, c.spec.labels)
            for c in self.containers.values()
            if _labelled(c.spec.labels, label)
        ]


def _labelled(labels: Mapping[str, str], label: str) -> bool:
    key, equals, value = label.partition("=")
    return key in labels and (not equals or labels[key] == value)
