"""The crane pusher: ``crane push --insecure`` in a one-shot container on the registry's network.

One push is one container: created (shielded, so its id is never lost),
started, its output followed line by line while it runs (stdout and stderr
on one request, so in the order written), waited for, then removed, whatever
happened (no AutoRemove: with it, following the logs and waiting race the
removal).

crane reads a file: a caller's tarball or layout is read through the native
pusher's readers first (``check_source``), so that a corrupt one is the same
error whichever pusher; an image of the engine is exported into a
temporary OCI layout, checked as it is written, its uncompressed layers
gzipped by this library with layer compression ``gzip`` (the default) and
left so with ``none``, compressed ones kept (``_export``): crane pushes the
layout as it is, the same image as the native pusher.

The file reaches crane's container in one of two ways, chosen once per engine
(``Engine.shares_files``, see ``_host``): bind-mounted read-only where the
engine certainly sees this host's files at their paths (a local engine in
this host's mount namespace), which costs nothing; elsewhere (a VM, another
host, an engine with mounts of its own) copied in through the engine's API
(``_archive``) after the container is created and before it starts. A
caller's OCI layout is always copied: the copy is hashed against the layout's
check as it goes, so crane pushes exactly what was checked, even where the
directory changes after its check.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import re
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from .. import _archive, _auth, _labels, _source, _tls
from .._archive import Archive
from .._auth import DOCKER_CONFIG, archive
from .._concurrency import Outcome, run_all
from .._engine import ContainerSpec, Engine
from .._errors import (
    EphemeralRegistryError,
    InvalidArgumentError,
    InvalidSourceError,
    PushError,
    RegistryClosedError,
)
from .._export import check_tarball, exported
from .._images import ensure_image
from .._logs import Lines, Stream
from .._oci.errors import FormatError
from .._oci.layout import Layout, read_layout
from .._options import Options
from .._reference import Reference
from .._resources import Created
from .._running import Running
from .._source import MOUNT_POINT, Source
from .._tls import CRANE_ENV
from .._types import Endpoints, LogLine, PushResult
from .base import FromFile, Job, Ready
from .report import Report

logger = logging.getLogger("ephemeral_registry")

LOG_GRACE = 2.0
"""How long the followed output may go on after crane exited before it is stopped."""


_BLOB_LANDED = re.compile(r"\b(?:pushed|existing|mounted) blob:? (sha256:[0-9a-f]{64})")


class CraneImage:
    """crane's image, made sure of (checked, or pulled as the pull policy allows) once
    per block, and only if crane runs.

    ``run`` is the block's task: it waits until the image is wanted, then
    makes sure of it once, and keeps the outcome, value or error, for every
    push (a missing image fails each crane push, never the registry). A
    crane push wants it as it starts, so that its check or export overlaps
    the preparation, and waits for it only before crane's container is made;
    pushes at once share the one preparation, which a push's cancellation
    leaves running. When the block's pusher is crane, the life cycle wants it
    at once, so that it is ready beside the registry, as the first push's
    speed asks; when it is native, the image is never asked about unless a
    push chooses crane, so a missing crane image fails nothing.

    Cancellation: ``run`` is cancelled with the block; ``close`` then ends
    every wait with ``RegistryClosedError``.
    """

    def __init__(self, engine: Engine, options: Options, *, name: str) -> None:
        self._engine = engine
        self._options = options
        self._name = name
        self._wanted = anyio.Event()
        self._outcome: Outcome[str] = Outcome()

    def want(self) -> None:
        """Start making sure of the image, if that has not started yet."""
        self._wanted.set()

    async def get(self) -> str:
        """The image, once the engine holds it.

        Raises:
            ImageNotFoundError: the engine lacks it, and ``pull="never"``.
            ImagePullError: it could not be pulled.
            RegistryClosedError: the block has exited.
            EphemeralRegistryError: the engine's error, asking for it.
        """
        self.want()
        return await self._outcome.get()

    async def run(self) -> None:
        """Once wanted, make sure of the image; its outcome goes to ``get``, never raised here."""
        await self._wanted.wait()
        image = self._options.crane_image
        try:
            await ensure_image(self._engine, image, "crane_image", self._options)
        except Exception as exc:  # fails pushes, not the registry
            logger.debug("%s: crane image %s not available: %s", self._name, image, exc)
            self._outcome.set_error(exc)
        else:
            self._outcome.set_value(image)

    def close(self) -> None:
        """The block has exited: an image not made sure of yet never will be."""
        if not self._outcome.done:
            self._outcome.set_error(RegistryClosedError())


class CranePusher:
    """Pushes with crane, one container per push."""

    def __init__(
        self,
        engine: Engine,
        ready: Ready,
        crane_image: CraneImage,
        *,
        name: str,
        labels: dict[str, str],
        created: Created,
        cleanup_timeout: float,
    ) -> None:
        self._engine = engine
        self._ready = ready
        self._crane_image = crane_image
        self._name = name
        self._labels = labels
        self._created = created
        self._cleanup_timeout = cleanup_timeout
        self._numbers = itertools.count(1)
        self._joining = anyio.Lock()
        """Held while a crane container joins the network, on engines that need it."""

    def check(self, job: Job) -> None:
        what = job.what
        if (
            isinstance(what, FromFile)
            and job.layer_compression == "none"
            and not what.source.is_layout
        ):
            raise InvalidArgumentError(
                "layer_compression",
                "none",
                "cannot be crane's for a tarball, whose layers crane gzips itself;"
                ' push it with pusher="native"',
            )
        # What push() does first, set before it starts: a time limit that ends the push
        # before its first step has run must still say what was under way.
        job.report.phase = "check" if isinstance(what, FromFile) else "export"

    async def push(self, job: Job) -> PushResult:
        self._crane_image.want()  # made sure of while the source is checked or exported
        what = job.what
        if isinstance(what, FromFile):  # its phase is "check" (see check())
            checked = await check_source(what.source, job.report)
            # A caller's layout is copied in, never mounted: crane then reads the copy,
            # whose bytes were hashed against the check as they went (see _archive), not
            # a directory that may have changed since the check.
            return await self._run(what.source, job, checked, mount=not what.source.is_layout)
        async with exported(  # its phase is "export"
            self._engine,
            what.image,
            platform=what.platform,
            platforms=what.platforms,
            layer_compression=job.layer_compression,
            timeout=math.inf,  # the push's own time limit bounds it
            session=self._labels.get(_labels.SESSION),  # in the directory's name, for sweeps
            # Progress from the first second: the export's bytes (of a total not
            # known yet), then crane's, of a total that counts both.
            on_bytes=job.report.advance if job.report.wants_progress else None,
        ) as export:
            source = _source.check(export.path)
            # A layout of one entry, an image or an index, checked as it was made.
            checked = Checked({}, several=False)
            if job.report.wants_progress:
                await job.report.advance(0, at_once=True)  # the export's last bytes
                # Sizes as written (gzipped ones too), not read again.
                sizes = {
                    blob.digest: blob.size
                    for image in export.layout.images
                    for blob in (image.config, *image.layers)
                }
                checked = Checked(sizes, several=False)
                job.report.total = job.report.done + sum(sizes.values())
            return await self._run(source, job, checked)

    async def _run(
        self, source: Source, job: Job, checked: Checked, *, mount: bool = True
    ) -> PushResult:
        job.report.phase = "push"
        running = await self._ready()
        crane_image = await self._crane_image.get()
        rootless = await self._engine.rootless()
        mounted = mount and await self._engine.shares_files()
        spec = crane_spec(
            name=f"{self._name}-push-{next(self._numbers)}",
            crane_image=crane_image,
            labels=self._labels,
            endpoints=running.endpoints,
            source=source,
            reference=job.reference,
            registry_address=running.address,
            rootless=rootless,
            index=checked.several,
            mounted=mounted,
        )
        copied = None if mounted else await source_archive(source, checked, spec)
        identity = self._engine.known_identity
        one_at_a_time = identity is None or not identity.joins_concurrently
        return await run_crane(
            self._engine,
            spec,
            running,
            job,
            dict(checked.sizes),
            joining=self._joining if one_at_a_time else None,
            cleanup_timeout=self._cleanup_timeout,
            created=self._created,
            source=copied,
        )


@dataclass(frozen=True)
class Checked:
    """What crane needs to know of a source it pushes, once checked."""

    sizes: dict[str, int]
    """The sizes of a layout's blobs by digest, for progress (none for a tarball)."""
    several: bool
    """A layout whose index.json names several entries: crane pushes them as one index."""
    layout: Layout | None = None
    """The layout as checked, where it was read (what is copied of it, see ``_archive``)."""


async def source_archive(source: Source, checked: Checked, spec: ContainerSpec) -> Archive:
    """The tar that copies ``source`` to where ``spec``'s crane reads it, owned by its user.

    crane runs as the same user whether the source is mounted or copied (see
    ``crane_spec``), so that what it may do does not depend on how the source
    reached it; the copies are that user's own, so it reads them whatever the
    modes of the originals.

    Raises:
        InvalidSourceError: the source cannot be read, or is no usable layout.
    """
    uid, _, gid = (spec.user or "0:0").partition(":")
    if not source.is_layout:
        return _archive.of_tarball(source.path, at=MOUNT_POINT, uid=int(uid), gid=int(gid))
    layout = checked.layout
    if layout is None:  # an export, not read again after it was written
        try:
            layout = await read_layout(source.path)
        except FormatError as exc:
            raise InvalidSourceError(source.path, f"is not a usable OCI layout: {exc}") from None
    return _archive.of_layout(layout, at=MOUNT_POINT, uid=int(uid), gid=int(gid))


async def check_source(source: Source, report: Report) -> Checked:
    """Read a caller's source through the native pusher's readers before crane pushes it,
    so that a corrupt tarball or layout is an error whichever pusher: a tarball's layers
    are hashed and checked against its config, a layout's files against its descriptors.
    Set the report's total.

    Raises:
        InvalidSourceError: the source is not usable.

    Cancellation: the check stops at its next chunk.
    """
    if not source.is_layout:
        await check_tarball(source.path, fail=functools.partial(InvalidSourceError, source.path))
        report.total = (await anyio.Path(source.path).stat()).st_size
        return Checked({}, several=False)
    try:
        layout = await read_layout(source.path)
    except FormatError as exc:
        raise InvalidSourceError(source.path, f"is not a usable OCI layout: {exc}") from None
    if not layout.entries:
        raise InvalidSourceError(source.path, "is an OCI layout whose index.json names nothing")
    sizes = {digest: blob.size for digest, blob in layout.blobs().items()}
    report.total = sum(sizes.values())
    return Checked(sizes, several=len(layout.entries) > 1, layout=layout)


def crane_files(endpoints: Endpoints) -> dict[str, bytes]:
    """What crane's container needs before it starts: the credentials, the registry's CA."""
    files: dict[str, bytes] = {}
    if endpoints.credentials is not None:
        files |= _auth.crane_files(endpoints.credentials, endpoints.push_endpoint)
    if endpoints.ca_certificate is not None:
        files[_tls.CA] = endpoints.ca_certificate
    return files


def crane_spec(
    *,
    name: str,
    crane_image: str,
    labels: dict[str, str],
    endpoints: Endpoints,
    source: Source,
    reference: Reference,
    registry_address: str | None,
    rootless: bool = False,
    index: bool = False,
    mounted: bool = True,
) -> ContainerSpec:
    """The container that runs ``crane push --insecure SOURCE ENDPOINT/REPO:TAG``.

    With ``mounted``, the source's path is bind-mounted read-only where crane
    reads it; without, nothing is mounted, and the source is copied there
    before the container starts (``run_crane``).

    With ``index``, crane pushes an OCI layout's several entries as one index
    (``--index``): its ``index.json``, as the native pusher does.

    The registry's name resolves through ``/etc/hosts`` when its address is
    known: Podman's network DNS (aardvark-dns) sometimes does not answer for a
    network made a moment before, under load.

    crane runs as the source's owner, to read what the owner can (a mode-0600
    ``docker save -o`` tarball). On a ``rootless`` engine (Podman's usual way,
    or rootless Docker) it runs as the container's root instead: that is the
    user who runs the engine, the source's owner as a rule, while the
    container's other users are subordinate ids that own nothing on this host.
    A copied source is the same user's (``source_archive``).
    """
    env = {"DOCKER_CONFIG": DOCKER_CONFIG} if endpoints.credentials is not None else {}
    if endpoints.ca_certificate is not None:
        env |= CRANE_ENV
    # --insecure: a registry without TLS speaks plain HTTP, and crane only allows
    # that by itself for loopback and RFC 1918 addresses, not a name.
    insecure = ("--insecure",) if endpoints.ca_certificate is None else ()
    host = endpoints.push_endpoint.rpartition(":")[0]
    hosts = {host: registry_address} if registry_address else {}
    return ContainerSpec(
        name=name,
        image=crane_image,
        labels=labels,
        network=endpoints.network,
        command=(
            "push",
            *insecure,
            *(("--index",) if index else ()),
            MOUNT_POINT,
            f"{endpoints.push_endpoint}/{reference}",
        ),
        read_only_mount=(source.path, MOUNT_POINT) if mounted else None,
        user="0:0" if rootless else source.user,
        env=env,
        hosts=hosts,
    )


async def run_crane(
    engine: Engine,
    spec: ContainerSpec,
    running: Running,
    job: Job,
    sizes: dict[str, int],
    *,
    cleanup_timeout: float,
    created: Created,
    joining: anyio.Lock | None = None,
    source: Archive | None = None,
) -> PushResult:
    """Run one crane container to its end; return what it pushed.

    A ``source`` is copied into the container, as a tar streamed from disk,
    between its creation and its start.

    Each line of its output goes to the job's report as it comes; a blob
    that lands whose size ``sizes`` knows is reported as progress. The
    container's id is in ``created.cranes`` from its creation to its removal,
    so that the registry's teardown can remove a push still running when the
    block exits.

    Raises:
        PushError: crane exited non-zero, or told no digest.
        InvalidSourceError: ``source`` changed since it was checked.

    Cancellation: the container is killed and removed (shielded, bounded by
    ``cleanup_timeout``), then the cancellation propagates; a copy of
    ``source`` under way is abandoned first, and goes with the container.
    """
    report = job.report
    stdout: list[str] = []
    exit_code: int | None = None
    lines = Lines()
    endpoints = running.endpoints

    async def emit(new: list[LogLine]) -> None:
        for line in new:
            if line.stream == "stdout":
                stdout.append(line)
            await report.line(line)
            landed = _BLOB_LANDED.search(line)
            if landed and landed.group(1) in sizes:
                await report.advance(sizes.pop(landed.group(1)), at_once=True)

    async def follow() -> None:
        async def on_frame(stream: Stream, payload: bytes) -> None:
            await emit(lines.feed(stream, payload))

        await engine.read_output(container_id, on_frame, follow=True, timeout=float("inf"))

    async def catch_up() -> None:
        async def on_frame(stream: Stream, payload: bytes) -> None:
            await emit(lines.replay(stream, payload))

        await engine.read_output(container_id, on_frame, follow=False, timeout=None)

    container_id = await engine.create_container(spec)
    created.cranes.add(container_id)
    try:
        files = crane_files(endpoints)
        if files:
            uid, _, gid = (spec.user or "0:0").partition(":")
            await engine.copy_in(container_id, archive(files, uid=int(uid), gid=int(gid)))
        if source is not None:
            await engine.copy_archive_in(container_id, functools.partial(_archive.write, source))
        # Starting joins the registry's network: one at a time where the engine
        # needs it (Identity.joins_concurrently).
        async with joining or contextlib.nullcontext():
            await engine.start(container_id)
        following = anyio.CancelScope()

        async def follow_until_told() -> None:
            with following:
                await follow()

        async def wait() -> None:
            nonlocal exit_code
            exit_code = await engine.wait(container_id)
            # The followed output should end when the container stops,
            # but Podman's sometimes never does.
            following.deadline = anyio.current_time() + LOG_GRACE

        await run_all(follow_until_told, wait)
        # The engine has all of the output once the container has stopped,
        # but a follow may end before it has sent it all (Docker 20.10 drops
        # an unfinished last line): read it again, keeping what is new.
        await catch_up()
        await emit(lines.end())
    finally:
        with anyio.move_on_after(cleanup_timeout, shield=True):
            try:
                await engine.remove_container(container_id)
                created.forget(container_id)
            except EphemeralRegistryError as exc:
                logger.warning("could not remove the crane container %s: %s", spec.name, exc)
    # A cancellation that arrived during the shielded removal is raised here.
    await anyio.lowlevel.checkpoint_if_cancelled()

    reference = str(job.reference)
    if exit_code != 0:
        raise PushError(
            reference,
            f"crane exited with code {exit_code}",
            exit_code=exit_code,
            output=report.output,
        )
    digest = _digest(stdout)
    if digest is None:
        raise PushError(reference, "crane reported no digest", exit_code=0, output=report.output)
    return await report.finish(endpoints.pull_endpoint, digest)


def _digest(stdout: list[str]) -> str | None:
    """The digest in crane's final stdout line, ``<registry>/<repo>@sha256:<hex>``."""
    for line in reversed(stdout):
        _, at, digest = line.strip().rpartition("@")
        if at and digest.startswith("sha256:"):
            return digest
    return None
