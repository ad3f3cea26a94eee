"""``Registry``: the handle a user holds on one registry (ready, push, push_image, keep).

The handle chooses a pusher per push (``_pushers``) and does what is the same
for every pusher: the push slot, the time limit, the registry's exit while a
push runs, the closed registry. The bring-up it waits for is ``_bring_up``'s,
the watch on the registry's exit and log ``_watch``'s; the block around it
is ``_lifecycle``'s.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

import anyio

from . import _platform, _reference, _source
from ._bring_up import BringUp
from ._concurrency import race
from ._engine import Engine
from ._errors import (
    EphemeralRegistryError,
    ImageNotFoundError,
    InvalidArgumentError,
    PushError,
    PushTimeoutError,
    RegistryClosedError,
)
from ._options import (
    LayerCompression,
    Options,
    Pusher,
    check_layer_compression,
    check_pusher,
    check_pusher_on,
)
from ._pushers.base import BasePusher, FromEngine, FromFile, Job
from ._pushers.crane import CraneImage, CranePusher
from ._pushers.native import NativePusher
from ._pushers.report import Report
from ._session import Session
from ._types import Endpoints, OnLog, OnProgress, PushResult
from ._watch import Watch


class Registry:
    """A handle on one ephemeral registry, from ``async with ephemeral_registry() as registry``.

    The registry is brought up in the background; ``await ready()`` waits for
    it. The handle is valid only inside its ``async with`` block.
    """

    def __init__(
        self,
        engine: Engine,
        options: Options,
        session: Session,
        bring_up: BringUp,
        watch: Watch,
        crane_image: CraneImage,
    ) -> None:
        self._engine = engine
        self._options = options
        self._session = session
        self._bring_up = bring_up
        self._watch = watch
        self._push_slots = anyio.Semaphore(options.max_concurrent_pushes)
        self._pushers: dict[Pusher, BasePusher] = {
            "crane": CranePusher(
                engine,
                bring_up.running.get,
                crane_image,
                name=session.name,
                labels=session.labels("push"),
                created=session.created,
                cleanup_timeout=options.timeouts.cleanup,
            ),
            "native": NativePusher(engine, bring_up.running.get, direct=not options.tunnel),
        }

    @property
    def session_id(self) -> str:
        """A random id, in every resource name and in the ``ephemeral-registry.session`` label."""
        return self._session.session_id

    @property
    def name(self) -> str:
        """The name of the registry container and of its network."""
        return self._session.name

    @property
    def pusher(self) -> Pusher:
        """How this registry's pushes are made unless a call says otherwise."""
        return self._options.pusher

    def __repr__(self) -> str:
        state = (
            "closed"
            if self._session.closed
            else "ready"
            if self._bring_up.running.done
            else "starting"
        )
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
            return (await self._bring_up.running.get()).endpoints
        except Exception:
            self._session.failure_seen = True
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
        network, the source bind-mounted into it where the engine sees this
        host's files at their paths, else copied into it through the
        engine's API (a VM, another host: see the Engines page); with the
        native pusher, uploads from this process over HTTP.
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
            PushTimeoutError: the push (the source's check included) ran past
                ``push_timeout``; a ``PushError`` and a ``TimeoutError``.
            PushError: crane exited non-zero, the registry refused the native
                pusher, or the registry's container exited meanwhile; it
                carries the last lines.
            ImageNotFoundError, ImagePullError: the crane image is unavailable.
            RegistryClosedError: the block has exited.
            EphemeralRegistryError: any error of ``ready()``.

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
        check_pusher_on(name, self._options.backend)
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
                with anyio.move_on_after(self._options.timeouts.push):
                    return await self._while_the_registry_runs(job, chosen.push)
            except EphemeralRegistryError as exc:
                if exc is self._bring_up.running.error:
                    self._session.failure_seen = True
                if self._session.closed:  # the teardown removed the registry under it
                    raise RegistryClosedError() from exc
                if isinstance(exc, PushError):
                    raise await self._watch.with_registry_errors(exc) from exc
                raise
        raise self._timed_out(job)

    def _timed_out(self, job: Job) -> PushTimeoutError:
        """The error for a push that ran past ``push_timeout``: it says what was under way."""
        limit = self._options.timeouts.push
        report = job.report
        ref = str(job.reference)
        if report.phase == "check":
            reason = f"reading the source to check it took longer than push_timeout={limit:g} s"
            return PushTimeoutError(ref, reason, limit=limit, stage="check")
        if report.phase == "export" and isinstance(job.what, FromEngine):
            reason = (
                f"the engine's export of the image {job.what.image} did not finish within"
                f" push_timeout={limit:g} s. The engine at {self._engine.address} may be"
                " overloaded or stuck (see `docker info` and its log), or the image too big"
                " for that time: allow more with push_timeout="
            )
            return PushTimeoutError(ref, reason, limit=limit, stage="export", output=report.output)
        reason = f"the {report.pusher} push did not finish within {limit:g} s (push_timeout)"
        return PushTimeoutError(ref, reason, limit=limit, stage="push", output=report.output)

    async def push_image(
        self,
        image: str,
        ref: str | None = None,
        *,
        on_log: OnLog | None = None,
        platform: str | None = None,
        platforms: str | Sequence[str] | None = None,
        pusher: Pusher | None = None,
        layer_compression: LayerCompression | None = None,
        on_progress: OnProgress | None = None,
    ) -> PushResult:
        """Export ``image`` from the local engine (``docker save``) and push it as ``ref``.

        Exactly the image named is exported: a name without a tag means
        ``:latest``, as in Docker; an image id or ``name@digest`` works too
        (with ``ref=``, as an id has no name to push under). The export starts
        at once, overlapping the registry's bring-up. For crane it is streamed
        to a temporary directory in constant memory, removed afterwards; the
        native pusher streams it into the registry with no file written. The
        image is never pulled.

        Layers the engine keeps compressed (gzip or zstd, as a containerd
        image store may) keep their compression; those it keeps uncompressed
        are gzipped with ``layer_compression="gzip"`` (the default, whichever
        the pusher: the native pusher gzips them as they stream; for crane the
        image is written as an OCI image layout and they are gzipped into it,
        at the same level, before crane pushes it, so both pushers push the
        same image) and stay so with ``"none"`` (faster, for a registry on this
        machine). The pushed image is the same image: same config, so the same
        image id where the engine names images by their config.

        Args:
            image: a name, ``name@digest`` or id the local engine knows.
            ref: ``repo[:tag]``; by default the image's own name without a
                registry host (``docker.io/library/alpine:3`` -> ``library/alpine:3``).
            on_log: as for ``push()``.
            on_progress: as for ``push()``, from the export's first bytes
                whatever the pusher. The native pusher's total is ``None`` here,
                as the export's size is known only at its end; crane's counts
                the export's bytes (total ``None``) and then, once crane starts,
                those of the blobs it pushes, of a total that counts both.
            platform: ``os/architecture[/variant]`` of the image to push, where
                the engine holds it for several (a containerd image store);
                by default the only one there is, or else the engine's own.
            platforms: ``"all"``, or a list of platforms: push an image index
                instead, of every platform the engine holds the image for (on
                an engine without a containerd image store, the one), or of
                those named; each platform's image is pushed as ``platform=``
                would push it, and the result's digest is the index's. Not
                with ``platform``.
            pusher: ``"crane"`` or ``"native"``; by default the registry's. The
                native pusher streams the export into the registry in one
                pass: no container, no temporary files.
            layer_compression: ``"gzip"`` or ``"none"``, for layers the engine
                keeps uncompressed; by default the registry's. Either, with any
                ``platform`` or ``platforms``, whatever the pusher.

        Raises:
            ImageNotFoundError: the engine does not hold ``image`` (or not for
                ``platform``, or one of ``platforms``); nothing is created.
            ExportError: the engine's ``docker save`` broke off or is not usable.
            PushTimeoutError: the push, its export included, ran past ``push_timeout``.
            EphemeralRegistryError: everything ``push()`` raises.

        Cancellation: the export stops and its files are removed; a crane
        container already started is removed as in ``push()``.
        """
        self._check_open()
        wanted = None if platform is None else _platform.parse(platform)
        several = None if platforms is None else _platform.parse_many(platforms)
        if wanted is not None and several is not None:
            raise InvalidArgumentError(
                "platforms", platforms, "and platform= cannot both be given: name it in platforms"
            )
        if _names_a_file(image) and not await self._holds(image):
            raise InvalidArgumentError(
                "image",
                image,
                "is a file or directory here, not an image the engine holds:"
                " push a tarball or an OCI layout with push(path, ref)",
            )
        image = _reference.local_image(image)
        reference = _reference.from_image_name(image) if ref is None else _reference.parse(ref)
        if not await self._engine.has_image(image):
            raise ImageNotFoundError(image)
        return await self._push(
            FromEngine(image, wanted, several),
            reference,
            on_log,
            on_progress,
            pusher,
            layer_compression,
        )

    async def _holds(self, name: str) -> bool:
        """Whether the engine holds an image of that name (False if it cannot be one)."""
        try:
            image = _reference.local_image(name)
        except InvalidArgumentError:
            return False
        return await self._engine.has_image(image)

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
            await self._watch.exited.get()

        try:
            await race(run, stopped)
        except PushError as exc:  # the exit may have been its cause (before it was seen): say so
            exited = await self._watch.exit_now()
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
                f"{await self._watch.exited.get()} during the push",
                exit_code=None,
                output=job.report.output,
            )
        return result

    def keep(self) -> None:
        """Leave this registry's containers and network in place when the block exits.

        For debugging a failure: the exit logs what it kept. They are
        leftovers of this process from then on: ``sweep()`` (or
        ``ephemeral-registry prune``) removes them once this process has ended.
        """
        self._session.kept = True

    def _check_open(self) -> None:
        if self._session.closed:
            raise RegistryClosedError()


def _names_a_file(name: str) -> bool:
    """Whether ``name``, given as an image, is the path of something on this host."""
    try:
        os.stat(name)
    except (OSError, ValueError):
        return False
    return True
