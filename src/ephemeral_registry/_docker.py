"""The Docker engine, as the rest of the library sees it.

This is the only module that imports aiodocker. It hands out typed values
instead of aiodocker's dictionaries, bounds every request in time, and
translates aiodocker's errors into ours in one place (``_translate``).

Cancellation: a request that creates something (a network, a container) is
shielded from cancellation, so that its answer always arrives and the new
resource's id reaches the caller, which records it for removal. Without the
shield, a create cancelled in flight may still create the resource on the
daemon side after the client stopped listening, and nobody would know its id.
Every other request is cancelled like any other await.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiodocker
import aiohttp
import anyio
from aiodocker.networks import DockerNetwork
from aiodocker.stream import Stream as AttachedStream

from . import _host, _ssh
from ._concurrency import opened, run_all
from ._discovery import EngineAddress, discover
from ._errors import DockerEngineError, DockerUnavailableError, EngineTimeoutError, ExportError
from ._files import FileProblem
from ._logs import FrameError, Frames, Lines, Stream
from ._platform import Platform
from ._types import ContainerState

logger = logging.getLogger("ephemeral_registry")

# aiodocker reports a failed connection as this pseudo HTTP status.
_CANNOT_CONNECT = 900
_NOT_FOUND = 404
_CONFLICT = 409
_GONE_POLL = 0.05
_RETRIES = 5  # for an engine's passing refusals: see each use
_RETRY_DELAY = 0.5
_SERVER_ERROR = 500
_ERROR_DOCUMENT_LIMIT = 64 * 1024
"""The most of an error document read from an answer that began as a stream."""
_CONCURRENT_REMOVAL_API = (1, 52)  # Docker 29.0
_EXPORT_CHUNK = 1 << 20


WriteArchive = Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]
"""Writes a tar, a chunk at a time, to the ``send`` it is given (see ``_archive``)."""


class _LateRefusal(Exception):
    """The engine's error document came in an answer that had begun with 200."""


def error_document_message(document: bytes) -> str:
    """The ``message`` of an engine's error document (``{"cause": .., "message": ..}``),
    or the document itself, cut short, when it is not one."""
    try:
        message = json.loads(document).get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message:
        return message[:1000]
    return f"the answer is not framed: {document[:200]!r}"


class NotFound(Exception):
    """The engine answered 404 to a caller that handles it (``absent_ok``). Never escapes."""


@dataclass(frozen=True)
class ContainerSpec:
    """What to create: the parts of the engine's container config this library uses."""

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

    def to_api(self, product: Literal["docker", "podman"] = "docker") -> dict[str, Any]:
        """The create request's body, for an engine of ``product``."""
        config: dict[str, Any] = {
            "Image": self.image,
            "Labels": dict(self.labels),
            "Env": [f"{key}={value}" for key, value in self.env.items()],
            "HostConfig": {"NetworkMode": self.network},
        }
        if self.command:
            config["Cmd"] = list(self.command)
        if self.user is not None:
            config["User"] = self.user
        if self.hosts:
            config["HostConfig"]["ExtraHosts"] = [f"{n}:{a}" for n, a in self.hosts.items()]
        if self.read_only_mount is not None:
            source, target = self.read_only_mount
            config["HostConfig"]["Mounts"] = [
                {"Type": "bind", "Source": str(source), "Target": target, "ReadOnly": True}
            ]
        if self.publish_port is not None:
            port = f"{self.publish_port}/tcp"
            config["ExposedPorts"] = {port: {}}
            # An empty HostPort lets the engine pick a free port; read it back after start.
            config["HostConfig"]["PortBindings"] = {
                port: [{"HostIp": _host_ip(self.host_ip, product), "HostPort": ""}]
            }
        return config


def _host_ip(host_ip: str, product: Literal["docker", "podman"]) -> str:
    """The ``HostIp`` of a port binding on ``host_ip``.

    Podman differs for every interface: given ``0.0.0.0`` (or ``::``), its
    netavark writes the address into the forwarding rule as a destination
    (``-d 0.0.0.0/32``), which no packet has, and the port answers nowhere
    (containers/podman#17407). An empty ``HostIp`` means every interface there,
    as ``podman run -p PORT`` sends it.
    """
    if product == "podman" and ipaddress.ip_address(host_ip).is_unspecified:
        return ""
    return host_ip


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
class Identity:
    """Which engine answers, from the headers of its ``/_ping``."""

    product: Literal["docker", "podman"]
    api_version: tuple[int, int]
    """The newest Docker API version it speaks, e.g. ``(1, 41)``."""
    server: str
    """Its ``Server`` header, e.g. ``Docker/20.10.24 (linux)`` or ``Libpod/4.3.1 (linux)``."""

    @property
    def removes_concurrently(self) -> bool:
        """Whether a network may be removed while its containers are being removed.

        Only Docker 29 (API 1.52) and later. Docker 20.10 (API 1.41)
        deadlocked its network controller under load when a container's
        removal overlapped the disconnection of its endpoint and the removal
        of its network: every later request hung. Podman 4.3 left the
        container's port forwarding (netavark's DNAT rules) and the network's
        firewall chains behind, and a stale DNAT rule then hijacks that host
        port for whatever publishes on it next. Docker 29 held under load
        (tests/integration/engines/test_load.py) with nothing left behind.
        """
        return self.product == "docker" and self.api_version >= _CONCURRENT_REMOVAL_API

    @property
    def joins_concurrently(self) -> bool:
        """Whether containers may join one network at the same moment.

        Not Docker before 29: libnetwork keeps a count of each network's
        endpoints whose concurrent updates can lose one (its endpoint_cnt
        object, moby/moby#42119). The network then answers every removal
        with "has active endpoints", with none listed, until the engine
        restarts. Seen on Docker 20.10 under the load test; newer engines no
        longer keep the count, and Podman never did.
        """
        return self.product != "docker" or self.api_version >= _CONCURRENT_REMOVAL_API

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Identity:
        major, _, minor = headers.get("Api-Version", "1.24").partition(".")
        return cls(
            product="podman" if "Libpod-Api-Version" in headers else "docker",
            api_version=(int(major), int(minor or 0)),
            server=headers.get("Server", "?"),
        )


@dataclass(frozen=True)
class Labelled:
    """A container or network found by its labels."""

    kind: Literal["container", "network"]
    id: str
    name: str
    labels: Mapping[str, str]


class Attached:
    """A process run in a container (``Engine.attached``): its stdin, stdout and stderr over
    one connection to the engine, which the engine hands over to the process ("hijacked").

    Every error is ours: ``DockerUnavailableError`` when the connection breaks off.
    """

    def __init__(self, stream: AttachedStream, address: str, operation: str) -> None:
        self._stream = stream
        self._address = address
        self._operation = operation

    @contextmanager
    def _broken(self) -> Iterator[None]:
        try:
            yield
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            # RuntimeError: aiodocker's write to a stream it has closed.
            reason = f"the connection broke off while the engine ran {self._operation} ({exc!r})"
            raise DockerUnavailableError(self._address, reason) from exc

    async def send(self, data: bytes) -> None:
        """Write to the process's stdin; wait while the engine reads no more."""
        with self._broken():
            await self._stream.write_in(data)

    def send_eof(self) -> bool:
        """Close the process's stdin, and only that: the connection is half-closed, as the
        docker CLI does after ``docker exec -i``'s input. False where that cannot be (an
        engine over TLS), and nothing is done; the caller then closes the connection."""
        # aiodocker offers a full close only; its connection's transport half-closes.
        response = getattr(self._stream, "_resp", None)
        connection = getattr(response, "connection", None)
        transport = getattr(connection, "transport", None)
        if transport is None or not transport.can_write_eof():
            return False
        with self._broken():
            transport.write_eof()
        return True

    async def receive(self) -> tuple[Stream, bytes] | None:
        """What the process wrote next, to stdout or stderr; ``None`` once it has ended."""
        with self._broken():
            message = await self._stream.read_out()
        if message is None:
            return None
        return ("stderr" if message.stream == 2 else "stdout"), message.data


def _address(client: aiodocker.Docker) -> str:
    return str(getattr(client, "_connection_info", client.docker_host))


def engine_address(
    client: aiodocker.Docker | None, docker_host: str | None = None
) -> EngineAddress:
    """Where ``client`` talks to, or else ``docker_host``, or else where the docker CLI
    would (see ``_discovery``).

    Blocking but bounded (it reads the docker config): see ``find_engine_address``.
    """
    if client is not None:
        return EngineAddress(_address(client), "the docker= argument")
    return discover(docker_host=docker_host)


async def find_engine_address(
    client: aiodocker.Docker | None, docker_host: str | None = None
) -> EngineAddress:
    """``engine_address`` on a worker thread, off the event loop.

    Cancellation: the discovery is abandoned and the cancellation propagates;
    its thread ends soon, as every read it makes is bounded and never blocks
    (``_files``).
    """
    return await anyio.to_thread.run_sync(
        engine_address, client, docker_host, abandon_on_cancel=True
    )


@asynccontextmanager
async def open_engine(
    client: aiodocker.Docker | None,
    address: EngineAddress | None = None,
    *,
    request_timeout: float,
) -> AsyncIterator[Engine]:
    """The engine ``client`` talks to, or else a new client's for ``address`` (by
    default, the one discovered); an ``ssh://`` address is reached over one SSH
    connection (``_ssh``), which the engine's tunnels use too.

    A client (and an SSH connection) made here is closed on exit; one passed
    in is left open for its owner.

    Raises:
        DockerUnavailableError: no client can be made for the address, or the
            SSH connection failed (the reason says how).
    """
    if client is not None:
        yield Engine(client, request_timeout=request_timeout)
        return
    address = address or await find_engine_address(None)
    async with AsyncExitStack() as stack:
        url, ssh = address.client_url, None
        if address.is_ssh:
            ssh = await stack.enter_async_context(
                _ssh.connected(address.url, timeout=request_timeout)
            )
            url = f"unix://{ssh.socket}"
        try:
            ssl_context = None
            if address.tls is not None:  # reads the TLS files: bounded, off the event loop
                ssl_context = await anyio.to_thread.run_sync(
                    address.tls.context, abandon_on_cancel=True
                )
            own = aiodocker.Docker(url=url, ssl_context=ssl_context)
        except (OSError, ValueError, FileProblem) as exc:
            raise DockerUnavailableError(
                f"{address.url} ({address.found_by})", f"cannot make a client for it ({exc})"
            ) from exc
        try:
            yield Engine(own, request_timeout=request_timeout, address=address.url, ssh=ssh)
        finally:
            with anyio.CancelScope(shield=True):
                await own.close()


class Engine:
    """Typed, time-bounded requests to one Docker engine.

    The requests that can come first on a new client (``has_image``,
    ``list_containers``, ``list_networks``) identify the engine first, so that
    the client knows its API version before any versioned request: see
    ``identify()``.
    """

    def __init__(
        self,
        client: aiodocker.Docker,
        *,
        request_timeout: float,
        address: str | None = None,
        ssh: _ssh.Connection | None = None,
    ) -> None:
        self._client = client
        self._address = address
        self._ssh = ssh
        self._request_timeout = request_timeout
        self._platform: Platform | None = None
        self._identity: Identity | None = None
        self._identifying = anyio.Lock()
        self._rootless: bool | None = None
        self._asking_rootless = anyio.Lock()
        self._shares_files: bool | None = None
        self._asking_shares_files = anyio.Lock()

    @property
    def address(self) -> str:
        """Where this engine is reached, as its errors name it."""
        return self._address or _address(self._client)

    async def tunnel(self, host: str, port: int) -> int:
        """A port on this host's loopback forwarded to ``host:port`` as the engine's host
        reaches it, over the engine's SSH connection; closed with it.

        Raises:
            DockerUnavailableError: the engine is not reached over SSH, or the
                tunnel could not be opened.
        """
        if self._ssh is None:
            raise DockerUnavailableError(self.address, "a tunnel needs an ssh:// engine")
        return await self._ssh.tunnel(host, port)

    @contextmanager
    def _translate(
        self,
        operation: str,
        *,
        timeout: float | None = None,
        limit_name: str = "request_timeout",
        absent_ok: bool = False,
    ) -> Iterator[None]:
        """Bound the request in time and turn aiodocker's errors into ours: the one place.

        A 404 raises ``NotFound`` where the caller said it handles an absent
        resource (``absent_ok``), else ``DockerEngineError`` with status 404.
        """
        limit = self._request_timeout if timeout is None else timeout
        try:
            with anyio.fail_after(limit):
                yield
        except TimeoutError as exc:
            raise EngineTimeoutError(_address(self._client), operation, limit, limit_name) from exc
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            # Raised by aiohttp itself when the connection is cut mid-answer:
            # the engine stopped (or restarted) while answering.
            reason = f"the connection broke off during a request to {operation} ({exc!r})"
            raise DockerUnavailableError(_address(self._client), reason) from exc
        except aiodocker.DockerError as exc:
            if exc.status == _CANNOT_CONNECT:
                raise DockerUnavailableError(_address(self._client), exc.message) from exc
            if exc.status == _NOT_FOUND and absent_ok:
                raise NotFound(exc.message) from exc
            raise DockerEngineError(operation, exc.status, exc.message) from exc

    @asynccontextmanager
    async def _streamed(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An answer read as it comes, closed whatever happens to its reader.

        aiodocker's streaming helpers (logs, wait, export) leave the response
        open when reading stops early, by an error or a cancellation, so its
        connection leaks until the garbage collector finds it. This uses
        aiodocker's request helper, the one private method we call (also in
        ``identify``), and closes the response itself. No time limit: the caller sets one.
        """
        async with self._client._query(
            path, method, params=dict(params or {}), timeout=aiohttp.ClientTimeout()
        ) as response:
            try:
                yield response
            finally:
                response.close()

    def _network(self, network_id: str) -> DockerNetwork:
        return DockerNetwork(self._client, network_id)  # type: ignore[no-untyped-call]

    # The engine

    @property
    def known_identity(self) -> Identity | None:
        """What ``identify`` found, if it was asked; no request."""
        return self._identity

    async def identify(self) -> Identity:
        """Which engine this is, from one ``/_ping`` (a few milliseconds).

        A client that has not chosen an API version yet takes the engine's
        from the same answer: aiodocker would otherwise ask ``/version``
        before its first versioned request, which Podman takes about 0.25 s
        of CPU to answer, slowing the container start it overlaps. Tasks
        that ask at once share the one ping.
        """
        async with self._identifying:
            if self._identity is None:
                with self._translate("answer a ping"):
                    async with self._client._query("_ping", versioned_api=False) as response:
                        self._identity = Identity.from_headers(response.headers)
                if self._client.api_version == "auto":
                    major, minor = self._identity.api_version
                    self._client.api_version = f"v{major}.{minor}"
        return self._identity

    async def rootless(self) -> bool:
        """Whether the engine runs without root; found out once.

        A local engine's socket belongs to the user who runs it: root's engine
        has root's, a rootless one its user's. Elsewhere, the engine's ``info``
        says: Podman in a field of its own, ``Rootless``, Docker among its
        ``SecurityOptions`` (``name=rootless``), where Podman never does.
        Podman takes about 0.15 s of CPU to answer it, which the socket spares.
        """
        async with self._asking_rootless:
            address = self.address
            if self._rootless is None and address.startswith("unix://"):
                with suppress(OSError):
                    self._rootless = os.stat(address.removeprefix("unix://")).st_uid != 0
            if self._rootless is None:
                info = await self._info()
                options = info.get("SecurityOptions") or ()
                self._rootless = info.get("Rootless") is True or any(
                    "name=rootless" in str(option).split(",") for option in options
                )
        return self._rootless

    async def shares_files(self) -> bool:
        """Whether the engine certainly sees this host's files at their paths, so that
        a bind mount of one shows that file; found out once, creating nothing (see
        ``_host``). An engine that refuses its ``info`` does not.

        Raises:
            DockerUnavailableError, EngineTimeoutError: the engine did not answer.
        """

        async def info() -> dict[str, Any] | None:
            try:
                return await self._info()
            except DockerEngineError:  # a socket proxy that forbids it, say
                return None

        async with self._asking_shares_files:
            if self._shares_files is None:
                timeout = self._request_timeout
                self._shares_files = await _host.shares_files(self.address, info, timeout=timeout)
        return self._shares_files

    async def _info(self) -> dict[str, Any]:
        await self.identify()
        with self._translate("tell its configuration"):
            info = await self._client.system.info()
        return dict(info)

    async def platform(self) -> Platform:
        """The platform the engine runs images for by default (its own)."""
        if self._platform is None:
            with self._translate("tell its version"):
                version = await self._client.version()
            self._platform = Platform(str(version.get("Os", "linux")), str(version["Arch"]))
        return self._platform

    # Images

    async def has_image(self, image: str) -> bool:
        await self.identify()
        try:
            with self._translate(f"inspect the image {image}", absent_ok=True):
                await self._client.images.inspect(image)
        except NotFound:
            return False
        return True

    async def pull(self, image: str, *, timeout: float) -> None:
        """Pull ``image``; raises ``DockerEngineError`` when the engine refuses."""
        operation = f"pull {image}"
        params = {"fromImage": image}
        if "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
            params["tag"] = "latest"  # as the docker CLI: not every tag
        lines = Lines()
        with self._translate(operation, timeout=timeout, limit_name="pull_timeout"):
            # Read here, not by aiodocker's pull, which leaves the answer open
            # when a time limit stops it (see _streamed).
            async with self._streamed("POST", "images/create", params) as response:
                async for chunk in response.content.iter_any():
                    for line in lines.feed("stdout", chunk):
                        _raise_pull_error(operation, line)
                for line in lines.end():
                    _raise_pull_error(operation, line)

    # Networks

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """Create a bridge network and return its id. Shielded: see the module docstring.

        Podman looks for a free subnet among the addresses of the interfaces it
        sees; one that goes away while it looks (another network's, removed
        meanwhile) fails the request before anything is made ("route ip+net:
        no such network interface"): that is tried again, a few times.
        """
        for attempt in range(_RETRIES):
            try:
                return await self._create_network_once(name, labels)
            except DockerEngineError as exc:
                if "no such network interface" not in str(exc) or attempt == _RETRIES - 1:
                    raise
                logger.debug("creating the network %s again: %s", name, exc)
            await anyio.sleep(_RETRY_DELAY)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create_network_once(self, name: str, labels: Mapping[str, str]) -> str:
        with anyio.CancelScope(shield=True), self._translate(f"create the network {name}"):
            network = await self._client.networks.create(
                {"Name": name, "Driver": "bridge", "Labels": dict(labels), "CheckDuplicate": True}
            )
        return str(network.id)

    async def remove_network(self, network_id: str) -> None:
        """Remove a network; one that is already gone is not an error.

        Docker 20.10 sometimes still lists the endpoint of a container it has
        just removed ("has active endpoints"): the endpoints it names are then
        forced off the network and the removal is tried again, a few times.
        """
        for attempt in range(_RETRIES):
            if await self._remove_network_once(network_id, last=attempt == _RETRIES - 1):
                return
            await anyio.sleep(_RETRY_DELAY)

    async def _remove_network_once(self, network_id: str, *, last: bool) -> bool:
        """One removal request; False when endpoints were attached (now forced off)."""
        try:
            with self._translate(f"remove the network {network_id[:12]}", absent_ok=True):
                try:
                    await self._network(network_id).delete()
                except aiodocker.DockerError as exc:
                    if "active endpoints" not in exc.message or last:
                        raise
                    attached = await self._network(network_id).show()
                    endpoints = (attached.get("Containers") or {}).values()
                    logger.debug(
                        "retrying the removal of %s: %s; endpoints listed: %s",
                        network_id[:12],
                        exc,
                        [endpoint.get("Name") for endpoint in endpoints],
                    )
                    for endpoint in endpoints:
                        with suppress(DockerEngineError):  # gone meanwhile
                            await self.disconnect(network_id, str(endpoint["Name"]))
                    return False
        except NotFound:
            pass
        return True

    async def disconnect(self, network_id: str, container_id: str) -> None:
        """Force a container's endpoint off a network; either being gone already is fine."""
        try:
            operation = f"disconnect {container_id[:12]} from {network_id[:12]}"
            with self._translate(operation, absent_ok=True):
                await self._network(network_id).disconnect(
                    {"Container": container_id, "Force": True}
                )
        except NotFound:
            pass

    async def list_networks(self, label: str) -> list[Labelled]:
        """The networks carrying ``label`` (``key`` or ``key=value``)."""
        await self.identify()
        with self._translate("list networks"):
            found = await self._client.networks.list(filters={"label": [label]})
        return [
            Labelled("network", str(n["Id"]), str(n["Name"]), dict(n.get("Labels") or {}))
            for n in found
        ]

    # Containers

    async def create_container(self, spec: ContainerSpec) -> str:
        """Create a container and return its id. Shielded: see the module docstring."""
        config = spec.to_api((await self.identify()).product)
        with anyio.CancelScope(shield=True), self._translate(f"create the container {spec.name}"):
            container = await self._client.containers.create(config, name=spec.name)
        return str(container.id)

    async def copy_in(self, container_id: str, archive: bytes) -> None:
        """Unpack a tar held in memory at ``/`` in a container (see ``copy_archive_in``)."""

        async def write(send: Callable[[bytes], Awaitable[None]]) -> None:
            await send(archive)

        await self.copy_archive_in(container_id, write)

    async def copy_archive_in(self, container_id: str, write: WriteArchive) -> None:
        """Unpack at ``/`` in a container (created or running) the tar that
        ``write(send)`` writes, sent as it is written: memory stays constant
        whatever its size.

        One chunk is in flight at a time: ``send`` returns once the request has
        taken the chunk. The engine must take each chunk, and answer after the
        last one, within ``request_timeout``; the whole copy has no limit of its
        own (a push's ``push_timeout`` bounds it). An error of ``write`` (its
        file changed, say) is raised as itself and the request is abandoned,
        never ended as if the tar were whole. Podman unpacks through a helper
        process whose pipe sometimes breaks under load ("broken pipe");
        unpacking again is harmless, so that is retried, calling ``write`` again.

        aiodocker's ``put_archive`` takes the whole tar as bytes, so the body
        is sent here through its request helper (see ``_streamed``).

        Raises:
            DockerEngineError: the engine refused (status 404: the container is gone).
            DockerUnavailableError: the connection broke off.
            EngineTimeoutError: the engine took no chunk for ``request_timeout``.
            What ``write`` raises.

        Cancellation: the request is abandoned (its connection closed) and the
        cancellation propagates. What the engine unpacked stays in the
        container, which its owner removes.
        """
        for attempt in range(_RETRIES):
            try:
                await self._copy_archive_once(container_id, write)
            except DockerEngineError as exc:
                if "broken pipe" not in str(exc) or attempt == _RETRIES - 1:
                    raise
                logger.debug("copying into %s again: %s", container_id[:12], exc)
            else:
                return
            await anyio.sleep(_RETRY_DELAY)

    async def _copy_archive_once(self, container_id: str, write: WriteArchive) -> None:
        limit = self._request_timeout
        # Unbuffered: a chunk is handed over only when the request's writer takes it.
        send, receive = anyio.create_memory_object_stream[bytes]()
        with anyio.move_on_after(limit) as stalled:

            async def produce() -> None:
                async def take(chunk: bytes) -> None:
                    await send.send(chunk)
                    stalled.deadline = anyio.current_time() + limit

                await write(take)
                send.close()  # the end of the body: only once the whole tar was written

            async def request() -> None:
                async with self._client._query(
                    f"containers/{container_id}/archive",
                    "PUT",
                    params={"path": "/"},
                    data=receive,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=aiohttp.ClientTimeout(),
                ) as response:
                    await response.read()

            with self._translate(
                f"copy files into the container {container_id[:12]}", timeout=math.inf
            ):
                try:
                    await run_all(produce, request)
                finally:
                    send.close()
                    receive.close()
        if stalled.cancelled_caught:
            operation = f"take the next part of a copy into the container {container_id[:12]}"
            raise EngineTimeoutError(_address(self._client), operation, limit, "request_timeout")

    async def start(self, container_id: str) -> None:
        with self._translate(f"start the container {container_id[:12]}"):
            await self._client.containers.container(container_id).start()

    @asynccontextmanager
    async def attached(self, container_id: str, command: Sequence[str]) -> AsyncIterator[Attached]:
        """Run ``command`` in a running container, its stdin, stdout and stderr attached;
        the connection is closed on exit (the process then reads the end of its stdin).

        Two requests, each bounded by ``request_timeout``: the exec's create and its
        start, whose answer becomes the process's stdio (see ``Attached``).

        Raises:
            DockerEngineError: the engine refused (the container is gone or stopped).
            DockerUnavailableError, EngineTimeoutError: as for any request.

        Cancellation: the connection is closed, and the cancellation propagates.
        """
        operation = f"{command[0]} in the container {container_id[:12]}"
        with self._translate(f"run {operation}"):
            execution = await self._client.containers.container(container_id).exec(
                list(command), stdin=True, stdout=True, stderr=True, tty=False
            )
        stream = execution.start(detach=False)
        try:
            with self._translate(f"start {operation}"):
                await stream.__aenter__()
            yield Attached(stream, self.address, operation)
        finally:
            await stream.close()  # never waits: it closes the connection there and then

    async def _inspect(self, container_id: str) -> dict[str, Any]:
        with self._translate(f"inspect the container {container_id[:12]}"):
            info: dict[str, Any] = await self._client.containers.container(container_id).show()
        return info

    async def attachment(self, container_id: str, container_port: int, network: str) -> Attachment:
        """Where a started container can be reached: its published port and its address.

        A container that exited at once has neither.
        """
        info = await self._inspect(container_id)
        settings = info["NetworkSettings"]
        bindings = (settings.get("Ports") or {}).get(f"{container_port}/tcp") or []
        ports = [int(binding["HostPort"]) for binding in bindings if binding.get("HostPort")]
        attached = (settings.get("Networks") or {}).get(network) or {}
        address, gateway = attached.get("IPAddress"), attached.get("Gateway")
        return Attachment(
            host_port=ports[0] if ports else None,
            address=str(address) if address else None,
            gateway=str(gateway) if gateway else None,
        )

    async def state(self, container_id: str) -> ContainerState:
        state = (await self._inspect(container_id))["State"]
        running = state.get("Running", False)
        return ContainerState(
            status=str(state.get("Status", "unknown")),
            exit_code=None if running else int(state.get("ExitCode", 0)),
            error=str(state.get("Error", "")),
            oom_killed=bool(state.get("OOMKilled", False)),
        )

    async def wait(self, container_id: str) -> int:
        """Wait, with no time limit of its own, until the container stops; return its exit code.

        The caller bounds this wait (it races the readiness poll).
        """
        with self._translate(f"wait for the container {container_id[:12]}", timeout=float("inf")):
            async with self._streamed("POST", f"containers/{container_id}/wait") as response:
                result = await response.json()
        return int(result.get("StatusCode", -1))

    async def tail_logs(self, container_id: str, lines: int) -> tuple[str, ...]:
        """The last ``lines`` lines the container wrote, stdout and stderr in the order written."""
        splitter = Lines()
        text: list[str] = []

        async def on_frame(stream: Stream, payload: bytes) -> None:
            text.extend(splitter.feed(stream, payload))

        await self.read_output(container_id, on_frame, follow=False, timeout=None)
        text.extend(splitter.end())
        return tuple(text[-lines:])

    async def wait_for_output(self, container_id: str, text: str) -> None:
        """Wait, with no time limit of its own, until the container writes a line that
        holds ``text``; for ever if it stops without one (the caller bounds this)."""
        splitter = Lines()
        with anyio.CancelScope() as scope:

            async def on_frame(stream: Stream, payload: bytes) -> None:
                if any(text in line for line in splitter.feed(stream, payload)):
                    scope.cancel()

            await self.read_output(container_id, on_frame, follow=True, timeout=math.inf)
            await anyio.sleep_forever()  # its output ended without the line

    async def read_output(
        self,
        container_id: str,
        on_frame: Callable[[Stream, bytes], Awaitable[None]],
        *,
        follow: bool,
        timeout: float | None,
    ) -> None:
        """Call ``on_frame`` with each write to stdout or stderr, in the order written.

        One request carries both streams (see ``_logs``). With ``follow``, it
        reads until the container stops; ``timeout=float("inf")`` leaves the
        bound to the caller.

        Podman 4 answers 200 and only then looks the container up; when that
        fails (it does under load), its error document is the body, before
        any frame. Nothing has reached ``on_frame`` then, so the read is tried
        again, a few times.

        Raises:
            DockerEngineError: the engine refused, or its answer is not framed.
        """
        operation = f"read the output of {container_id[:12]}"
        for attempt in range(_RETRIES):
            try:
                await self._read_output_once(container_id, on_frame, follow, timeout, operation)
            except _LateRefusal as exc:
                if attempt == _RETRIES - 1:
                    raise DockerEngineError(operation, _SERVER_ERROR, str(exc)) from exc
                logger.debug("reading the output of %s again: %s", container_id[:12], exc)
            else:
                return
            await anyio.sleep(_RETRY_DELAY)

    async def _read_output_once(
        self,
        container_id: str,
        on_frame: Callable[[Stream, bytes], Awaitable[None]],
        follow: bool,
        timeout: float | None,
        operation: str,
    ) -> None:
        params = {"follow": follow, "stdout": True, "stderr": True}
        frames = Frames()
        with self._translate(operation, timeout=timeout):
            async with self._streamed("GET", f"containers/{container_id}/logs", params) as response:
                start = bytearray()  # the answer's first bytes, kept until a frame came
                framed = False
                try:
                    async for chunk in response.content.iter_any():
                        if not framed:
                            start += chunk[: _ERROR_DOCUMENT_LIMIT - len(start)]
                        for stream, payload in frames.feed(chunk):
                            framed = True
                            await on_frame(stream, payload)
                    frames.end()
                except FrameError as exc:
                    if not framed and start.startswith(b"{"):
                        while len(start) < _ERROR_DOCUMENT_LIMIT and (
                            more := await response.content.read(_ERROR_DOCUMENT_LIMIT - len(start))
                        ):
                            start += more  # the rest of the document, to its end
                        raise _LateRefusal(error_document_message(bytes(start))) from exc
                    problem = f"the answer is not framed: {exc}"
                    raise DockerEngineError(operation, 0, problem) from exc

    @asynccontextmanager
    async def export(self, image: str, *, timeout: float) -> AsyncIterator[aiohttp.StreamReader]:
        """``docker save IMAGE`` as a stream. Its ``readexactly`` raises EOFError
        (``asyncio.IncompleteReadError``) when the stream ends first.

        ``timeout`` bounds the whole block.
        """
        operation = f"export the image {image}"
        with self._translate(operation, timeout=timeout, limit_name="push_timeout"):
            async with self._streamed("GET", f"images/{image}/get") as response:
                try:
                    yield response.content
                except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
                    raise ExportError(image, f"the stream broke off ({exc!r})") from exc

    async def save_image(
        self,
        image: str,
        destination: Path,
        *,
        timeout: float,
        on_bytes: Callable[[int], Awaitable[None]] | None = None,
    ) -> int:
        """Write ``docker save IMAGE`` to ``destination``, a chunk at a time; return its size.

        Memory stays constant whatever the image's size. ``on_bytes`` is told
        the size of each chunk once it is written.
        """
        size = 0
        async with (
            self.export(image, timeout=timeout) as content,
            opened(destination, "wb") as file,
        ):
            async for chunk in content.iter_chunked(_EXPORT_CHUNK):
                await file.write(chunk)
                size += len(chunk)
                if on_bytes is not None:
                    await on_bytes(len(chunk))
        return size

    async def remove_container(self, container_id: str) -> None:
        """Kill and remove a container and its anonymous volumes; return once it is gone.

        One already gone is fine; one whose removal another request started
        (a retry after the engine came back, say) is waited for. Podman under
        load sometimes answers that it could not stop the container in time
        (its processes were still dying): that is retried a few times.
        """
        for attempt in range(_RETRIES):
            if await self._remove_once(container_id, last=attempt == _RETRIES - 1):
                return
            await anyio.sleep(_RETRY_DELAY)

    async def _remove_once(self, container_id: str, *, last: bool) -> bool:
        """One removal request; False when the engine could not stop the container yet."""
        try:
            with self._translate(f"remove the container {container_id[:12]}", absent_ok=True):
                try:
                    await self._client.containers.container(container_id).delete(force=True, v=True)
                except aiodocker.DockerError as exc:
                    if exc.status == _CONFLICT and "already in progress" in exc.message:
                        await self._wait_until_gone(container_id)
                    elif "could not be stopped" in exc.message and not last:
                        logger.debug("retrying the removal of %s: %s", container_id[:12], exc)
                        return False
                    else:
                        raise
        except NotFound:
            pass
        return True

    async def _wait_until_gone(self, container_id: str) -> None:
        container = self._client.containers.container(container_id)
        while True:
            await container.show()  # raises 404 once it is gone
            await anyio.sleep(_GONE_POLL)

    async def list_containers(self, label: str) -> list[Labelled]:
        """All containers, running or not, carrying ``label`` (``key`` or ``key=value``)."""
        await self.identify()
        with self._translate("list containers"):
            found = await self._client.containers.list(all=True, filters={"label": [label]})
        return [
            Labelled(
                "container",
                str(c["Id"]),
                str((c["Names"] or ["?"])[0]).lstrip("/"),
                dict(c["Labels"] or {}),
            )
            for c in found
        ]


def _raise_pull_error(operation: str, line: str) -> None:
    """Raise the error a line of a pull's progress stream reports, if any.

    The engine answers a pull with 200 and then a JSON object per line; a
    failure is a line with ``error`` (and ``errorDetail``), as in
    ``{"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}``.
    A line that is not a JSON object means the answer is not what a pull returns.
    """
    if not line.strip():
        return
    try:
        progress = json.loads(line)
    except ValueError:
        progress = None
    if not isinstance(progress, dict):
        problem = f"the answer is not a progress stream: {line[:200]!r}"
        raise DockerEngineError(operation, 0, problem)
    if "error" not in progress and "errorDetail" not in progress:
        return
    detail = progress.get("errorDetail")
    message = detail.get("message") if isinstance(detail, dict) else None
    message = message or progress.get("error") or "an error without a message"
    raise DockerEngineError(operation, 0, str(message)[:2000])
