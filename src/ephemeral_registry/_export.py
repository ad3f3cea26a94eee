"""The glue between the engine and the ``docker save`` reader (``_oci.save``).

Here a local image is exported (``docker save``) for crane, into a
temporary directory, as an OCI image layout, in one streamed pass. A
caller's tarball is checked here too. And here the reader's ``FormatError``
becomes the library's error, once (``reading``): ``ExportError`` for the
engine's export, ``InvalidSourceError`` for a caller's tarball,
``ImageNotFoundError`` for a platform the save does not hold.

The tar stream is unpacked as it arrives into an OCI image layout, each
member written once, as a blob named by its digest. Compressed layers
(gzip, zstd: a containerd image store keeps them so) are recognised by their
content and keep their compression. Uncompressed ones stay so with layer
compression ``none``; with ``gzip`` each is gzipped here once the image is
chosen (ISA-L, level 1, as the native pusher does), into a new blob that
replaces it, so crane pushes the same image as the native pusher.

Memory stays constant: data goes from the engine's socket to disk a chunk at
a time (decompression for the check is bounded too).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
import anyio.to_thread
from anyio import Path as AsyncPath
from isal import isal_zlib

from . import _scratch
from ._concurrency import opened
from ._engine import Engine
from ._errors import EphemeralRegistryError, ExportError, ImageNotFoundError
from ._oci.content import Blob, read_blob, sha256_of
from ._oci.documents import MAX_DOCUMENT
from ._oci.errors import FormatError, NotForPlatform
from ._oci.manifests import index_json, manifest_json
from ._oci.media_types import OCI_INDEX, OCI_MANIFEST
from ._oci.save import CheckStore, EnginePlatform, Image, Unpacker
from ._oci.stream import CHUNK, ReadExactly, file_reader
from ._oci.threads import check_cancelled
from ._options import LayerCompression
from ._platform import Platform, Platforms

logger = logging.getLogger("ephemeral_registry")
EXPORT_PREFIX = "ephemeral-registry-export-"
"""The name of each temporary export's directory begins so (``_scratch``'s kind ``export``)."""

GZIP_LEVEL = 1
"""The gzip level of uncompressed layers gzipped here: the native pusher's (``_pushers.upload``)."""

Fail = Callable[[str], EphemeralRegistryError]
"""Makes the error for a problem with the input: whose input it was decides its type."""


@dataclass(frozen=True)
class Layout:
    """An OCI image layout written by ``unpack_save``."""

    path: Path
    manifest_digest: str
    """The digest of what its ``index.json`` names: the image's manifest, or the index of
    the images of several platforms."""
    images: tuple[Image, ...]
    """The images it holds: one, unless several platforms were asked for."""
    size: int
    """The bytes of all blobs written, less those of the layers replaced by their gzip."""


class _LayoutStore:
    """Every file of the save written once, as a blob of an OCI layout named by its digest."""

    def __init__(self, layout: Path) -> None:
        self.blobs = layout / "blobs" / "sha256"
        self.written = 0

    def path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        temporary = self.blobs / ".partial"  # one file at a time: the stream is sequential
        async with opened(temporary, "wb") as file:
            blob = await read_blob(read_exactly, size, file.write)
        await AsyncPath(temporary).rename(self.path(blob.digest))
        self.written += size
        return blob

    async def gzipped(self, blob: Blob) -> Blob:
        """The uncompressed layer ``blob`` gzipped into a new blob, which replaces it.

        Cancellation: stops at the next chunk; the partial file stays for the
        layout's owner to remove.
        """
        source, temporary = self.path(blob.digest), self.blobs / ".gzipping"
        digest, size = await anyio.to_thread.run_sync(_gzip_file, source, temporary)
        await AsyncPath(temporary).rename(self.path(digest))
        await AsyncPath(source).unlink()  # the layout does not hold both: disk space
        self.written += size - blob.size
        return Blob(digest, size, "gzip", blob.diff_id)

    async def content(self, blob: Blob) -> bytes | None:
        if blob.size > MAX_DOCUMENT:
            return None
        return await AsyncPath(self.path(blob.digest)).read_bytes()

    async def write(self, document: bytes) -> int:
        """Add a document this library made (a manifest, an index); return its size."""
        await AsyncPath(self.path(sha256_of(document))).write_bytes(document)
        return len(document)


def _gzip_file(source: Path, target: Path) -> tuple[str, int]:
    """Gzip ``source`` into ``target`` a chunk at a time; return what was written's digest
    and size (blocking: on a worker thread, whose task's cancellation is checked between
    chunks)."""
    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reading_file, target.open("wb") as writing_file:
        while True:
            check_cancelled()
            chunk = reading_file.read(CHUNK)
            out = compressor.compress(chunk) if chunk else compressor.flush()
            digest.update(out)
            writing_file.write(out)
            size += len(out)
            if not chunk:
                return f"sha256:{digest.hexdigest()}", size


async def gzip_layers(store: _LayoutStore, images: list[Image]) -> list[Image]:
    """``images`` with each uncompressed layer gzipped into the layout (``_LayoutStore.gzipped``),
    each once, however many images name it; compressed layers and configs as they are.

    Cancellation: stops at the next chunk; what was written stays for the layout's owner.
    """
    done: dict[str, Blob] = {}
    result = []
    for image in images:
        layers = []
        for layer in image.layers:
            if layer.compression == "none":
                if layer.digest not in done:
                    done[layer.digest] = await store.gzipped(layer)
                layer = done[layer.digest]
            layers.append(layer)
        result.append(dataclasses.replace(image, layers=layers))
    return result


@dataclass(frozen=True)
class Export:
    """An image exported for a push, in a temporary directory."""

    path: Path
    """The OCI layout."""
    layout: Layout
    """The layout as it was written (its blobs' sizes, say)."""


@asynccontextmanager
async def exported(
    engine: Engine,
    image: str,
    *,
    platform: Platform | None,
    platforms: Platforms | None = None,
    layer_compression: LayerCompression,
    timeout: float,
    session: str | None = None,
    on_bytes: Callable[[int], Awaitable[None]] | None = None,
) -> AsyncIterator[Export]:
    """``image`` exported into a temporary directory, for a push; removed on exit.

    Yields an OCI layout (see ``export_image``), its uncompressed layers
    gzipped with ``layer_compression="gzip"``. ``on_bytes`` is told each
    piece of the engine's export as it is read (the gzipping tells nothing).
    The directory's name carries this process and ``session`` (see ``_scratch``):
    should the process be killed, a sweep removes it.

    Cancellation: the export stops, and the directory is removed.
    """
    with _scratch.made("export", session=session) as directory:
        source = Path(directory) / "layout"
        layout = await export_image(
            engine,
            image,
            source,
            platform=platform,
            platforms=platforms,
            layer_compression=layer_compression,
            timeout=timeout,
            on_bytes=on_bytes,
        )
        logger.debug("exported %s (%d bytes)", image, layout.size)
        yield Export(source, layout)


CHECK_BUDGET = 64 << 20
"""The most bytes of JSON documents a tarball's check holds at once."""


async def check_tarball(path: Path, *, fail: Fail, platform: Platform | None = None) -> Image:
    """Read a ``docker save`` tarball through the same reader as a native push, keeping
    nothing but its JSON documents: every layer hashed, decompressed where compressed,
    and checked against its config. Return the image it holds.

    Raises:
        What ``fail`` makes: the file is not a usable ``docker save``, or a layer
            is corrupt or does not match its config.

    Cancellation: stops at the next chunk; nothing is left open.
    """
    with reading(str(path), fail):
        async with opened(path, "rb") as file:
            unpacker = Unpacker(file_reader(file), CheckStore(CHECK_BUDGET))
            await unpacker.run()
            return await unpacker.choose(platform, None)


async def export_image(
    engine: Engine,
    image: str,
    layout: Path,
    *,
    platform: Platform | None,
    platforms: Platforms | None = None,
    layer_compression: LayerCompression = "none",
    timeout: float,
    on_bytes: Callable[[int], Awaitable[None]] | None = None,
) -> Layout:
    """Export ``image`` from the engine into an OCI layout at ``layout`` (an empty directory).

    ``platform=None`` takes the only image there is, or else the engine's own
    platform; ``platforms`` makes it an index of several; ``layer_compression``
    says what becomes of uncompressed layers (see ``unpack_save``).
    ``timeout`` bounds the whole export, the gzipping included.

    Raises:
        ImageNotFoundError: the save holds no image for ``platform``.
        DockerEngineError: the engine refused (status 404: the image went away).
        ExportError: the stream broke off, is not a ``docker save``, or a
            layer does not match its config.
        EngineTimeoutError: the export took longer than ``timeout``.

    Cancellation: stops at the next chunk; what was written stays in
    ``layout`` for its owner to remove.
    """
    async with engine.export(image, timeout=timeout) as content:
        read_exactly: ReadExactly = content.readexactly
        if on_bytes is not None:
            told = on_bytes

            async def read_exactly(size: int) -> bytes:
                data = await content.readexactly(size)
                await told(len(data))
                return data

        return await unpack_save(
            image,
            read_exactly,
            layout,
            platform=platform,
            platforms=platforms,
            layer_compression=layer_compression,
            engine_platform=engine.platform,
        )


async def unpack_save(
    image: str,
    read_exactly: ReadExactly,
    layout: Path,
    *,
    platform: Platform | None = None,
    platforms: Platforms | None = None,
    layer_compression: LayerCompression = "none",
    engine_platform: EnginePlatform,
) -> Layout:
    """Read a ``docker save`` tar stream and write one of its images as an OCI layout at ``layout``.

    The image is the one for ``platform``; with ``platform=None``, the only
    one the save holds, whatever its platform, or else the one for
    ``engine_platform()`` (asked only then: it is a request to the engine).
    With ``platforms`` (``"all"``, or a tuple) the layout's ``index.json``
    names an image index instead: of every complete image the save holds,
    or of the one for each platform named. ``layout`` must be an empty
    directory.

    Compressed layers keep their compression. Uncompressed ones stay so with
    ``layer_compression="none"``; with ``"gzip"`` each chosen image's are
    gzipped (``gzip_layers``): the manifest names the gzipped blob, the
    config (its diff_ids) is unchanged, the uncompressed blob is removed.

    Raises:
        ImageNotFoundError: no image for ``platform`` (or one of ``platforms``).
        ExportError: the stream is cut short, is not a ``docker save``,
            or a layer does not match its config.

    Cancellation: stops at the next chunk; what was written stays in
    ``layout`` for its owner to remove.
    """
    store = _LayoutStore(layout)
    await AsyncPath(store.blobs).mkdir(parents=True)
    with reading(image, functools.partial(ExportError, image)):
        unpacker = Unpacker(read_exactly, store)
        await unpacker.run()
        if platforms is None:
            chosen = [await unpacker.choose(platform, engine_platform)]
        else:
            chosen = await unpacker.choose_many(platforms)
    if layer_compression == "gzip":
        chosen = await gzip_layers(store, chosen)
    written = store.written
    manifests = [manifest_json(one.config, one.layers) for one in chosen]
    for manifest in manifests:
        written += await store.write(manifest)
    if platforms is None:
        top, media_type = manifests[0], OCI_MANIFEST
    else:
        top = index_json([(m, one.platform) for m, one in zip(manifests, chosen, strict=True)])
        media_type = OCI_INDEX
        written += await store.write(top)
    top_digest = sha256_of(top)
    index_json_file = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": top_digest, "size": len(top)}],
    }
    # The engine's own index.json, if any, is a blob now; this one names what was chosen.
    await (AsyncPath(layout) / "index.json").write_text(json.dumps(index_json_file))
    await (AsyncPath(layout) / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return Layout(layout, top_digest, tuple(chosen), written)


@contextmanager
def reading(image: str, fail: Fail) -> Iterator[None]:
    """The ``docker save`` reader's errors, raised in the block, as the library's: the one
    place they are translated.

    Raises:
        ImageNotFoundError: the save holds no image for the platform asked for.
        What ``fail`` makes: any other ``FormatError`` (not a usable ``docker save``).
    """
    try:
        yield
    except NotForPlatform as exc:
        raise ImageNotFoundError(image, platform=exc.wanted, available=exc.available) from None
    except FormatError as exc:
        raise fail(str(exc)) from None
