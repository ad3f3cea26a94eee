"""The native pusher: images go into the registry over HTTP from this process, in one pass.

No container and no temporary file: the ``docker save`` stream (from the
engine, or from a tarball) is read once, and each layer is hashed,
compressed (ISA-L's gzip, level 1, on worker threads) and uploaded while it
arrives, through the OCI distribution API: ``POST`` an upload session,
one streamed ``PATCH``, ``PUT ?digest=``. Small files (the config, the
save's own JSON documents, tiny layers) are held in memory until the save
has been read and the image is known; then the config and the manifest go
last. Reading runs up to ``RUN_AHEAD`` (16 MiB) ahead of the sending, so
the next layer's upload starts while one is still being sent: the registry
ingests two uploads at once faster than one. Memory stays bounded whatever
the image's size: the run-ahead, plus those small files.

Blobs are not uploaded twice. A layer is named by its content in every
engine's save (``blobs/sha256/<digest>``, Podman's ``<diff_id>.tar``, Docker
20.10's ``<layer id>/layer.tar``): the registry's ``BlobCache`` remembers
what each name became, so a layer that the repository already holds is
skipped (``HEAD``), and one that another repository of the registry holds is
mounted (``?mount=&from=``). Pushes at once wait for each other's upload of
a shared layer instead of uploading it twice.

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
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
from isal import isal_zlib

from .._concurrency import Outcome, StartSoon, beside, opened, run_all
from .._engine import Engine
from .._errors import ExportError, InvalidSourceError, PushError
from .._export import (
    CHUNK,
    Fail,
    Image,
    ReadExactly,
    Unpacker,
    file_reader,
    index_json,
    manifest_json,
    one_image_only,
)
from .._interfaces import is_interface_address
from .._oci import documents
from .._oci import layout as _layout
from .._oci.content import Blob, Digests
from .._oci.errors import FormatError
from .._oci.media_types import OCI_INDEX, OCI_MANIFEST
from .._options import LayerCompression
from .._platform import Platform, Platforms
from .._readiness import http_client, is_own_answer
from .._types import Endpoints, PushResult
from . import distribution
from .base import FromFile, Job, Ready, Running

logger = logging.getLogger("ephemeral_registry")

SMALL = 1 << 20
"""Files of the save up to this size are held in memory until the image is known."""
MEMORY_BUDGET = 64 << 20
"""The most bytes of a save's small files and JSON documents held in memory at once, whatever
the save holds: files beyond it are uploaded as they stream, as layers are, and a JSON
document beyond it cannot be read (an error, if the image needs it)."""
MAX_DOCUMENT = documents.MAX_DOCUMENT
"""The largest JSON document (a config, say) held in memory."""
GZIP_LEVEL = 1
PIPELINE = 4
"""Compressed chunks that may wait to be sent, in each upload."""
RUN_AHEAD = 16 << 20
"""How far reading a save may run ahead of the sending of its layers (bytes)."""
LAYOUT_UPLOADS = 2
"""How many blobs of an OCI layout go up at once: two fill the registry better than one."""
DIRECT_PROBE_TIMEOUT = 0.5
"""How long the registry's own address has to answer before pushes take the published port."""
DEFAULT_COMPRESSION: LayerCompression = "gzip"
"""For layers the engine keeps uncompressed: every client reads gzip, and level 1 is cheap."""
_CONTENT_NAMED = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class _Held:
    """A layer the registry holds: as it was in the save, as pushed, and where."""

    source: Blob
    pushed: Blob
    repository: str


@dataclass
class BlobCache:
    """What one registry holds, by the content-derived names of the layers in engines'
    exports (and how they were sent: gzipped or as they came).

    A name is a hint, never trusted alone: a push that reuses an entry hashes
    the member it skips and fails if the content differs (``_Store._send``).
    Only exports of the engine record names (a tarball from elsewhere could
    name anything), and the entries of a push that fails are forgotten, so a
    bad push cannot make a later good one fail.
    """

    _held: dict[str, _Held] = field(default_factory=dict)
    _busy: dict[str, anyio.Event] = field(default_factory=dict)
    _where: dict[str, str] = field(default_factory=dict)
    """Blob digest: a repository that holds it (for small blobs, pushed from memory)."""

    @asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[_Held | None]:
        """What ``name`` became, if known; others pushing the same name wait meanwhile."""
        while name in self._busy:
            await self._busy[name].wait()
        done = self._busy[name] = anyio.Event()
        try:
            yield self._held.get(name)
        finally:
            del self._busy[name]
            done.set()

    def record(self, name: str, held: _Held) -> None:
        self._held[name] = held

    def forget(self, names: set[str]) -> None:
        for name in names:
            self._held.pop(name, None)

    def holder(self, digest: str) -> str | None:
        """A repository of the registry known to hold the blob ``digest``."""
        return self._where.get(digest)

    def holds(self, digest: str, repository: str) -> None:
        self._where.setdefault(digest, repository)


class _Store:
    """A BlobStore that uploads the save's layers as they stream and holds the rest."""

    def __init__(
        self,
        image: str,
        api: distribution.Api,
        cache: BlobCache,
        compression: LayerCompression,
        say: Callable[[str], Awaitable[None]],
        start_soon: StartSoon,
        *,
        trusted_names: bool,
        fail: Fail,
    ) -> None:
        self._image = image
        self._trusted_names = trusted_names
        """Whether the member names come from the engine (content-derived), for the cache."""
        self._fail = fail
        self._api = api
        self._cache = cache
        self._compression = compression
        self._say = say
        self._start_soon = start_soon
        """Starts a layer's sending beside the reading of the rest of the save."""
        self._ahead = anyio.Semaphore(RUN_AHEAD // CHUNK)
        self._memory: dict[str, bytes] = {}
        self._held_bytes = 0
        self.recorded: set[str] = set()
        """The cache entries this push made (forgotten if it fails)."""
        self.pushed: dict[str, Blob] = {}
        """By the digest of a layer as it came in the save: the blob the registry holds."""

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        first = await read_exactly(min(CHUNK, size)) if size else b""
        small = size <= SMALL or (first[:1] in (b"{", b"[") and size <= MAX_DOCUMENT)
        if small and self._held_bytes + size <= MEMORY_BUDGET:
            data = first + await _read(read_exactly, size - len(first))
            digests = Digests()
            await digests.feed(data)
            blob = digests.blob(size)
            if blob.digest not in self._memory:
                self._held_bytes += size
                self._memory[blob.digest] = data
            return blob
        read: Outcome[Blob] = Outcome()
        # The first chunk counts against the run-ahead too: else a save of many small files
        # (each read whole at once) would start an upload for each, each holding its chunk.
        await self._ahead.acquire()  # given back once it is sent (or hashed, if skipped)
        self._start_soon(functools.partial(self._send, name, first, size, read_exactly, read))
        return await read.get()  # the layer's sending goes on beside the rest of the save

    async def _send(
        self, name: str, first: bytes, size: int, read_exactly: ReadExactly, read: Outcome[Blob]
    ) -> None:
        """Read a layer from the stream and send it; ``read`` is set once it has been read."""
        if not self._trusted_names or not _CONTENT_NAMED.search(name):
            await self._upload(first, size, read_exactly, read)  # a name that proves nothing
            return
        key = f"{self._compression}:{name}"  # the same layer, sent the same way
        async with self._cache.claim(key) as held:
            if held is not None and await self._reuse(held):
                # Skipped, but hashed: the name is a hint, the content decides.
                digests = Digests()
                await digests.feed(first)
                self._ahead.release()
                remaining = size - len(first)
                while remaining:
                    chunk = await read_exactly(min(CHUNK, remaining))
                    remaining -= len(chunk)
                    await digests.feed(chunk)
                came = digests.blob(size)
                if came.digest != held.source.digest:
                    raise self._fail(
                        f"its member {name:.200} holds {came.digest}, but the layer of that name"
                        f" pushed into this registry before was {held.source.digest}"
                    )
                self.pushed[held.source.digest] = held.pushed
                read.set_value(held.source)
                return
            source = await self._upload(first, size, read_exactly, read)
            pushed = self.pushed[source.digest]
            self._cache.record(key, _Held(source, pushed, self._api.repository))
            self.recorded.add(key)

    async def _reuse(self, held: _Held) -> bool:
        """Whether the repository has the blob already, or it could be mounted."""
        digest = held.pushed.digest
        if await self._api.has(digest):
            await self._say(f"existing blob: {digest}")
            return True
        if held.repository != self._api.repository and await self._api.mount(
            digest, held.repository
        ):
            await self._say(f"mounted blob: {digest}")
            return True
        return False

    async def _upload(
        self, first: bytes, size: int, read_exactly: ReadExactly, read: Outcome[Blob]
    ) -> Blob:
        """Upload one layer from the stream as it arrives; return it as it came.

        Three stages overlap: reading the stream (and hashing what came, on a
        worker thread), compressing (and hashing what is sent, on another),
        and sending. Reading may run ``RUN_AHEAD`` bytes ahead of the sending
        (shared by the layers of one push), so that the next layer's upload
        starts while this one's last part is still being sent: the registry
        ingests two uploads at once faster than one.
        """
        source = Digests()
        await source.feed(first)  # tells the compression by its first bytes
        gzip = self._compression == "gzip" and source.compression == "none"
        compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31) if gzip else None
        sent = hashlib.sha256()
        sent_size = 0
        # Read chunks wait in memory, bounded by the run-ahead allowance; sent ones, by PIPELINE.
        send_read, receive_read = anyio.create_memory_object_stream[bytes](math.inf)
        # Each sent chunk says whether it holds a run-ahead permit, given back once it is sent.
        send_out, receive_out = anyio.create_memory_object_stream[tuple[bytes, bool]](PIPELINE)
        came: list[Blob] = []

        async def read_all() -> None:
            async with send_read:
                await send_read.send(first)
                remaining = size - len(first)
                while remaining:
                    await self._ahead.acquire()  # given back once sent
                    chunk = await read_exactly(min(CHUNK, remaining))
                    remaining -= len(chunk)
                    await source.feed(chunk)
                    await send_read.send(chunk)
            came.append(source.blob(size))
            read.set_value(came[0])

        def compress(chunk: bytes) -> bytes:
            if compressor is None:
                return chunk  # sent as it came: its digest is the source's
            out = compressor.compress(chunk)
            sent.update(out)
            return out

        async def compress_all() -> None:
            nonlocal sent_size
            async with send_out, receive_read:
                async for chunk in receive_read:
                    out = await anyio.to_thread.run_sync(compress, chunk)
                    sent_size += len(out)
                    await send_out.send((out, True))
                if compressor is not None:
                    tail = compressor.flush()
                    sent.update(tail)
                    sent_size += len(tail)
                    await send_out.send((tail, False))

        async def chunks() -> AsyncIterator[bytes]:
            async with receive_out:
                async for out, counted in receive_out:
                    if out:
                        yield out
                    if counted:
                        self._ahead.release()

        def sent_digest() -> str:
            """Asked once everything was sent: the stream's own digest, unless compressed here."""
            return f"sha256:{sent.hexdigest()}" if gzip else came[0].digest

        try:
            await run_all(read_all, compress_all, lambda: self._api.upload(chunks(), sent_digest))
        finally:  # also those of a stage that never started (the upload's POST went unanswered)
            for stream in (send_read, receive_read, send_out, receive_out):
                stream.close()
        blob = came[0]
        digest = f"sha256:{sent.hexdigest()}" if gzip else blob.digest
        compression = "gzip" if gzip else blob.compression
        self.pushed[blob.digest] = Blob(digest, sent_size, compression, blob.diff_id)
        await self._say(f"pushed blob: {digest} ({sent_size} bytes)")
        return blob

    async def content(self, blob: Blob) -> bytes | None:
        return self._memory.get(blob.digest)

    async def push_held(self, blob: Blob, *, layer: bool) -> Blob:
        """Push a blob held in memory (the config, a small layer); return it as pushed."""
        data = self._memory[blob.digest]
        compression = blob.compression
        if self._compression == "gzip" and layer and compression == "none":
            data = await anyio.to_thread.run_sync(_gzip, data)
            compression = "gzip"
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        async with self._cache.claim(digest):  # pushes at once: one uploads, the other mounts
            holder = self._cache.holder(digest)
            if await self._api.has(digest):
                await self._say(f"existing blob: {digest}")
            elif holder not in (None, self._api.repository) and await self._api.mount(
                digest, holder
            ):
                await self._say(f"mounted blob: {digest}")
            else:
                await self._api.put_blob(data, digest)
                await self._say(f"pushed blob: {digest} ({len(data)} bytes)")
            self._cache.holds(digest, self._api.repository)
        return Blob(digest, len(data), compression, blob.diff_id)


def _gzip(data: bytes) -> bytes:
    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


async def _read(read_exactly: ReadExactly, size: int, *, keep: bool = True) -> bytes:
    """Read ``size`` bytes a chunk at a time; with ``keep=False`` drop them."""
    parts = []
    while size:
        chunk = await read_exactly(min(CHUNK, size))
        size -= len(chunk)
        if keep:
            parts.append(chunk)
    return b"".join(parts)


class NativePusher:
    """Pushes over HTTP from this process (see the module docstring)."""

    def __init__(self, engine: Engine, ready: Ready, *, direct: bool = True) -> None:
        self._engine = engine
        self._ready = ready
        self._may_go_direct = direct
        """False with a tunnel: everything goes through it, as the caller asked."""
        self._cache = BlobCache()
        """The layers this registry's native pushes put in it, to skip or mount them."""
        self._direct: str | None = None
        """Where pushes go: the container's own address, or "" for the published port."""
        self._choosing = anyio.Lock()

    def check(self, job: Job) -> None:
        pass  # every job is one it can push

    async def push(self, job: Job) -> PushResult:
        compression: LayerCompression = job.layer_compression or DEFAULT_COMPRESSION
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
        engine_platform: Callable[[], Awaitable[Platform]],
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

        broken = fail or functools.partial(ExportError, image)
        async with self._registry_api(job) as (api, endpoints):
            store: _Store | None = None
            try:
                async with beside() as start_soon:  # the exit waits for every layer's upload
                    store = _Store(
                        image,
                        api,
                        self._cache,
                        compression,
                        report.say,
                        start_soon,
                        trusted_names=fail is None,
                        fail=broken,
                    )
                    unpacker = Unpacker(image, read_counted, store, fail=broken)
                    await unpacker.run()
                if platforms is None:
                    chosen = await unpacker.choose(platform, engine_platform)
                    manifest = await self._push_image(api, store, chosen)
                    await api.put_manifest(job.reference.tag, manifest, OCI_MANIFEST)
                else:
                    manifests = []
                    for each in await unpacker.choose_many(platforms):
                        one = await self._push_image(api, store, each)
                        # An index may name only manifests the registry holds.
                        await api.put_manifest(_digest(one), one, OCI_MANIFEST)
                        manifests.append((one, each.platform))
                    manifest = index_json(manifests)
                    await api.put_manifest(job.reference.tag, manifest, OCI_INDEX)
            except FormatError as exc:  # the tar reader's, from a layer's upload beside the reading
                self._forget(store)
                raise broken(str(exc)) from None
            except BaseException:  # the registry's refusal included: _registry_api says it
                self._forget(store)
                raise
        return await _finish(job, endpoints, manifest)

    @staticmethod
    async def _push_image(api: distribution.Api, store: _Store, image: Image) -> bytes:
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
        host reaches it, else through the published port (``pull_endpoint``).

        Docker's published port goes through docker-proxy, which copies every
        byte once more. A local Docker engine that is not rootless puts its
        networks on this host, where the container's address answers
        directly. Podman forwards its ports in the kernel, and gains nothing
        from it (``benchmarks/registry_versions.py``). A TLS registry's
        certificate does not name that address. Chosen once per registry.
        With ``tunnel=True`` nothing is tried: the caller said that this host
        may not reach the engine's networks.
        """
        if not self._may_go_direct:
            return running.endpoints.pull_endpoint
        async with self._choosing:
            if self._direct is None:
                self._direct = await self._direct_address(running) or ""
        return self._direct or running.endpoints.pull_endpoint

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

    def _forget(self, store: _Store | None) -> None:
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
        fail = functools.partial(InvalidSourceError, path)
        async with opened(path, "rb") as file:
            return await self._push_save(
                str(path),
                file_reader(file),
                job,
                compression,
                platform=None,
                engine_platform=one_image_only(fail),
                fail=fail,
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


def _digest(manifest: bytes) -> str:
    """What the registry names a manifest (or an index): the digest of its bytes."""
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"


async def _finish(job: Job, endpoints: Endpoints, manifest: bytes) -> PushResult:
    """Tell the pushed digest as crane does (``ENDPOINT/REPO@DIGEST``); report the end."""
    digest = _digest(manifest)
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
