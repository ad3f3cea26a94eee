"""The glue between the engine and the ``docker save`` reader (``_oci.save``).

Here a local image is exported (``docker save``) for crane, into a
temporary directory: as an OCI image layout, in one streamed pass, or as
the tarball the engine wrote, checked. A caller's tarball is checked here
too. And here the reader's ``FormatError`` becomes the library's error,
once (``reading``): ``ExportError`` for the engine's export,
``InvalidSourceError`` for a caller's tarball, ``ImageNotFoundError`` for a
platform the save does not hold.

The tar stream is unpacked as it arrives into an OCI image layout, each
member written once, as a blob named by its digest. Layers are pushed as
they came: uncompressed ones stay uncompressed (crane would otherwise gzip
each layer twice; for a registry on the same machine that is pure CPU cost),
compressed ones are recognised by their content and keep their compression.

Memory stays constant: data goes from the engine's socket to disk a chunk at
a time (decompression for the check is bounded too).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import Path as AsyncPath

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
from ._oci.stream import ReadExactly, file_reader
from ._platform import Platform, Platforms

logger = logging.getLogger("ephemeral_registry")
EXPORT_PREFIX = "ephemeral-registry-export-"
"""The name of each temporary export's directory begins so (``_scratch``'s kind ``export``)."""

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
    """The bytes of all blobs written."""


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

    async def content(self, blob: Blob) -> bytes | None:
        if blob.size > MAX_DOCUMENT:
            return None
        return await AsyncPath(self.path(blob.digest)).read_bytes()

    async def write(self, document: bytes) -> int:
        """Add a document this library made (a manifest, an index); return its size."""
        await AsyncPath(self.path(sha256_of(document))).write_bytes(document)
        return len(document)


@dataclass(frozen=True)
class Export:
    """An image exported for a push, in a temporary directory."""

    path: Path
    """The OCI layout, or the ``docker save`` tarball."""
    layout: Layout | None
    """The layout as it was written (its blobs' sizes, say); ``None`` for a tarball."""


@asynccontextmanager
async def exported(
    engine: Engine,
    image: str,
    *,
    platform: Platform | None,
    platforms: Platforms | None = None,
    as_tarball: bool,
    timeout: float,
    session: str | None = None,
    on_bytes: Callable[[int], Awaitable[None]] | None = None,
) -> AsyncIterator[Export]:
    """``image`` exported into a temporary directory, for a push; removed on exit.

    Yields an OCI layout (see ``export_image``) or, ``as_tarball``, the
    ``docker save`` tarball as the engine wrote it (crane then gzips its layers).
    ``on_bytes`` is told each piece of the engine's export as it is read.
    The directory's name carries this process and ``session`` (see ``_scratch``):
    should the process be killed, a sweep removes it.

    Cancellation: the export stops, and the directory is removed.
    """
    with _scratch.made("export", session=session) as directory:
        layout = None
        if as_tarball:
            source = Path(directory) / "image.tar"
            size = await engine.save_image(image, source, timeout=timeout, on_bytes=on_bytes)
            await check_tarball(source, fail=functools.partial(ExportError, image))
        else:
            source = Path(directory) / "layout"
            layout = await export_image(
                engine,
                image,
                source,
                platform=platform,
                platforms=platforms,
                timeout=timeout,
                on_bytes=on_bytes,
            )
            size = layout.size
        logger.debug("exported %s (%d bytes)", image, size)
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
    timeout: float,
    on_bytes: Callable[[int], Awaitable[None]] | None = None,
) -> Layout:
    """Export ``image`` from the engine into an OCI layout at ``layout`` (an empty directory).

    ``platform=None`` takes the only image there is, or else the engine's own
    platform; ``platforms`` makes it an index of several (see ``unpack_save``).
    ``timeout`` bounds the whole export.

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
            engine_platform=engine.platform,
        )


async def unpack_save(
    image: str,
    read_exactly: ReadExactly,
    layout: Path,
    *,
    platform: Platform | None = None,
    platforms: Platforms | None = None,
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
