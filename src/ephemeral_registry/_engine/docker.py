"""The engine interface (``base``) over the Docker API: Docker and Podman.

With ``errors``, the only module that uses aiodocker (elsewhere it is only
the type of the public ``docker=`` argument). It hands out typed values
instead of aiodocker's dictionaries, bounds every request in time, and
translates aiodocker's errors into ours in one place (``errors``); the
engine's passing refusals are tried again by one helper (``retry``).

Cancellation: a request that creates something (a network, a container) is
shielded from cancellation, so that its answer always arrives and the new
resource's id reaches the caller, which records it for removal. Without the
shield, a create cancelled in flight may still create the resource on the
daemon side after the client stopped listening, and nobody would know its id.
Every other request is cancelled like any other await.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from typing import Any

import aiodocker
import aiohttp
import anyio
from aiodocker.networks import DockerNetwork
from aiodocker.stream import Stream as AttachedStream

from .. import _host, _ssh
from .._concurrency import run_all
from .._discovery import EngineAddress, discover
from .._errors import DockerEngineError, DockerUnavailableError, EngineTimeoutError, ExportError
from .._files import FileProblem
from .._logs import FrameError, Frames, Lines, Stream
from .._platform import Platform
from .._types import ContainerState
from . import quirks
from .base import (
    Attached,
    Attachment,
    ContainerSpec,
    Engine,
    Labelled,
    WriteArchive,
)
from .errors import BROKEN_CONNECTION, BROKEN_STREAM, NotFound, translated
from .quirks import Identity
from .retry import retry

logger = logging.getLogger("ephemeral_registry")

_CONFLICT = 409
_GONE_POLL = 0.05
_SERVER_ERROR = 500
_ERROR_DOCUMENT_LIMIT = 64 * 1024
"""The most of an error document read from an answer that began as a stream."""


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


class DockerAttached(Attached):
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
        except BROKEN_STREAM as exc:
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
) -> AsyncIterator[DockerEngine]:
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
        yield DockerEngine(client, request_timeout=request_timeout)
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
            yield DockerEngine(own, request_timeout=request_timeout, address=address.url, ssh=ssh)
        finally:
            with anyio.CancelScope(shield=True):
                await own.close()


class DockerEngine(Engine):
    """Typed, time-bounded requests to one engine over the Docker API (Docker, Podman).

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
        """A request bounded by ``timeout`` (by default ``request_timeout``), its errors
        ours (see ``errors``): a 404 is ``NotFound`` where the caller handles an absent
        resource (``absent_ok``), else ``DockerEngineError`` with status 404."""
        limit = self._request_timeout if timeout is None else timeout
        with translated(
            _address(self._client),
            operation,
            limit=limit,
            limit_name=limit_name,
            absent_ok=absent_ok,
        ):
            yield

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
        return await retry(
            functools.partial(self._create_network_once, name, labels),
            passing=lambda exc: _refused(exc, quirks.NETWORK_INTERFACE_GONE),
            what=f"creating the network {name}",
        )

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
        operation = f"remove the network {network_id[:12]}"

        async def attempt() -> None:
            with self._translate(operation, absent_ok=True):
                await self._network(network_id).delete()

        async def force_endpoints_off(exc: Exception) -> None:
            with self._translate(operation, absent_ok=True):
                attached = await self._network(network_id).show()
            endpoints = (attached.get("Containers") or {}).values()
            logger.debug(
                "endpoints listed on %s: %s",
                network_id[:12],
                [endpoint.get("Name") for endpoint in endpoints],
            )
            for endpoint in endpoints:
                with suppress(DockerEngineError):  # gone meanwhile
                    await self.disconnect(network_id, str(endpoint["Name"]))

        with suppress(NotFound):
            await retry(
                attempt,
                passing=lambda exc: _refused(exc, quirks.ENDPOINTS_LEFT),
                what=f"removing the network {network_id[:12]}",
                before_again=force_endpoints_off,
            )

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
        config = container_config(spec, await self.identify())
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
        await retry(
            functools.partial(self._copy_archive_once, container_id, write),
            passing=lambda exc: _refused(exc, quirks.UNPACKER_PIPE_BROKE),
            what=f"copying into {container_id[:12]}",
        )

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
            yield DockerAttached(stream, self.address, operation)
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
        try:
            await retry(
                functools.partial(
                    self._read_output_once, container_id, on_frame, follow, timeout, operation
                ),
                passing=lambda exc: isinstance(exc, _LateRefusal),
                what=f"reading the output of {container_id[:12]}",
            )
        except _LateRefusal as exc:
            raise DockerEngineError(operation, _SERVER_ERROR, str(exc)) from exc

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
                except BROKEN_CONNECTION as exc:
                    raise ExportError(image, f"the stream broke off ({exc!r})") from exc

    async def remove_container(self, container_id: str) -> None:
        """Kill and remove a container and its anonymous volumes; return once it is gone.

        One already gone is fine; one whose removal another request started
        (a retry after the engine came back, say) is waited for. Podman under
        load sometimes answers that it could not stop the container in time
        (its processes were still dying): that is retried a few times.
        """
        operation = f"remove the container {container_id[:12]}"

        async def attempt() -> None:
            with self._translate(operation, absent_ok=True):
                try:
                    await self._client.containers.container(container_id).delete(force=True, v=True)
                except aiodocker.DockerError as exc:
                    if exc.status != _CONFLICT or quirks.REMOVAL_UNDER_WAY not in exc.message:
                        raise
                    await self._wait_until_gone(container_id)

        with suppress(NotFound):
            await retry(
                attempt,
                passing=lambda exc: _refused(exc, quirks.NOT_STOPPED_YET),
                what=f"removing {container_id[:12]}",
            )

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


def container_config(spec: ContainerSpec, identity: Identity) -> dict[str, Any]:
    """The create request's body for ``spec``, on the engine ``identity`` names."""
    config: dict[str, Any] = {
        "Image": spec.image,
        "Labels": dict(spec.labels),
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "HostConfig": {"NetworkMode": spec.network},
    }
    if spec.command:
        config["Cmd"] = list(spec.command)
    if spec.user is not None:
        config["User"] = spec.user
    if spec.hosts:
        config["HostConfig"]["ExtraHosts"] = [f"{n}:{a}" for n, a in spec.hosts.items()]
    if spec.read_only_mount is not None:
        source, target = spec.read_only_mount
        config["HostConfig"]["Mounts"] = [
            {"Type": "bind", "Source": str(source), "Target": target, "ReadOnly": True}
        ]
    if spec.publish_port is not None:
        port = f"{spec.publish_port}/tcp"
        config["ExposedPorts"] = {port: {}}
        # An empty HostPort lets the engine pick a free port; read it back after start.
        config["HostConfig"]["PortBindings"] = {
            port: [{"HostIp": identity.every_interface(spec.host_ip), "HostPort": ""}]
        }
    return config


def _refused(exc: Exception, passing: str) -> bool:
    """Whether ``exc`` is the engine's refusal that says ``passing``."""
    return isinstance(exc, DockerEngineError) and passing in exc.message


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
