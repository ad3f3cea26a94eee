"""Pushes: crane in a one-shot container on the registry's network.

One push is one container: created (shielded, so its id is never lost),
started, its output followed line by line while it runs (stdout and stderr
on one request, so in the order written), waited for, then removed, whatever
happened (no AutoRemove: with it, following the logs and waiting race the
removal).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re

import anyio
import anyio.lowlevel

from ._auth import DOCKER_CONFIG, crane_config_archive
from ._concurrency import run_all
from ._docker import ContainerSpec, Engine
from ._errors import EphemeralRegistryError, InvalidSourceError, PushError
from ._export import check_tarball
from ._logs import Lines, Stream
from ._oci.errors import FormatError
from ._oci.layout import read_layout
from ._reference import Reference
from ._resources import Created
from ._source import MOUNT_POINT, Source
from ._types import Endpoints, LogLine, OnLog, OnProgress, PushResult

logger = logging.getLogger("ephemeral_registry")

OUTPUT_LINES = 30
"""How many of crane's last lines a PushError carries."""

LOG_GRACE = 2.0
"""How long the followed output may go on after crane exited before it is stopped."""


_BLOB_LANDED = re.compile(r"\b(?:pushed|existing|mounted) blob:? (sha256:[0-9a-f]{64})")


async def check_source(source: Source, *, tarball: bool = True) -> tuple[dict[str, int], int]:
    """Read a caller's source through the native pusher's readers before crane pushes it,
    so that a corrupt tarball or layout is an error whichever pusher: a tarball's layers
    are hashed and checked against its config, a layout's files against its descriptors.
    Return the sizes of the layout's blobs by digest (none for a tarball) and the total.
    ``tarball=False`` leaves a tarball unread (one this library just checked as it made it).

    Raises:
        InvalidSourceError: the source is not usable.

    Cancellation: the check stops at its next chunk.
    """
    if not source.is_layout:
        if tarball:
            await check_tarball(
                source.path, fail=functools.partial(InvalidSourceError, source.path)
            )
        return {}, (await anyio.Path(source.path).stat()).st_size
    try:
        layout = await read_layout(source.path)
    except FormatError as exc:
        raise InvalidSourceError(source.path, f"is not a usable OCI layout: {exc}") from None
    sizes = {digest: blob.size for digest, blob in layout.blobs().items()}
    return sizes, sum(sizes.values())


class CraneProgress:
    """A crane push's progress, by blob: crane names each blob as it lands.

    The sizes come from the source: an OCI layout's manifest names its blobs;
    crane recompresses a tarball's layers, so there only the end is reported.
    """

    def __init__(self, on_progress: OnProgress, sizes: dict[str, int], total: int) -> None:
        self._on_progress = on_progress
        self._sizes = sizes
        self._total = total
        self._done = 0

    async def line(self, line: str) -> None:
        found = _BLOB_LANDED.search(line)
        if found and found.group(1) in self._sizes:
            self._done += self._sizes.pop(found.group(1))
            await self._report()

    async def finish(self) -> None:
        self._done = self._total
        await self._report()

    async def _report(self) -> None:
        result = self._on_progress(self._done, self._total)
        if inspect.isawaitable(result):
            await result


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
) -> ContainerSpec:
    """The container that runs ``crane push --insecure SOURCE ENDPOINT/REPO:TAG``.

    The registry's name resolves through ``/etc/hosts`` when its address is
    known: Podman's network DNS (aardvark-dns) sometimes does not answer for a
    network made a moment before, under load.

    crane runs as the source's owner, to read what the owner can (a mode-0600
    ``docker save -o`` tarball). On a ``rootless`` engine (Podman's usual way,
    or rootless Docker) it runs as the container's root instead: that is the
    user who runs the engine, the source's owner as a rule, while the
    container's other users are subordinate ids that own nothing on this host.
    """
    env = {"DOCKER_CONFIG": DOCKER_CONFIG} if endpoints.credentials is not None else {}
    host = endpoints.push_endpoint.rpartition(":")[0]
    hosts = {host: registry_address} if registry_address else {}
    return ContainerSpec(
        name=name,
        image=crane_image,
        labels=labels,
        network=endpoints.network,
        # --insecure: the registry speaks plain HTTP, and crane only allows
        # that by itself for loopback and RFC 1918 addresses, not a name.
        command=(
            "push",
            "--insecure",
            MOUNT_POINT,
            f"{endpoints.push_endpoint}/{reference}",
        ),
        read_only_mount=(source.path, MOUNT_POINT),
        user="0:0" if rootless else source.user,
        env=env,
        hosts=hosts,
    )


async def run_push(
    engine: Engine,
    spec: ContainerSpec,
    *,
    endpoints: Endpoints,
    reference: Reference,
    on_log: OnLog | None,
    timeout: float,
    cleanup_timeout: float,
    created: Created,
    progress: CraneProgress | None = None,
    joining: anyio.Lock | None = None,
) -> PushResult:
    """Run one crane container to its end; return what it pushed.

    The container's id is in ``created.cranes`` from its creation to its
    removal, so that the registry's teardown can remove a push still running
    when the block exits.

    Cancellation: the container is killed and removed (shielded, bounded by
    ``cleanup_timeout``), then the cancellation propagates.
    """
    output: list[LogLine] = []
    exit_code: int | None = None
    lines = Lines()

    async def emit(new: list[LogLine]) -> None:
        for line in new:
            output.append(line)
            logger.info("crane %s %s: %s", reference, line.stream, line)
            if on_log is not None:
                result = on_log(line)
                if inspect.isawaitable(result):
                    await result
            if progress is not None:
                await progress.line(line)

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
        with anyio.move_on_after(timeout) as scope:
            if endpoints.credentials is not None:
                await engine.copy_in(
                    container_id,
                    crane_config_archive(
                        endpoints.credentials, endpoints.push_endpoint, user=spec.user or "0:0"
                    ),
                )
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

    tail = tuple(output[-OUTPUT_LINES:])
    if scope.cancelled_caught:
        raise PushError(
            str(reference),
            f"crane did not finish within {timeout:g} s",
            exit_code=None,
            output=tail,
        )
    if exit_code != 0:
        raise PushError(
            str(reference), f"crane exited with code {exit_code}", exit_code=exit_code, output=tail
        )
    digest = _digest([line for line in output if line.stream == "stdout"])
    if digest is None:
        raise PushError(str(reference), "crane reported no digest", exit_code=0, output=tail)
    if progress is not None:
        await progress.finish()
    return PushResult(
        ref=f"{endpoints.pull_endpoint}/{reference}",
        digest=digest,
        digest_ref=f"{endpoints.pull_endpoint}/{reference.repository}@{digest}",
    )


def _digest(stdout: list[LogLine]) -> str | None:
    """The digest in crane's final stdout line, ``<registry>/<repo>@sha256:<hex>``."""
    for line in reversed(stdout):
        _, at, digest = line.strip().rpartition("@")
        if at and digest.startswith("sha256:"):
            return digest
    return None
