"""The native pusher: images go into the registry over HTTP from this process, in one pass.

No container and no temporary file. Its three sources:

- an image of the engine (``push_image()``): the ``docker save`` stream is
  read once, by the save reader (``_oci.save``), and each layer is uploaded
  while it arrives, through the upload pipeline (``upload``: read, compress,
  send); small files (the config, the save's own JSON documents, tiny
  layers) are held in memory until the image is known; then the config and
  the manifest go last;
- a caller's ``docker save`` tarball (``push()``): read from disk the same
  way; its member names are not trusted as hints for the blob cache;
- a caller's OCI layout (``push()``): checked first (``_oci.layout``), then
  its blobs sent as they are, two at a time, then its manifests and indexes.

Where the requests go is chosen once per registry, by its first push
(``_target``): the registry container's own address where this host
certainly reaches it, else the published port.

Cancellation: the upload session under way is cancelled (``DELETE``,
shielded and bounded); a registry keeps nothing from it that a manifest
refers to. Blobs already uploaded stay in the registry's storage,
unreferenced, until the registry is removed with the rest.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import anyio.to_thread
import httpx

from .._concurrency import beside, opened
from .._engine import Engine
from .._errors import ExportError, InvalidSourceError, PushError
from .._export import Fail, reading
from .._interfaces import is_interface_address
from .._oci import layout as _layout
from .._oci.content import sha256_of
from .._oci.errors import FormatError
from .._oci.manifests import index_json, manifest_json
from .._oci.media_types import OCI_INDEX, OCI_MANIFEST
from .._oci.save import EnginePlatform, Image, Unpacker
from .._oci.stream import CHUNK, ReadExactly, file_reader
from .._options import LayerCompression
from .._platform import Platform, Platforms
from .._readiness import http_client, is_own_answer
from .._running import Running
from .._types import Endpoints, PushResult
from . import distribution
from .base import FromFile, Job, Ready
from .upload import BlobCache, UploadStore

logger = logging.getLogger("ephemeral_registry")

LAYOUT_UPLOADS = 2
"""How many blobs of an OCI layout go up at once: two fill the registry better than one."""
DIRECT_PROBE_TIMEOUT = 0.5
"""How long the registry's own address has to answer before pushes take the published port."""


class NativePusher:
    """Pushes over HTTP from this process (see the module docstring)."""

    def __init__(self, engine: Engine, ready: Ready, *, direct: bool = True) -> None:
        self._engine = engine
        self._ready = ready
        self._may_go_direct = direct
        """False with a tunnel: everything goes through it, as the caller asked."""
        self._cache = BlobCache()
        """The layers this registry's native pushes put in it, to skip or mount them."""
        self._target_endpoint: str | None = None
        """Where pushes go (``host:port``), once the first push has chosen it."""
        self._choosing = anyio.Lock()

    def check(self, job: Job) -> None:
        pass  # every job is one it can push

    async def push(self, job: Job) -> PushResult:
        compression = job.layer_compression
        what = job.what
        if isinstance(what, FromFile):
            if what.source.is_layout:
                return await self._push_layout(what.source.path, job)
            return await self._push_file(what.source.path, job, compression)
        # The export starts at once; the registry's bring-up goes on meanwhile.
        async with self._engine.export(what.image, timeout=math.inf) as content:
            return await self._push_save(
                what.image,
                content.readexactly,
                job,
                compression,
                platform=what.platform,
                platforms=what.platforms,
                engine_platform=self._engine.platform,
            )

    async def _push_save(
        self,
        image: str,
        read_exactly: ReadExactly,
        job: Job,
        compression: LayerCompression,
        *,
        platform: Platform | None,
        platforms: Platforms | None = None,
        engine_platform: EnginePlatform | None,
        fail: Fail | None = None,
    ) -> PushResult:
        """Push the image of a ``docker save`` stream to the registry as it is read;
        with ``platforms``, the images of those platforms and an index of them.

        The stream is the engine's export, whose member names the blob cache
        may trust as hints; with ``fail`` (a caller's tarball) it is not, and
        its problems are the errors ``fail`` makes.

        Raises:
            ExportError (or what ``fail`` makes): the stream is not a usable
                ``docker save``, or a layer is corrupt or does not match its config.
            ImageNotFoundError: it holds no image for ``platform``.
            PushError: the registry refused a request, or could not be reached;
                it carries the registry's answer and the lines logged so far.

        Cancellation: the uploads under way are cancelled (see the module docstring).
        """
        report = job.report

        async def read_counted(size: int) -> bytes:
            data = await read_exactly(size)
            await report.advance(len(data))
            return data

        # The reader's errors, and a layer's upload's beside the reading, become ours here.
        with reading(image, fail or functools.partial(ExportError, image)):
            async with self._registry_api(job) as (api, endpoints):
                store: UploadStore | None = None
                try:
                    async with beside() as start_soon:  # the exit waits for every layer's upload
                        store = UploadStore(
                            api,
                            self._cache,
                            compression,
                            report.say,
                            start_soon,
                            trusted_names=fail is None,
                        )
                        unpacker = Unpacker(read_counted, store)
                        await unpacker.run()
                    if platforms is None:
                        chosen = await unpacker.choose(platform, engine_platform)
                        manifest = await self._push_image(store, chosen)
                        await api.put_manifest(job.reference.tag, manifest, OCI_MANIFEST)
                    else:
                        manifests = []
                        for each in await unpacker.choose_many(platforms):
                            one = await self._push_image(store, each)
                            # An index may name only manifests the registry holds.
                            await api.put_manifest(sha256_of(one), one, OCI_MANIFEST)
                            manifests.append((one, each.platform))
                        manifest = index_json(manifests)
                        await api.put_manifest(job.reference.tag, manifest, OCI_INDEX)
                except BaseException:  # the registry's refusal included: _registry_api says it
                    self._forget(store)
                    raise
        return await _finish(job, endpoints, manifest)

    @staticmethod
    async def _push_image(store: UploadStore, image: Image) -> bytes:
        """Push what of ``image`` is not pushed yet (held layers, its config); return its
        manifest, not pushed."""
        layers = [
            store.pushed[layer.digest]
            if layer.digest in store.pushed
            else await store.push_held(layer, layer=True)
            for layer in image.layers
        ]
        config = await store.push_held(image.config, layer=False)
        return manifest_json(config, layers)

    @asynccontextmanager
    async def _registry_api(self, job: Job) -> AsyncIterator[tuple[distribution.Api, Endpoints]]:
        """The registry's API for the job's repository, once the registry answers; its
        refusals and broken connections become ``PushError`` (see ``_failed``)."""
        running = await self._ready()
        endpoints = running.endpoints
        target = await self._target(running)
        await job.report.say(f"sending to {endpoints.scheme}://{target}")
        async with distribution.client(endpoints, target) as client:
            try:
                yield distribution.Api(client, job.reference.repository), endpoints
            except (distribution.Refused, httpx.HTTPError) as exc:
                raise _failed(job, exc) from exc

    async def _target(self, running: Running) -> str:
        """Where to send the registry's requests: straight to its container, where this
        host reaches it, else through the published port (``pull_endpoint``). Chosen
        once, by the first push; pushes at once wait for that choice.

        Docker's published port goes through docker-proxy, which copies every
        byte once more. A local Docker engine that is not rootless puts its
        networks on this host, where the container's address answers
        directly. Podman forwards its ports in the kernel, and gains nothing
        from it (``benchmarks/registry_versions.py``). A TLS registry's
        certificate does not name that address. With ``tunnel=True`` nothing is
        tried: the caller said that this host may not reach the engine's networks.
        """
        async with self._choosing:
            if self._target_endpoint is None:
                direct = await self._direct_address(running) if self._may_go_direct else None
                self._target_endpoint = direct or running.endpoints.pull_endpoint
        return self._target_endpoint

    async def _direct_address(self, running: Running) -> str | None:
        """The container's own address, when it is certainly this registry's; else None.

        Nothing is sent to that address unless its network is this host's:
        its gateway is an address of one of this host's interfaces
        (``_interfaces``). An engine in a VM (Docker Desktop, colima) or on
        another machine has networks of its own, whose addresses this host
        may route to the user's network and a stranger there. Then one
        ``GET /v2/``, without credentials, must answer with the registry's
        secret token (``TOKEN_HEADER``); an answer without it is someone
        else's, and gets nothing more.
        """
        if (
            running.address is None
            or running.gateway is None
            or running.endpoints.ca_certificate is not None
            or not self._engine.address.startswith("unix://")
            or (await self._engine.identify()).product != "docker"
            or await self._engine.rootless()
            or not is_interface_address(running.gateway)
        ):
            return None
        host = f"[{running.address}]" if ":" in running.address else running.address
        port = running.endpoints.push_endpoint.rpartition(":")[2]  # the container's own
        endpoint = f"{host}:{port}"
        async with http_client() as client:
            try:
                answer = await client.get(f"http://{endpoint}/v2/", timeout=DIRECT_PROBE_TIMEOUT)
            except httpx.HTTPError as exc:
                logger.debug("the registry's own address %s does not answer: %r", endpoint, exc)
                return None
        if not is_own_answer(answer, running.token):
            logger.warning(
                "%s answered as a registry, but not as this one (HTTP %s, without its token):"
                " pushing through the published port instead",
                endpoint,
                answer.status_code,
            )
            return None
        return endpoint

    def _forget(self, store: UploadStore | None) -> None:
        """A failed push's cache entries go: what it read may have been a lie."""
        if store is not None:
            self._cache.forget(store.recorded)

    async def _push_layout(self, path: Path, job: Job) -> PushResult:
        """Push an OCI image layout as it is: its blobs, manifests and indexes.

        What its ``index.json`` names alone (an image, or an index of several
        platforms) is pushed as the tag; several entries are pushed as one
        index, ``index.json`` itself, as crane's ``--index`` does. The layout
        is read and checked first (``_oci.layout``): every file it names lies
        inside it and has the size its descriptor gives.

        Raises:
            InvalidSourceError: the layout is malformed, names a file outside
                itself, or names nothing.
            PushError: as for ``_push_save``.
        """
        report = job.report
        try:
            layout = await _layout.read_layout(path)
        except FormatError as exc:
            raise InvalidSourceError(path, f"is not a usable OCI layout: {exc}") from None
        top, below = _top(layout, path)
        blobs = layout.blobs()
        report.total = sum(blob.size for blob in blobs.values())
        async with self._registry_api(job) as (api, endpoints):
            try:
                uploads = anyio.CapacityLimiter(LAYOUT_UPLOADS)

                async def send(descriptor: _layout.Descriptor) -> None:
                    digest = descriptor.digest
                    async with uploads:
                        if await api.has(digest):
                            await report.say(f"existing blob: {digest}")
                        else:
                            chunks = _file_chunks(layout, descriptor)
                            await api.upload(chunks, functools.partial(str, digest))
                            await report.say(f"pushed blob: {digest} ({descriptor.size} bytes)")
                    await report.advance(descriptor.size)

                async with beside() as start_soon:
                    for descriptor in blobs.values():
                        start_soon(functools.partial(send, descriptor))
                for document in below:  # an index may name only manifests the registry holds
                    content = await _document(layout, document.descriptor)
                    await api.put_manifest(document.descriptor.digest, content, document.media_type)
                content = top[0] if isinstance(top[0], bytes) else await _document(layout, top[0])
                await api.put_manifest(job.reference.tag, content, top[1])
            except FormatError as exc:  # a file changed under us
                raise InvalidSourceError(path, f"changed since it was checked: {exc}") from None
        return await _finish(job, endpoints, content)

    async def _push_file(self, path: Path, job: Job, compression: LayerCompression) -> PushResult:
        """Push a ``docker save`` tarball read from disk, as ``_push_save`` does; its
        problems are ``InvalidSourceError``."""
        job.report.total = (await anyio.Path(path).stat()).st_size
        async with opened(path, "rb") as file:
            return await self._push_save(
                str(path),
                file_reader(file),
                job,
                compression,
                platform=None,
                engine_platform=None,  # no engine to ask: a tarball of several images is refused
                fail=functools.partial(InvalidSourceError, path),
            )


def _failed(job: Job, exc: Exception) -> PushError:
    """The PushError for a registry that refused a request, or could not be reached."""
    if isinstance(exc, distribution.Refused):
        problem = str(exc)
    else:
        during = ""
        if isinstance(exc, httpx.RequestError):
            with suppress(RuntimeError):  # raised where no request was set
                during = f" during {exc.request.method} {exc.request.url.path}"
        problem = f"the connection to the registry broke off{during} ({exc!r})"
    return PushError(str(job.reference), problem, exit_code=None, output=job.report.output)


async def _finish(job: Job, endpoints: Endpoints, manifest: bytes) -> PushResult:
    """Tell the pushed digest as crane does (``ENDPOINT/REPO@DIGEST``); report the end."""
    digest = sha256_of(manifest)  # what the registry names it
    await job.report.say(f"{endpoints.push_endpoint}/{job.reference.repository}@{digest}")
    return await job.report.finish(endpoints.pull_endpoint, digest)


def _top(
    layout: _layout.Layout, path: Path
) -> tuple[tuple[bytes | _layout.Descriptor, str], list[_layout.Manifest | _layout.Index]]:
    """What a layout's push tags (its descriptor, or its content, and its media type), and
    the manifests and indexes to push before it, by digest: what its one entry names, or
    for several entries, all of them (the tag is then ``index.json``, an index of them)."""
    documents = list(layout.documents())
    if not layout.entries:
        raise InvalidSourceError(path, "is an OCI layout whose index.json names nothing")
    if len(layout.entries) == 1:
        entry = layout.entries[0]
        return (entry.descriptor, entry.media_type), documents[:-1]  # the entry comes last
    return (layout.content, OCI_INDEX), documents


async def _document(layout: _layout.Layout, descriptor: _layout.Descriptor) -> bytes:
    """A manifest or index of the layout, read again and checked against its digest: what
    was checked is what is pushed (none is held from the check, to bound memory)."""
    return await anyio.to_thread.run_sync(_layout.read_document, layout.root, descriptor)


async def _file_chunks(
    layout: _layout.Layout, descriptor: _layout.Descriptor
) -> AsyncIterator[bytes]:
    """A blob's file, opened inside the layout, a chunk at a time, hashed as it goes: the
    last chunk is held back until the digest matches, so an upload of bytes that changed
    since the check never completes (FormatError instead)."""
    file = anyio.wrap_file(
        await anyio.to_thread.run_sync(_layout.open_blob, layout.root, descriptor)
    )
    try:
        sent = 0
        digest = hashlib.sha256()
        held = b""
        while chunk := await file.read(min(CHUNK, descriptor.size - sent)):
            sent += len(chunk)
            await anyio.to_thread.run_sync(digest.update, chunk)
            if held:
                yield held
            held = chunk
        if sent != descriptor.size or f"sha256:{digest.hexdigest()}" != descriptor.digest:
            raise FormatError(f"the bytes of {descriptor.digest} do not match its digest")
        if held:
            yield held
    finally:
        with anyio.CancelScope(shield=True):
            await file.aclose()
