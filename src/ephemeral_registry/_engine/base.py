"""What the library asks of a container engine: one interface, typed values.

``Engine`` is every request the library makes; ``docker`` implements it
over the Docker API (Docker and Podman), and the unit tests' fake engine
implements it in memory. The rest of the library holds an ``Engine`` and
sees no engine's own types.

Designed for a second kind of engine as well, Kubernetes, where:

- a registry's container is a Pod's: ``create_container`` makes it from a
  ``ContainerSpec``, ``start`` runs it, ``attachment`` tells where it is
  reached, and an id is whatever the engine names it by;
- a network may not exist (a namespace, or the cluster's one network):
  ``create_network`` then returns the id of what stands for it, which the
  teardown hands back to ``remove_network``; containers find each other by
  the names in ``ContainerSpec.hosts`` either way.

Errors: every method raises only the library's errors,
``DockerUnavailableError`` (the engine cannot be reached, or the connection
broke off), ``EngineTimeoutError`` (a request took longer than its limit)
and ``DockerEngineError`` (the engine refused), unless its docstring says
otherwise; a resource that is already gone is not an error where removing
it is asked.

Cancellation, the same for every method unless its docstring says
otherwise: the request is abandoned and the cancellation propagates. A
request that creates something (``create_network``, ``create_container``)
is never abandoned: its answer is awaited, shielded, so that the new
resource's id reaches the caller, which records it for removal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from .._logs import Stream
from .._platform import Platform
from .._types import ContainerState
from .quirks import Identity

WriteArchive = Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]
"""Writes a tar, a chunk at a time, to the ``send`` it is given (see ``_archive``)."""

OnFrame = Callable[[Stream, bytes], Awaitable[None]]
"""Told each write of a container's process to stdout or stderr."""


@dataclass(frozen=True)
class ContainerSpec:
    """What to create: the parts of a container this library uses."""

    name: str
    image: str
    labels: Mapping[str, str]
    network: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    publish_port: int | None = None
    """A container port to publish on a free host port chosen by the engine."""
    host_ip: str = "127.0.0.1"
    read_only_mount: tuple[Path, str] | None = None
    """A host path bind-mounted read-only at a path in the container."""
    user: str | None = None
    """``uid:gid`` to run as, instead of the image's user."""
    hosts: Mapping[str, str] = field(default_factory=dict)
    """Names to resolve in ``/etc/hosts``, to their addresses."""


@dataclass(frozen=True)
class Attachment:
    """Where a running container can be reached."""

    host_port: int | None
    """The host port the engine chose for a published container port."""
    address: str | None
    """The container's IP address on its network."""
    gateway: str | None = None
    """Its network's gateway, the engine host's own address on that network."""


@dataclass(frozen=True)
class Labelled:
    """A container or network found by its labels."""

    kind: Literal["container", "network"]
    id: str
    name: str
    labels: Mapping[str, str]


class Attached(ABC):
    """A process run in a container (``Engine.attached``), its stdin, stdout and stderr
    attached. Every error is ours: ``DockerUnavailableError`` when the connection
    breaks off."""

    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Write to the process's stdin; wait while it reads no more."""

    @abstractmethod
    def send_eof(self) -> bool:
        """Close the process's stdin, and only that; False where that cannot be, and
        nothing is done (the caller then closes the whole connection)."""

    @abstractmethod
    async def receive(self) -> tuple[Stream, bytes] | None:
        """What the process wrote next, to stdout or stderr; ``None`` once it has ended."""


class ExportStream(Protocol):
    """An image's export as it is read (``Engine.export``)."""

    async def readexactly(self, n: int, /) -> bytes:
        """The next ``n`` bytes; ``EOFError`` (``asyncio.IncompleteReadError``) when the
        stream ends first."""
        ...


class Engine(ABC):
    """Typed, time-bounded requests to one container engine (see the module docstring
    for the errors and the cancellation every method shares)."""

    # The engine

    @property
    @abstractmethod
    def address(self) -> str:
        """Where this engine is reached, as its errors name it."""

    @property
    @abstractmethod
    def known_identity(self) -> Identity | None:
        """What ``identify`` found, if it was asked; no request."""

    @property
    def pulls_itself(self) -> bool:
        """Whether the engine pulls a container's image by itself as it starts it (a
        cluster's node does), so that no image is checked or pulled beforehand: a
        missing one then ends ``wait``. No request."""
        return False

    def reached_as(self, name: str) -> str:
        """The name by which the containers of a network reach its container ``name``
        (for a cluster: its Service's). No request."""
        return name

    def names_of(self, name: str) -> tuple[str, ...]:
        """Every name by which the containers of a network may reach its container
        ``name`` (a TLS certificate's names). No request."""
        return (name,)

    @abstractmethod
    async def identify(self) -> Identity:
        """Which engine this is (see ``quirks``); asked once, shared by tasks that ask at once."""

    @abstractmethod
    async def rootless(self) -> bool:
        """Whether the engine runs without root; found out once."""

    @abstractmethod
    async def shares_files(self) -> bool:
        """Whether the engine certainly sees this host's files at their paths, so that
        a bind mount of one shows that file; found out once, creating nothing."""

    @abstractmethod
    async def platform(self) -> Platform:
        """The platform the engine runs images for by default (its own)."""

    @abstractmethod
    async def tunnel(self, host: str, port: int) -> int:
        """A port on this host's loopback forwarded to ``host:port`` as the engine's host
        reaches it, over the engine's own connection (SSH); closed with the engine.

        Raises:
            DockerUnavailableError: the engine's connection cannot forward, or the
                tunnel could not be opened.
        """

    # Images

    @abstractmethod
    async def has_image(self, image: str) -> bool:
        """Whether the engine holds ``image``."""

    @abstractmethod
    async def pull(self, image: str, *, timeout: float) -> None:
        """Pull ``image`` within ``timeout`` (``pull_timeout``); ``DockerEngineError``
        when the engine refuses."""

    @abstractmethod
    def export(self, image: str, *, timeout: float) -> AbstractAsyncContextManager[ExportStream]:
        """``docker save IMAGE`` as a stream, for the block; ``timeout`` bounds the block.

        Raises:
            ExportError: the stream broke off while the block read it.
        """

    # Networks

    @abstractmethod
    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """Create a network and return its id.

        Cancellation: shielded; the id is returned, and the cancellation
        arrives at the caller's next checkpoint.
        """

    @abstractmethod
    async def remove_network(self, network_id: str) -> None:
        """Remove a network; one already gone is fine."""

    @abstractmethod
    async def disconnect(self, network_id: str, container_id: str) -> None:
        """Force a container off a network; either being gone already is fine."""

    @abstractmethod
    async def list_networks(self, label: str) -> list[Labelled]:
        """The networks carrying ``label`` (``key`` or ``key=value``)."""

    # Containers

    @abstractmethod
    async def create_container(self, spec: ContainerSpec) -> str:
        """Create a container and return its id.

        Cancellation: shielded; the id is returned, and the cancellation
        arrives at the caller's next checkpoint.
        """

    @abstractmethod
    async def copy_in(self, container_id: str, archive: bytes) -> None:
        """Unpack a tar held in memory at ``/`` in a container."""

    @abstractmethod
    async def copy_archive_in(self, container_id: str, write: WriteArchive) -> None:
        """Unpack at ``/`` in a container (created or running) the tar that
        ``write(send)`` writes, sent as it is written. The engine must take each
        chunk within ``request_timeout``; the whole copy has no limit of its own.

        Raises:
            What ``write`` raises, as itself.

        Cancellation: what was unpacked stays in the container, which its owner removes.
        """

    @abstractmethod
    async def start(self, container_id: str) -> None:
        """Start a created container."""

    @abstractmethod
    def attached(
        self, container_id: str, command: Sequence[str]
    ) -> AbstractAsyncContextManager[Attached]:
        """Run ``command`` in a running container, its stdio attached, for the block;
        the connection is closed on exit (the process then reads the end of its stdin).

        Cancellation: the connection is closed.
        """

    @abstractmethod
    async def attachment(self, container_id: str, container_port: int, network: str) -> Attachment:
        """Where a started container can be reached: its published port and its address
        on ``network``. A container that exited at once has neither."""

    @abstractmethod
    async def state(self, container_id: str) -> ContainerState:
        """What the container is doing, or how it ended."""

    @abstractmethod
    async def wait(self, container_id: str) -> int:
        """Wait, with no time limit of its own, until the container stops; return its
        exit code. The caller bounds this wait."""

    @abstractmethod
    async def tail_logs(self, container_id: str, lines: int) -> tuple[str, ...]:
        """The last ``lines`` lines the container wrote, stdout and stderr in order."""

    @abstractmethod
    async def wait_for_output(self, container_id: str, text: str) -> None:
        """Wait, with no time limit of its own, until the container writes a line that
        holds ``text``; for ever if it stops without one (the caller bounds this)."""

    @abstractmethod
    async def read_output(
        self, container_id: str, on_frame: OnFrame, *, follow: bool, timeout: float | None
    ) -> None:
        """Call ``on_frame`` with each write to stdout or stderr, in the order written;
        with ``follow``, until the container stops. ``timeout=None`` is
        ``request_timeout``; ``float("inf")`` leaves the bound to the caller."""

    @abstractmethod
    async def remove_container(self, container_id: str) -> None:
        """Kill and remove a container and its anonymous volumes; return once it is gone.
        One already gone is fine."""

    @abstractmethod
    async def list_containers(self, label: str) -> list[Labelled]:
        """All containers, running or not, carrying ``label`` (``key`` or ``key=value``)."""
