"""The native pusher's upload pipeline: a ``docker save`` stream's layers go into the
registry while the stream is read, one upload session each (``POST``, one streamed
``PATCH``, ``PUT ?digest=``).

A layer goes through three stages, which overlap, each its own task:

1. read: its chunks are taken from the stream (``read_blob``) and hashed on a
   worker thread, as it came (its digest and its uncompressed content's, for
   the diff_id check); each chunk takes a permit of the run-ahead allowance
   first;
2. compress: each chunk is gzipped (ISA-L, level 1, on a worker thread) and
   what is sent is hashed, unless the layer is sent as it came (compressed
   already, or ``layer_compression="none"``); at most ``PIPELINE`` chunks
   wait for the next stage;
3. send: the chunks are the body of the upload's ``PATCH``; each chunk's
   permit is given back once it is sent; the ``PUT`` names the digest of what
   was sent, known only then.

The run-ahead allowance (``RUN_AHEAD``, 16 MiB, shared by the layers of one
push) lets reading go on past a layer still being sent: the next layer's
upload starts while one's last part is still on its way, and the registry
ingests two uploads at once faster than one. Memory stays bounded whatever
the image's size: the run-ahead, plus the small files held (the config, the
save's JSON documents, tiny layers: ``MEMORY_BUDGET``), which go up once the
image is known (``push_held``).

Blobs are not uploaded twice. A layer is named by its content in every
engine's save (``blobs/sha256/<digest>``, Podman's ``<diff_id>.tar``, Docker
20.10's ``<layer id>/layer.tar``): the registry's ``BlobCache`` remembers
what each name became, so a layer that the repository already holds is
skipped (``HEAD``), and one that another repository of the registry holds is
mounted (``?mount=&from=``). Pushes at once wait for each other's upload of
a shared layer instead of uploading it twice.

Cancellation: the upload session under way is cancelled (``DELETE``,
shielded and bounded, by ``distribution``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
from isal import isal_zlib

from .._concurrency import Outcome, StartSoon, run_all
from .._oci import documents
from .._oci.content import Blob, compression_of, read_blob, sha256_of
from .._oci.errors import FormatError
from .._oci.stream import CHUNK, ReadExactly
from .._options import LayerCompression
from . import distribution

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
_CONTENT_NAMED = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Held:
    """A layer the registry holds: as it was in the save, as pushed, and where."""

    source: Blob
    pushed: Blob
    repository: str


@dataclass
class BlobCache:
    """What one registry holds, by the content-derived names of the layers in engines'
    exports (and how they were sent: gzipped or as they came).

    A name is a hint, never trusted alone: a push that reuses an entry hashes
    the member it skips and fails if the content differs (``UploadStore._send``).
    Only exports of the engine record names (a tarball from elsewhere could
    name anything), and the entries of a push that fails are forgotten, so a
    bad push cannot make a later good one fail.
    """

    _held: dict[str, Held] = field(default_factory=dict)
    _busy: dict[str, anyio.Event] = field(default_factory=dict)
    _where: dict[str, str] = field(default_factory=dict)
    """Blob digest: a repository that holds it (for small blobs, pushed from memory)."""

    @asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[Held | None]:
        """What ``name`` became, if known; others pushing the same name wait meanwhile."""
        while name in self._busy:
            await self._busy[name].wait()
        done = self._busy[name] = anyio.Event()
        try:
            yield self._held.get(name)
        finally:
            del self._busy[name]
            done.set()

    def record(self, name: str, held: Held) -> None:
        self._held[name] = held

    def forget(self, names: set[str]) -> None:
        for name in names:
            self._held.pop(name, None)

    def holder(self, digest: str) -> str | None:
        """A repository of the registry known to hold the blob ``digest``."""
        return self._where.get(digest)

    def holds(self, digest: str, repository: str) -> None:
        self._where.setdefault(digest, repository)


class UploadStore:
    """A BlobStore (``_oci.save``) that uploads the save's layers as they stream and holds
    the rest (small files, JSON documents) until the image is known."""

    def __init__(
        self,
        api: distribution.Api,
        cache: BlobCache,
        compression: LayerCompression,
        say: Callable[[str], Awaitable[None]],
        start_soon: StartSoon,
        *,
        trusted_names: bool,
    ) -> None:
        self._trusted_names = trusted_names
        """Whether the member names come from the engine (content-derived), for the cache."""
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
            parts: list[bytes] = []

            async def hold(chunk: bytes) -> None:
                parts.append(chunk)

            blob = await read_blob(read_exactly, size, hold, first=first)
            if blob.digest not in self._memory:
                self._held_bytes += size
                self._memory[blob.digest] = b"".join(parts)
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
                self._ahead.release()
                came = await read_blob(read_exactly, size, first=first)
                if came.digest != held.source.digest:
                    raise FormatError(
                        f"its member {name:.200} holds {came.digest}, but the layer of that name"
                        f" pushed into this registry before was {held.source.digest}"
                    )
                self.pushed[held.source.digest] = held.pushed
                read.set_value(held.source)
                return
            source = await self._upload(first, size, read_exactly, read)
            pushed = self.pushed[source.digest]
            self._cache.record(key, Held(source, pushed, self._api.repository))
            self.recorded.add(key)

    async def _reuse(self, held: Held) -> bool:
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

        The three stages of the module docstring, one task each, joined by two
        memory streams: ``read_all`` -> ``compress_all`` -> ``chunks`` (the
        body of the upload's one ``PATCH``).
        """
        gzip = self._compression == "gzip" and compression_of(first) == "none"
        compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31) if gzip else None
        sent = hashlib.sha256()
        sent_size = 0
        # Read chunks wait in memory, bounded by the run-ahead allowance; sent ones, by PIPELINE.
        send_read, receive_read = anyio.create_memory_object_stream[bytes](math.inf)
        # Each sent chunk says whether it holds a run-ahead permit, given back once it is sent.
        send_out, receive_out = anyio.create_memory_object_stream[tuple[bytes, bool]](PIPELINE)
        came: list[Blob] = []

        async def paced(chunk_size: int) -> bytes:
            await self._ahead.acquire()  # given back once sent
            return await read_exactly(chunk_size)

        async def read_all() -> None:
            async with send_read:
                came.append(await read_blob(paced, size, send_read.send, first=first))
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
        digest = sha256_of(data)
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
