"""The bring-up of one registry: image, network, container, port, readiness.

After one ``/_ping`` that says which engine this is::

    check/pull registry image ─┐   (with pull="never", the check comes first)
                               ├─> create container ─> start ─> read port ─> GET /v2/ poll
    create network ────────────┘              (until 200 or 401, or until the container exits)

With ``tunnel=True`` on an engine not reached over SSH, the relay image is
checked (or pulled) beside the registry's, and its container is created and
started beside the registry's (the two starts one after the other on
engines where joining a network at once is not safe); the tunnel's listener
(``_relay``) then serves here, and the poll goes through it.

Each resource is recorded in the session's ``created`` as soon as its create
answers, for the teardown. Once the registry answers, the watch on its
container (``_watch``) takes over.

Cancellation: each step is cancelled where it is; what was created is in
``created``, and the teardown removes it. A tunnel's listener and
connections are served by ``run``'s own task group, cancelled with it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import httpx

from . import _auth, _scratch, _tls
from ._addresses import EngineLocation, host_address, podman_host_ip, tunnel_host
from ._concurrency import Outcome, race, run_all
from ._engine import ContainerSpec, Engine, quirks
from ._engine.retry import retry
from ._errors import (
    DockerEngineError,
    DockerUnavailableError,
    EngineTimeoutError,
    EphemeralRegistryError,
    RegistryClosedError,
    RegistryNotReadyError,
    RegistryUnreachableError,
)
from ._images import ensure_image
from ._options import Options
from ._readiness import ATTEMPT_TIMEOUT, http_client, is_own_answer, poll_until_ready, token_env
from ._relay import ApiTunnel, relay_spec
from ._running import Running
from ._session import Session
from ._types import ContainerState, Endpoints

logger = logging.getLogger("ephemeral_registry")

REGISTRY_PORT = 5000
NOT_READY_LOG_LINES = 50
"""How many of the registry's last log lines a RegistryNotReadyError carries."""
UNREACHABLE_CHECK_AFTER = 0.5
"""Seconds without an answer before the bring-up asks whether the endpoint reaches the registry."""
LISTENING = "listening on"
"""What registry 2 and 3 log once they listen (``msg="listening on [::]:5000"``)."""
FORWARD_GRACE = 1.0
"""Seconds after the registry listens during which a refused endpoint may still be
forwarded (a port forwarder following the engine's events, as Docker Desktop's)."""
UNREACHABLE_PROBES = 2
PORT_ATTEMPTS = 3
"""How many times the registry container is made when its host port was taken meanwhile."""


class BringUp:
    """Brings one registry up in the background, and tells what became of it."""

    def __init__(
        self, engine: Engine, options: Options, session: Session, *, engine_address: EngineLocation
    ) -> None:
        self._engine = engine
        self._options = options
        self._session = session
        self._engine_address = engine_address
        self.running: Outcome[Running] = Outcome()
        """The registry, once it answers; or the bring-up's error."""
        self._serving: anyio.abc.TaskGroup | None = None
        """Where a tunnel through the engine's API is served, for as long as ``run`` runs."""
        self._tunnel: ApiTunnel | None = None

    async def run(self) -> None:
        """Bring the registry up; its outcome goes to ``running``, never raised here.

        With a tunnel through the engine's API, then serve it until cancelled
        (the block's exit); one whose bring-up failed is closed at once.
        """
        async with anyio.create_task_group() as self._serving:
            try:
                running = await self._start()
            except Exception as exc:  # handed to ready(); never an unhandled task error
                logger.debug("%s: bring-up failed: %s", self._session.name, exc)
                self.running.set_error(exc)
                self._serving.cancel_scope.cancel()
            else:
                logger.debug("%s: ready at %s", self._session.name, running.endpoints.pull_endpoint)
                self.running.set_value(running)

    def close(self) -> None:
        """The block has exited: what has not come yet never will."""
        if not self.running.done:
            self.running.set_error(RegistryClosedError())

    async def _start(self) -> Running:
        options = self._options
        image = options.registry_image
        identity = await self._engine.identify()
        host_ip = options.host_ip
        if identity.product == "podman" and ":" in host_ip:
            host_ip = podman_host_ip(host_ip, rootless=await self._engine.rootless())
        relayed = options.tunnel and not self._engine_address.is_ssh
        images = {"registry_image": image}
        if relayed:
            images["relay_image"] = options.relay_image
        if options.pull == "never":
            # A missing image is bad input here: fail before creating anything.
            # The check is one inspect request, a few milliseconds.
            for option, each in images.items():
                await ensure_image(self._engine, each, option, self._options)
            await self._create_network()
        else:
            ensure = (
                functools.partial(ensure_image, self._engine, image, option, self._options)
                for option, image in images.items()
            )
            await run_all(*ensure, self._create_network)
        pull_host = "127.0.0.1" if options.tunnel else host_address(host_ip, self._engine_address)
        authority = self._session.authority
        env: dict[str, str] = token_env(self._session.token)
        files: dict[str, bytes] = {}
        if self._session.credentials is not None:
            env |= _auth.registry_env()
            files |= _auth.htpasswd_files(self._session.credentials)
        ca_file = None
        if authority is not None:
            env |= _tls.registry_env()
            names = self._engine.names_of(self._session.name)
            hosts = _tls.server_hosts(pull_host, *names)
            files |= _tls.registry_files(*authority.issue(hosts))
            ca_file = await self._write_ca_file(authority)
        spec = ContainerSpec(
            name=self._session.name,
            image=image,
            labels=self._session.labels("registry"),
            network=self._session.name,
            publish_port=REGISTRY_PORT,
            host_ip=host_ip,
            env=env,
        )
        archive = _auth.archive(files, uid=0, gid=0) if files else None
        # Starting joins the network: one at a time where the engine needs it.
        joining = contextlib.nullcontext() if identity.joins_concurrently else anyio.Lock()
        container_id = relay_id = ""

        async def registry() -> None:
            nonlocal container_id
            container_id = await self._create_and_start(spec, archive, joining)

        async def relay() -> None:
            nonlocal relay_id
            relay_id = await self._start_relay(joining)

        await (run_all(registry, relay) if relayed else registry())
        attachment = await self._engine.attachment(container_id, REGISTRY_PORT, self._session.name)
        if attachment.host_port is None:
            raise await self._not_ready(container_id, None, url=None)
        port = attachment.host_port
        if relayed:  # to the registry's address on its network (no DNS), else its name
            target = attachment.address or self._session.name
            self._tunnel = ApiTunnel(self._engine, relay_id, target, REGISTRY_PORT)
            assert self._serving is not None
            port = await self._serving.start(self._tunnel.serve)
        elif options.tunnel:  # to where the port is published, as the engine's host reaches it
            port = await self._engine.tunnel(tunnel_host(host_ip), port)
        endpoints = Endpoints(
            network=self._session.name,
            push_endpoint=f"{self._engine.reached_as(self._session.name)}:{REGISTRY_PORT}",
            pull_endpoint=f"{pull_host}:{port}",
            credentials=self._session.credentials,
            ca_certificate=None if authority is None else authority.certificate,
            ca_file=ca_file,
        )
        await self._await_answer(container_id, endpoints)
        return Running(
            endpoints,
            container_id,
            attachment.address,
            gateway=attachment.gateway,
            token=self._session.token,
        )

    async def _write_ca_file(self, authority: _tls.Authority) -> Path:
        """Write the CA's certificate to a directory of its own here, for ``Endpoints.ca_file``."""

        def write() -> Path:
            # Named after its owner: a sweep removes it once this process is gone.
            directory = _scratch.make("ca", session=self._session.session_id)
            self._session.ca_directory = directory
            path = directory / _tls.CA_FILE_NAME
            path.write_bytes(authority.certificate)
            return path

        return await anyio.to_thread.run_sync(write)

    async def _create_and_start(
        self,
        spec: ContainerSpec,
        archive: bytes | None,
        joining: contextlib.AbstractAsyncContextManager[object],
    ) -> str:
        """Create the registry container, copy ``archive`` (a tar: the htpasswd file, the
        TLS certificate and key) into it, start it (holding ``joining``); return its id.

        Podman picks the free host port itself, and under load two containers
        sometimes get the same one: the second start fails with "address
        already in use". That container is then made again (a new port).
        """
        container_id = ""
        taken: DockerEngineError | None = None  # the start's refusal, only

        async def attempt() -> str:
            nonlocal container_id, taken
            try:
                container_id = self._session.created.registry = await self._engine.create_container(
                    spec
                )
            except (DockerUnavailableError, EngineTimeoutError):
                self._session.created.uncertain = (
                    True  # it may exist: the teardown also looks by label
                )
                raise
            if archive is not None:
                await self._engine.copy_in(container_id, archive)
            try:
                async with joining:
                    await self._engine.start(container_id)
            except DockerEngineError as exc:
                taken = exc
                raise
            return container_id

        async def remove_it(exc: Exception) -> None:
            await self._engine.remove_container(container_id)
            self._session.created.forget(container_id)

        return await retry(
            attempt,
            passing=lambda exc: exc is taken and quirks.PORT_TAKEN in taken.message,
            what=f"{self._session.name}: the engine's port was taken; making its container",
            attempts=PORT_ATTEMPTS,
            delay=0,
            before_again=remove_it,
        )

    async def _start_relay(self, joining: contextlib.AbstractAsyncContextManager[object]) -> str:
        """Create and start the relay container of a tunnel through the engine's API (holding
        ``joining`` to start it); return its id."""
        spec = relay_spec(self._session, self._options.relay_image)
        try:
            relay_id = self._session.created.relay = await self._engine.create_container(spec)
        except (DockerUnavailableError, EngineTimeoutError):
            self._session.created.uncertain = True  # it may exist: the teardown also looks by label
            raise
        async with joining:
            await self._engine.start(relay_id)
        return relay_id

    async def _create_network(self) -> None:
        labels = self._session.labels("network")
        try:
            self._session.created.network = await self._engine.create_network(
                self._session.name, labels
            )
        except (DockerUnavailableError, EngineTimeoutError):
            self._session.created.uncertain = True
            raise

    async def _await_answer(self, container_id: str, endpoints: Endpoints) -> None:
        """Poll the pull endpoint until the registry answers with its token; stop early if
        its container exits, or if it listens but the endpoint does not reach it."""
        url = f"{endpoints.scheme}://{endpoints.pull_endpoint}/v2/"
        timeout = self._options.timeouts.ready
        exit_code: int | None = None
        unreachable: str | None = None
        poll_result = None

        async def watch_exit() -> None:
            nonlocal exit_code
            exit_code = await self._engine.wait(container_id)

        async with http_client(self._session.authority) as client:

            async def poll() -> None:
                nonlocal poll_result
                poll_result = await poll_until_ready(
                    client, url, timeout=timeout, token=self._session.token
                )

            async def watch_reach() -> None:
                nonlocal unreachable
                unreachable = await self._unreachable(container_id, client, url)
                if unreachable is None:
                    await anyio.sleep_forever()  # reachable: the poll decides

            await race(poll, watch_exit, watch_reach)

        if poll_result is not None and poll_result.ready:
            return
        if unreachable is not None:
            state, logs = await self._diagnose(container_id)
            raise RegistryUnreachableError(
                endpoints.pull_endpoint,
                unreachable,
                image=self._options.registry_image,
                url=url,
                state=state,
                logs=logs,
            )
        reason = None  # the container exited: _not_ready says how
        if exit_code is None:
            assert poll_result is not None
            reason = (
                f"no answer within {timeout:g} s ({poll_result.attempts} attempts;"
                f" the last one: {poll_result.last_problem or 'no problem recorded'})"
            )
            if self._tunnel is not None and self._tunnel.last_problem:
                reason += f"; the tunnel's relay said: {self._tunnel.last_problem}"
        raise await self._not_ready(container_id, reason, url=url)

    async def _unreachable(
        self, container_id: str, client: httpx.AsyncClient, url: str
    ) -> str | None:
        """Why the pull endpoint does not reach the registry, once the registry says it
        listens; None if it does.

        A registry usually answers before ``UNREACHABLE_CHECK_AFTER``, and this
        then asks the engine nothing. Otherwise, once its log says it listens
        and ``FORWARD_GRACE`` has passed (a port forwarder, as Docker
        Desktop's, starts with the container), the endpoint is tried
        ``UNREACHABLE_PROBES`` times: a refused or unanswered connection each
        time, or an answer without the registry's token, means the engine's
        published port does not reach this host. A connection reset is not
        that: docker-proxy accepts before the registry listens.
        """
        await anyio.sleep(UNREACHABLE_CHECK_AFTER)
        await self._engine.wait_for_output(container_id, LISTENING)
        problem = None
        for _ in range(UNREACHABLE_PROBES):
            await anyio.sleep(FORWARD_GRACE / UNREACHABLE_PROBES)
            try:
                answer = await client.get(url, timeout=ATTEMPT_TIMEOUT)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except httpx.TransportError:
                return None  # something relays to it: the poll goes on
            else:
                if is_own_answer(answer, self._session.token):
                    return None
                problem = f"another server answered there, HTTP {answer.status_code}"
        return problem

    async def _not_ready(
        self, container_id: str, reason: str | None, *, url: str | None
    ) -> RegistryNotReadyError:
        """A RegistryNotReadyError with the container's state and last log lines.

        ``reason=None`` means the container stopped before it answered.
        """
        state, logs = await self._diagnose(container_id)
        if reason is None:
            code = "an unknown code" if state is None else f"code {state.exit_code}"
            reason = f"its container exited with {code} before it answered"
        return RegistryNotReadyError(
            reason, image=self._options.registry_image, url=url, state=state, logs=logs
        )

    async def _diagnose(self, container_id: str) -> tuple[ContainerState | None, tuple[str, ...]]:
        """The container's state and last log lines, as far as the engine can tell."""
        state: ContainerState | None = None
        logs: tuple[str, ...] = ()
        try:
            state = await self._engine.state(container_id)
            logs = await self._engine.tail_logs(container_id, NOT_READY_LOG_LINES)
        except EphemeralRegistryError as exc:
            logger.debug(
                "%s: could not read the container's state or logs: %s", self._session.name, exc
            )
        return state, logs
