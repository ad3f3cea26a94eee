"""``ephemeral_registry()``: the life cycle of one registry, and its ``Registry`` handle.

Entering the block starts the bring-up in the background and hands back the
handle at once; ``await registry.ready()`` waits for it. Leaving the block, by
any path, removes everything the bring-up created.

The bring-up (after one ``/_ping`` that says which engine this is)::

    check/pull registry image ─┐   (with pull="never", the check comes first)
                               ├─> create container ─> start ─> read port ─> GET /v2/ poll
    create network ────────────┘              (until 200 or 401, or until the container exits)
    check/pull crane image (for pushes; its failure fails pushes, not the registry)

The teardown (shielded, bounded by ``cleanup_timeout``), on Docker 29 and Podman::

    remove the registry and crane containers (kill, with their volumes) ───┐
    disconnect them from the network ─> remove the network ────────────────┘
                                (the network retried once the containers are gone)

and on older Docker engines, where that overlap can deadlock the engine::

    remove the registry and crane containers ─> remove the network
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiodocker
import anyio
import anyio.lowlevel

from . import _auth, _labels, _platform, _reference, _source
from ._concurrency import Outcome, race, run_all
from ._discovery import EngineAddress
from ._docker import ContainerSpec, Engine, engine_address, open_client
from ._errors import (
    CleanupError,
    DockerEngineError,
    DockerUnavailableError,
    EngineTimeoutError,
    EphemeralRegistryError,
    ImageNotFoundError,
    ImagePullError,
    InvalidArgumentError,
    PushError,
    RegistryClosedError,
    RegistryNotReadyError,
)
from ._options import (
    LayerCompression,
    Options,
    PullPolicy,
    Pusher,
    check_layer_compression,
    check_pusher,
    host_address,
    podman_host_ip,
    resolve,
)
from ._pushers.base import BasePusher, FromEngine, FromFile, Job, Running
from ._pushers.crane import CranePusher
from ._pushers.native import NativePusher
from ._pushers.report import Report
from ._readiness import http_client, poll_until_ready
from ._resources import Created, remove
from ._sweep import live_sessions, sweep_in_background
from ._types import (
    ContainerState,
    Credentials,
    Endpoints,
    OnLog,
    OnProgress,
    PushResult,
)

logger = logging.getLogger("ephemeral_registry")

REGISTRY_PORT = 5000
LOG_LINES = 50
"""How many of the registry's last log lines a RegistryNotReadyError carries."""
REGISTRY_ERROR_LINES = 5
"""How many of the registry's own error lines a native push's PushError carries."""
PORT_ATTEMPTS = 3
"""How many times the registry container is made when its host port was taken meanwhile."""
PUSH_LINES = 30
"""How many of a push's last lines a PushError for a registry that exited carries."""


class Registry:
    """A handle on one ephemeral registry, from ``async with ephemeral_registry() as registry``.

    The registry is brought up in the background; ``await ready()`` waits for
    it. The handle is valid only inside its ``async with`` block.
    """

    def __init__(self, engine: Engine, options: Options, *, engine_address: EngineAddress) -> None:
        self._engine = engine
        self._options = options
        self._engine_address = engine_address
        self._owner = _labels.Owner.current()
        self.session_id = _labels.new_session_id()
        live_sessions.add(self.session_id)
        """A random id, in every resource name and in the ``ephemeral-registry.session`` label."""
        self.name = f"{_labels.PREFIX}-{self.session_id}"
        """The name of the registry container and of its network."""
        self._credentials = Credentials.generate() if options.auth else None
        self._running: Outcome[Running] = Outcome()
        self._crane_image: Outcome[str] = Outcome()
        self._failure_seen = False
        self._closed = False
        self._kept = False
        self._created = Created(self.name)
        """What exists now, recorded as soon as each create answers."""
        self._push_slots = anyio.Semaphore(options.max_concurrent_pushes)
        self._pushers: dict[Pusher, BasePusher] = {
            "crane": CranePusher(
                engine,
                self._running.get,
                self._crane_image.get,
                name=self.name,
                labels=_labels.labels(self.session_id, self._owner, "push"),
                created=self._created,
                cleanup_timeout=options.cleanup_timeout,
            ),
            "native": NativePusher(engine, self._running.get),
        }
        self._exited: Outcome[str] = Outcome()
        """Set, to what happened, once the registry's container has exited (killed, say)."""
        self._exit_watch_enabled = True
        """Whether ``_watch_for_exit`` watches (a test that numbers engine calls turns it off)."""

    @property
    def pusher(self) -> Pusher:
        """How this registry's pushes are made unless a call says otherwise."""
        return self._options.pusher

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ready" if self._running.done else "starting"
        return f"<Registry {self.name} {state}>"

    async def ready(self) -> Endpoints:
        """Wait until the registry answers ``GET /v2/``; return where to reach it.

        May be awaited any number of times, from any number of tasks; every
        call returns the same ``Endpoints`` or raises the same error.

        Raises:
            DockerUnavailableError: no Docker engine answered.
            EngineTimeoutError: the engine answered no request within
                ``request_timeout`` (or a pull ran past ``pull_timeout``).
            DockerEngineError: the engine refused a request (a 404 when the
                registry container was removed by someone else meanwhile).
            ImageNotFoundError: the registry image is missing and ``pull="never"``.
            ImagePullError: the registry image could not be pulled.
            RegistryNotReadyError: the registry did not answer within ``ready_timeout``,
                or its container exited first.
            RegistryClosedError: the ``async with`` block has exited.

        Cancellation: cancelling a call to ``ready()`` cancels only that wait,
        not the bring-up.
        """
        self._check_open()
        try:
            return (await self._running.get()).endpoints
        except Exception:
            self._failure_seen = True
            raise

    async def push(
        self,
        source: str | os.PathLike[str],
        ref: str,
        *,
        on_log: OnLog | None = None,
        on_progress: OnProgress | None = None,
        pusher: Pusher | None = None,
        layer_compression: LayerCompression | None = None,
    ) -> PushResult:
        """Push a ``docker save`` tarball or an OCI layout directory into the registry as ``ref``.

        Waits for ``ready()`` first. With crane (the default pusher), runs
        ``crane push --insecure`` in a one-shot container on the registry's
        network; with the native pusher, uploads from this process over HTTP.
        The push's output goes, line by line as it comes, to ``on_log`` (a
        plain or async callable taking a ``LogLine``, a ``str`` that knows its
        stream) and to the ``ephemeral_registry`` logger. At most
        ``max_concurrent_pushes`` run at once; the others wait their turn.

        Args:
            source: a tarball holding one image (``docker save``), or an OCI
                image layout directory. crane runs as the source's owner, so a
                file only its owner can read (mode 0600) works.
            ref: ``repo[:tag]`` inside the registry; the tag defaults to ``latest``.
            on_log: called with each line of crane's output (or, with the
                native pusher, a line per blob and the digest line).
            on_progress: a plain or async callable taking ``(done_bytes,
                total_bytes)``: the native pusher calls it every MiB of the
                source and at the end; crane, for an OCI layout, as each blob
                lands, and for a tarball once, at the end.
            pusher: ``"crane"`` or ``"native"``; by default the registry's.
            layer_compression: ``"gzip"`` or ``"none"`` (see ``ephemeral_registry()``);
                by default the registry's. An OCI layout is pushed as it is;
                crane gzips a tarball's layers itself, so it refuses ``"none"`` there.

        Raises:
            InvalidReferenceError, InvalidSourceError, InvalidArgumentError:
                before anything is created.
            InvalidSourceError: also once the source is read, with either
                pusher: a tarball that is not a usable ``docker save`` (cut
                short, several images, a corrupt layer, one that is not its
                config's), a layout whose descriptors name files outside it or
                of other sizes.
            PushError: crane exited non-zero, the registry refused the native
                pusher, the registry's container exited meanwhile, or the push
                (or the source's check) ran past ``push_timeout``; it carries
                the last lines.
            ImageNotFoundError, ImagePullError: the crane image is unavailable.
            RegistryClosedError: the block has exited.
            Any error of ``ready()``.

        Cancellation: the crane container is killed and removed (shielded,
        bounded by ``cleanup_timeout``), or the native upload under way is
        cancelled; then the cancellation propagates.
        """
        self._check_open()
        reference = _reference.parse(ref)
        checked = _source.check(source)
        return await self._push(
            FromFile(checked), reference, on_log, on_progress, pusher, layer_compression
        )

    async def _push(
        self,
        what: FromFile | FromEngine,
        reference: _reference.Reference,
        on_log: OnLog | None,
        on_progress: OnProgress | None,
        pusher: str | None,
        layer_compression: str | None,
    ) -> PushResult:
        """One push, whichever pusher: in a push slot, within ``push_timeout``, ended at
        once if the registry's container exits meanwhile."""
        name = self._options.pusher if pusher is None else check_pusher(pusher)
        job = Job(
            what,
            reference,
            (
                self._options.layer_compression
                if layer_compression is None
                else check_layer_compression(layer_compression)
            ),
            Report(name, reference, on_log, on_progress),
        )
        chosen = self._pushers[name]
        chosen.check(job)
        async with self._push_slots:
            self._check_open()
            try:
                with anyio.move_on_after(self._options.push_timeout):
                    return await self._while_the_registry_runs(job, chosen.push)
            except EphemeralRegistryError as exc:
                if exc is self._running.error:
                    self._failure_seen = True
                if self._closed:  # the teardown removed the registry under it
                    raise RegistryClosedError() from exc
                if isinstance(exc, PushError):
                    raise await self._with_registry_errors(exc) from exc
                raise
        raise self._timed_out(job)

    def _timed_out(self, job: Job) -> EphemeralRegistryError:
        """The error for a push that ran past ``push_timeout``: it says what was under way."""
        limit = self._options.push_timeout
        report = job.report
        if report.phase == "check":
            reason = f"reading the source to check it took longer than push_timeout={limit:g} s"
            return PushError(str(job.reference), reason, exit_code=None, output=())
        if report.phase == "export" and isinstance(job.what, FromEngine):
            operation = f"export the image {job.what.image}"
            return EngineTimeoutError(self._engine.address, operation, limit, "push_timeout")
        reason = f"the {report.pusher} push did not finish within {limit:g} s (push_timeout)"
        return PushError(str(job.reference), reason, exit_code=None, output=report.output)

    async def _with_registry_errors(self, failure: PushError) -> PushError:
        """The failure with the registry's own last error lines added (a full disk, say):
        a registry that fails an upload often just closes the connection."""
        lines: tuple[str, ...] = ()
        if self._created.registry is not None:
            with contextlib.suppress(EphemeralRegistryError):
                logged = await self._engine.tail_logs(self._created.registry, LOG_LINES)
                errors = [f"registry: {error}" for error in map(_server_error, logged) if error]
                lines = tuple(errors[-REGISTRY_ERROR_LINES:])
        if not lines:
            return failure
        output = failure.output + lines
        return PushError(failure.ref, failure.reason, exit_code=failure.exit_code, output=output)

    async def push_image(
        self,
        image: str,
        ref: str | None = None,
        *,
        on_log: OnLog | None = None,
        compress_layers: bool = False,
        platform: str | None = None,
        pusher: Pusher | None = None,
        layer_compression: LayerCompression | None = None,
        on_progress: OnProgress | None = None,
    ) -> PushResult:
        """Export ``image`` from the local engine (``docker save``) and push it as ``ref``.

        Exactly the image named is exported: a name without a tag means
        ``:latest``, as in Docker; an image id or ``name@digest`` works too
        (with ``ref=``, as an id has no name to push under). The export starts
        at once, overlapping the registry's bring-up, and is streamed to a
        temporary directory in constant memory, removed afterwards. The image
        is never pulled.

        By default the image is written as an OCI image layout and pushed as
        it is: layers the engine keeps uncompressed stay so (the registry is on
        this machine, so gzip would only cost CPU, and crane gzips each layer
        twice), and layers it keeps compressed (gzip or zstd, as a containerd
        image store may) keep their compression. The pushed image is the same
        image: same config, so the same image id where the engine names images
        by their config. With ``layer_compression="gzip"`` (the native
        pusher's default) the layers the engine keeps uncompressed are gzipped:
        the native pusher does it as they stream; for crane the ``docker save``
        tarball goes to crane, which gzips the layers, as ``push()`` does for
        a tarball.

        Args:
            image: a name, ``name@digest`` or id the local engine knows.
            ref: ``repo[:tag]``; by default the image's own name without a
                registry host (``docker.io/library/alpine:3`` -> ``library/alpine:3``).
            on_log, on_progress: as for ``push()``; the native pusher's total is
                ``None`` here, as the export's size is known only at its end.
            compress_layers: the old name of ``layer_compression="gzip"``
                (deprecated).
            platform: ``os/architecture[/variant]`` of the image to push, where
                the engine holds it for several (a containerd image store);
                by default the only one there is, or else the engine's own.
            pusher: ``"crane"`` or ``"native"``; by default the registry's. The
                native pusher streams the export into the registry in one
                pass: no container, no temporary files.
            layer_compression: ``"gzip"`` or ``"none"``, for layers the engine
                keeps uncompressed; by default the registry's. crane cannot choose
                a ``platform`` with ``"gzip"``.

        Raises:
            ImageNotFoundError: the engine does not hold ``image`` (or not for
                ``platform``); nothing is created.
            ExportError: the engine's ``docker save`` broke off or is not usable.
            EngineTimeoutError: the export took longer than ``push_timeout``.
            Everything ``push()`` raises.

        Cancellation: the export stops and its files are removed; a crane
        container already started is removed as in ``push()``.
        """
        self._check_open()
        compression = _compression(layer_compression, compress_layers)
        wanted = None if platform is None else _platform.parse(platform)
        image = _reference.local_image(image)
        reference = _reference.from_image_name(image) if ref is None else _reference.parse(ref)
        if not await self._engine.has_image(image):
            raise ImageNotFoundError(image)
        return await self._push(
            FromEngine(image, wanted), reference, on_log, on_progress, pusher, compression
        )

    async def _while_the_registry_runs(
        self, job: Job, push: Callable[[Job], Awaitable[PushResult]]
    ) -> PushResult:
        """Run ``push``, ended at once with a PushError if the registry's container exits
        meanwhile (instead of crane's retries, or a wait for ``push_timeout``)."""
        result: PushResult | None = None

        async def run() -> None:
            nonlocal result
            result = await push(job)

        async def stopped() -> None:
            await self._exited.get()

        try:
            await race(run, stopped)
        except PushError as exc:  # the exit may have been its cause (before it was seen): say so
            exited = await self._exit_now()
            if exited is None:
                raise
            raise PushError(
                exc.ref,
                f"{exited}: {exc.reason}",
                exit_code=exc.exit_code,
                output=exc.output,
            ) from exc
        if result is None:
            raise PushError(
                str(job.reference),
                f"{await self._exited.get()} during the push",
                exit_code=None,
                output=job.report.output,
            )
        return result

    async def _exit_now(self) -> str | None:
        """What happened to the registry's container, if it has exited (asked at once)."""
        if self._exited.done:
            return await self._exited.get()
        if self._created.registry is None:
            return None
        try:
            state = await self._engine.state(self._created.registry)
        except EphemeralRegistryError:
            return None
        if state.exit_code is None:
            return None
        how = " (out of memory)" if state.oom_killed else ""
        return f"the registry container {self.name} exited with code {state.exit_code}{how}"

    async def _watch_for_exit(self) -> None:
        """Once the registry is up, wait for its container to exit; tell the pushes."""
        try:
            await self._running.get()
        except Exception:
            return  # no registry to watch
        container_id = self._created.registry
        if container_id is None or not self._exit_watch_enabled:
            return
        try:
            await self._engine.wait(container_id)
        except EphemeralRegistryError as exc:  # removed meanwhile, say: nothing to tell
            logger.debug("%s: watching the registry container: %s", self.name, exc)
            return
        exited = await self._exit_now()
        if exited is not None:
            logger.warning("%s: %s", self.name, exited)
            self._exited.set_value(exited)

    def keep(self) -> None:
        """Leave this registry's containers and network in place when the block exits.

        For debugging a failure: the exit logs what it kept. They are
        leftovers of this process from then on: ``sweep()`` (or
        ``ephemeral-registry prune``) removes them once this process has ended.
        """
        self._kept = True

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryClosedError()

    def _raise_unseen_failure(self) -> None:
        """Raise the bring-up's error if the block ended without ever seeing it from ready()."""
        failure = self._running.error
        if (
            failure is not None
            and not self._failure_seen
            and not isinstance(failure, RegistryClosedError)
        ):
            raise failure

    # The bring-up, run in the background by ephemeral_registry().

    async def _bring_up(self) -> None:
        try:
            running = await self._start()
        except Exception as exc:  # handed to ready(); never an unhandled task error
            logger.debug("%s: bring-up failed: %s", self.name, exc)
            self._running.set_error(exc)
        else:
            logger.debug("%s: ready at %s", self.name, running.endpoints.pull_endpoint)
            self._running.set_value(running)

    async def _start(self) -> Running:
        options = self._options
        image = options.registry_image
        identity = await self._engine.identify()
        host_ip = options.host_ip
        if identity.product == "podman" and ":" in host_ip:
            host_ip = podman_host_ip(host_ip, rootless=await self._engine.rootless())
        if options.pull == "never":
            # A missing image is bad input here: fail before creating anything.
            # The check is one inspect request, a few milliseconds.
            await self._ensure_image(image)
            await self._create_network()
        else:
            await run_all(lambda: self._ensure_image(image), self._create_network)
        spec = ContainerSpec(
            name=self.name,
            image=image,
            labels=_labels.labels(self.session_id, self._owner, "registry"),
            network=self.name,
            publish_port=REGISTRY_PORT,
            host_ip=host_ip,
            env=_auth.registry_env() if self._credentials else {},
        )
        container_id = await self._create_and_start(spec)
        attachment = await self._engine.attachment(container_id, REGISTRY_PORT, self.name)
        if attachment.host_port is None:
            raise await self._not_ready(container_id, None, url=None)
        pull_endpoint = f"{host_address(host_ip, self._engine_address)}:{attachment.host_port}"
        await self._await_answer(container_id, f"http://{pull_endpoint}/v2/")
        endpoints = Endpoints(
            network=self.name,
            push_endpoint=f"{self.name}:{REGISTRY_PORT}",
            pull_endpoint=pull_endpoint,
            credentials=self._credentials,
        )
        return Running(endpoints, container_id, attachment.address)

    async def _create_and_start(self, spec: ContainerSpec) -> str:
        """Create and start the registry container; return its id.

        Podman picks the free host port itself, and under load two containers
        sometimes get the same one: the second start fails with "address
        already in use". That container is then made again (a new port).
        """
        for attempt in range(PORT_ATTEMPTS):
            try:
                container_id = self._created.registry = await self._engine.create_container(spec)
            except (DockerUnavailableError, EngineTimeoutError):
                self._created.uncertain = True  # it may exist: the teardown also looks by label
                raise
            if self._credentials is not None:
                htpasswd = _auth.htpasswd_archive(self._credentials)
                await self._engine.copy_in(container_id, htpasswd)
            try:
                await self._engine.start(container_id)
            except DockerEngineError as exc:
                if "address already in use" not in exc.message or attempt == PORT_ATTEMPTS - 1:
                    raise
                logger.debug("%s: the engine's port was taken, again: %s", self.name, exc)
                await self._engine.remove_container(container_id)
                self._created.forget(container_id)
            else:
                return container_id
        raise AssertionError("not reached")  # the last attempt returns or raises

    async def _create_network(self) -> None:
        labels = _labels.labels(self.session_id, self._owner, "network")
        try:
            self._created.network = await self._engine.create_network(self.name, labels)
        except (DockerUnavailableError, EngineTimeoutError):
            self._created.uncertain = True
            raise

    async def _ensure_image(self, image: str) -> None:
        """Make sure the engine holds ``image``, pulling it as the pull policy allows."""
        policy: PullPolicy = self._options.pull
        if policy != "always" and await self._engine.has_image(image):
            return
        if policy == "never":
            raise ImageNotFoundError(image, policy)
        logger.info("pulling %s", image)
        try:
            await self._engine.pull(image, timeout=self._options.pull_timeout)
        except DockerEngineError as exc:
            raise ImagePullError(image, str(exc)) from exc

    async def _sweep_after_bring_up(self) -> None:
        """Remove dead processes' leftovers, once the bring-up no longer needs the engine."""
        with contextlib.suppress(Exception):
            await self._running.get()
        await sweep_in_background(self._engine)

    async def _prepare_crane_image(self) -> None:
        """Check (or pull) the crane image early, so that the first push does not wait for it."""
        image = self._options.crane_image
        try:
            await self._ensure_image(image)
        except Exception as exc:  # fails pushes, not the registry
            logger.debug("%s: crane image %s not available: %s", self.name, image, exc)
            self._crane_image.set_error(exc)
        else:
            self._crane_image.set_value(image)

    async def _await_answer(self, container_id: str, url: str) -> None:
        """Poll ``url`` until the registry answers; stop early if its container exits."""
        timeout = self._options.ready_timeout
        exit_code: int | None = None
        poll_result = None

        async def watch_exit() -> None:
            nonlocal exit_code
            exit_code = await self._engine.wait(container_id)

        async with http_client() as client:

            async def poll() -> None:
                nonlocal poll_result
                poll_result = await poll_until_ready(client, url, timeout=timeout)

            await race(poll, watch_exit)

        if poll_result is not None and poll_result.ready:
            return
        reason = None  # the container exited: _not_ready says how
        if exit_code is None:
            assert poll_result is not None
            reason = (
                f"no answer within {timeout:g} s ({poll_result.attempts} attempts;"
                f" the last one: {poll_result.last_problem or 'no problem recorded'})"
            )
        raise await self._not_ready(container_id, reason, url=url)

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
            logs = await self._engine.tail_logs(container_id, LOG_LINES)
        except EphemeralRegistryError as exc:
            logger.debug("%s: could not read the container's state or logs: %s", self.name, exc)
        return state, logs

    # The teardown, run by ephemeral_registry() on the way out.

    async def _close(self) -> CleanupError | None:
        """Remove everything the bring-up created; return what went wrong, if anything.

        Runs shielded from cancellation and bounded by ``cleanup_timeout``.
        """
        self._closed = True
        for outcome in (self._running, self._crane_image):
            if not outcome.done:
                outcome.set_error(RegistryClosedError())
        if self._kept:
            # Still "live" for this process's sweeps; a dead owner's once it exits.
            logger.warning(
                "%s: kept for debugging: %s; `ephemeral-registry prune` removes them once this"
                " process has ended",
                self.name,
                ", ".join(self._leftovers()),
            )
            return None
        live_sessions.discard(self.session_id)
        problem: CleanupError | None = None
        with anyio.move_on_after(self._options.cleanup_timeout, shield=True) as scope:
            try:
                await self._tear_down()
            except EphemeralRegistryError as exc:
                problem = CleanupError(self._leftovers(), str(exc))
                problem.__cause__ = exc
        if scope.cancelled_caught:
            limit = self._options.cleanup_timeout
            problem = CleanupError(
                self._leftovers(), f"not done within cleanup_timeout={limit:g} s"
            )
        if problem is None:
            logger.debug("%s: removed", self.name)
        return problem

    def _leftovers(self) -> tuple[str, ...]:
        return self._created.describe() or (
            f"resources labelled {_labels.SESSION}={self.session_id}",
        )

    async def _tear_down(self) -> None:
        created = self._created
        containers, networks = created.containers, created.networks
        if created.uncertain:
            label = f"{_labels.SESSION}={self.session_id}"
            found = [
                *await self._engine.list_containers(label),
                *await self._engine.list_networks(label),
            ]
            containers = sorted({*containers, *(r.id for r in found if r.kind == "container")})
            networks = sorted({*networks, *(r.id for r in found if r.kind == "network")})
        # Overlapping removals only where the engine is safe with them.
        identity = self._engine.known_identity
        overlap = identity is not None and identity.removes_concurrently
        await remove(self._engine, containers, networks, overlap=overlap, removed=created.forget)


_LOGGED_MESSAGE = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')


def _compression(layer_compression: str | None, compress_layers: bool) -> str | None:
    """``push_image``'s layer compression, from ``compress_layers``, its old name, too."""
    if not compress_layers:
        return layer_compression
    warnings.warn(
        'compress_layers=True is layer_compression="gzip" now, for either pusher',
        DeprecationWarning,
        stacklevel=3,
    )
    if layer_compression not in (None, "gzip"):
        raise InvalidArgumentError(
            "compress_layers",
            compress_layers,
            f"contradicts layer_compression={layer_compression!r}",
        )
    return "gzip"


def _server_error(line: str) -> str | None:
    """The message of a registry log line that reports an error of its own, else None.

    Registry 2 and 3 log with logrus (``level=error msg="..."``); answers to a
    client's mistake (4xx, a HEAD for a blob it lacks, say) are left out.
    """
    if "level=error" not in line or "http.response.status=4" in line:
        return None
    found = _LOGGED_MESSAGE.search(line)
    return found.group(1).replace('\\"', '"') if found else line


@asynccontextmanager
async def ephemeral_registry(
    *,
    registry_image: str | None = None,
    crane_image: str | None = None,
    pull: PullPolicy = "missing",
    host_ip: str = "127.0.0.1",
    ready_timeout: float = 30.0,
    cleanup_timeout: float = 15.0,
    pull_timeout: float = 600.0,
    request_timeout: float = 30.0,
    push_timeout: float = 600.0,
    max_concurrent_pushes: int = 4,
    sweep_leftovers: bool = True,
    auth: bool = False,
    pusher: Pusher = "crane",
    layer_compression: LayerCompression | None = None,
    docker: aiodocker.Docker | None = None,
) -> AsyncIterator[Registry]:
    """Bring up a throwaway registry on a private Docker network, and remove it on exit.

    Entering returns a ``Registry`` at once, while the bring-up goes on in the
    background: do your own setup, then ``await registry.ready()``.

    Args:
        registry_image: the registry image; default ``$EPHEMERAL_REGISTRY_REGISTRY_IMAGE``,
            else registry 2.8.3 pinned by digest.
        crane_image: the crane image used for pushes; default
            ``$EPHEMERAL_REGISTRY_CRANE_IMAGE``, else crane pinned by digest.
        pull: ``"missing"`` pulls images the engine lacks, ``"never"`` fails with
            ``ImageNotFoundError`` instead, ``"always"`` pulls every time.
        host_ip: the address, on the engine's host, that the registry's port is
            published on. The default, loopback, keeps it private to that
            machine; an engine on another host (``tcp://`` by name or by a
            non-loopback address) needs an address of that host, and the pull
            endpoint is then that address (or the engine's, for 0.0.0.0).
        ready_timeout: seconds the registry has, from its container's start, to
            answer ``GET /v2/``.
        cleanup_timeout: seconds the removal on exit may take.
        pull_timeout: seconds one image pull may take.
        request_timeout: seconds any other single request to the engine may take.
        push_timeout: seconds one push (crane's run) or one export may take.
        max_concurrent_pushes: how many pushes run at once; more wait their turn.
        auth: protect the registry with a generated user name and password
            (htpasswd, needs ``ephemeral-registry[auth]``): pushes use them by
            themselves; ``Endpoints.credentials`` has them for pullers, and
            without them ``GET /v2/`` answers 401.
        pusher: how pushes are made: ``"crane"`` (``crane push`` in a one-shot
            container on the registry's network) or ``"native"`` (over HTTP from
            this process, the export streamed into the registry in one pass, no
            container, no temporary files). Each push may choose otherwise.
        layer_compression: how layers that the engine keeps uncompressed are
            pushed: ``"gzip"`` (what every client reads) or ``"none"`` (faster;
            some pullers insist on gzip). By default, each pusher's own way: the
            native pusher gzips them (ISA-L, level 1), crane pushes an image of
            the engine's as they are (crane would gzip each layer twice) and a
            tarball's gzipped (crane's own way). Layers that come compressed
            (gzip, zstd) are pushed as they are, and so is an OCI layout.
        sweep_leftovers: once the registry is up (or has failed), remove in the
            background what dead processes on this host left behind (see ``sweep()``).
        docker: an ``aiodocker.Docker`` client to use; it is left open. By
            default the engine is found as the docker CLI finds it
            (``DOCKER_HOST``, ``DOCKER_CONTEXT`` or the current context, then
            the default, rootless and Podman sockets), and a client for it is
            made and closed.

    Raises:
        InvalidArgumentError: at entry, for a bad argument (a loopback ``host_ip``
            for an engine on another host, say); from ``ready()``, for an IPv6
            ``host_ip`` that Podman as root cannot publish on. Nothing is created.
        DockerUnavailableError: at entry, when no engine address applies (it
            lists what was tried); later, from ``ready()``, when the engine
            does not answer.
        CleanupError: at exit, if something could not be removed in time and
            no other exception is on its way out (else it is added to that
            exception as a note).
        EphemeralRegistryError: at exit, the bring-up's error, if the block
            finished without ever seeing it from ``ready()``.

    Cancellation: cancelling the block, at any point, cancels the bring-up and
    then removes the network and containers created so far, shielded from the
    cancellation and bounded by ``cleanup_timeout``; the cancellation is then
    re-raised. Requests that create a resource are never abandoned half-way,
    so nothing the engine created escapes the removal.
    """
    options = resolve(
        registry_image=registry_image,
        crane_image=crane_image,
        pull=pull,
        host_ip=host_ip,
        ready_timeout=ready_timeout,
        cleanup_timeout=cleanup_timeout,
        pull_timeout=pull_timeout,
        request_timeout=request_timeout,
        push_timeout=push_timeout,
        max_concurrent_pushes=max_concurrent_pushes,
        auth=auth,
        pusher=pusher,
        layer_compression=layer_compression,
    )
    address = engine_address(docker)
    host_address(options.host_ip, address)  # refuses loopback for a remote engine
    async with open_client(docker, address) as client:
        engine = Engine(client, request_timeout=options.request_timeout)
        registry = Registry(engine, options, engine_address=address)
        logger.debug("%s: bringing up %s", registry.name, options.registry_image)
        body_error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(registry._bring_up)
                tg.start_soon(registry._prepare_crane_image)
                tg.start_soon(registry._watch_for_exit)
                if sweep_leftovers:
                    tg.start_soon(registry._sweep_after_bring_up)
                try:
                    yield registry
                except anyio.get_cancelled_exc_class():
                    raise  # the task group must see it; it comes out as itself
                except BaseException as exc:
                    # The block's own exception, kept out of the task group (which
                    # would wrap it in a group) and re-raised below as the very
                    # object raised, once the removal is done.
                    body_error = exc
                finally:
                    tg.cancel_scope.cancel()
        except BaseException as exc:
            # A cancellation, re-raised below once the removal is done.
            body_error = exc
        problem = await registry._close()
        if body_error is None:
            try:
                # A cancellation that arrived during the (shielded) removal is
                # raised here, at the exit, not at the caller's next await.
                await anyio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                if problem is not None:
                    logger.error("%s", problem)  # noqa: TRY400 (the traceback is the cancellation's)
                raise
        if problem is not None:
            if body_error is None:
                raise problem
            body_error.add_note(str(problem))
            logger.error("%s", problem)
        if body_error is not None:
            raise body_error
        registry._raise_unseen_failure()
