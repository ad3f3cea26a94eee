"""Exporting a local image (``docker save``) as an OCI image layout, in one streamed pass.

What ``docker save`` writes differs by engine:

- Docker 20.10: ``<id>/layer.tar`` files, ``<id>.json`` configs, ``manifest.json``;
- Podman: ``<digest>.tar`` layers, ``<digest>.json`` config, ``manifest.json``;
- Docker 25 and later: an OCI layout (``blobs/sha256/...``, ``index.json``)
  plus ``manifest.json``; with the containerd image store, layers stay as the
  store keeps them (gzip or zstd compressed, as pulled or built), and an
  image may be an index of several platforms, of which ``manifest.json``
  lists only the engine's own.

The tar stream is unpacked as it arrives into an OCI image layout, each
member written once, as a blob named by its digest. Where the save has an
``index.json``, the image is found through it (so that any platform it holds
can be chosen); elsewhere through ``manifest.json``. Layers are pushed as
they came: uncompressed ones stay uncompressed (crane would otherwise gzip
each layer twice; for a registry on the same machine that is pure CPU cost),
compressed ones are recognised by their content and keep their compression.
Every layer is checked against the ``diff_id`` its config names, over its
uncompressed content: a mismatch is an error, never a silently corrupt image.

Memory stays constant: data goes from the engine's socket to disk a chunk at
a time (decompression for the check is bounded too).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio.to_thread

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import AsyncFile
from anyio import Path as AsyncPath

from . import _scratch
from ._concurrency import opened
from ._engine import Engine
from ._errors import EphemeralRegistryError, ExportError, ImageNotFoundError
from ._oci.content import Blob, Compression, Config, Digests, read_config, strings
from ._oci.documents import MAX_DOCUMENT, kind_of, parse_array, parse_object
from ._oci.errors import FormatError
from ._oci.layout import check_digest
from ._oci.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)
from ._oci.tar import TarReader
from ._oci.threads import check_cancelled
from ._platform import Platform, Platforms

logger = logging.getLogger("ephemeral_registry")
EXPORT_PREFIX = "ephemeral-registry-export-"
"""The name of each temporary export's directory begins so (``_scratch``'s kind ``export``)."""

ReadExactly = Callable[[int], Awaitable[bytes]]

T = TypeVar("T")
Fail = Callable[[str], EphemeralRegistryError]
"""Makes the error for a problem with the input: whose input it was decides its type."""

CHUNK = 1 << 20
MAX_MEMBERS = 100_000
"""The most files and links of a save that are indexed (a save of 127 layers has about 400)."""
MAX_NAME_BYTES = 16 << 20
"""The most bytes of member names and link targets indexed, in all."""
MAX_MANIFESTS = 1024
"""The most distinct manifests and indexes an index.json may lead to, and the most images
a manifest.json may list."""
MAX_DESCRIPTORS = 4 * MAX_MANIFESTS
"""The most descriptors its indexes may hold in all, those that repeat included."""
LAYER_TYPES: dict[Compression, str] = {
    "none": OCI_LAYER,
    "gzip": OCI_LAYER_GZIP,
    "zstd": OCI_LAYER_ZSTD,
}
MAX_LINKS = 8


@dataclass(frozen=True)
class Image:
    """One image the save holds: its platform, config and layers."""

    platform: Platform
    config: Blob
    layers: list[Blob]


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


class BlobStore(Protocol):
    """Where the files of a ``docker save`` stream go as they are read."""

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        """Read the ``size`` bytes of the member ``name``; describe them as they came."""
        ...

    async def content(self, blob: Blob) -> bytes | None:
        """The bytes of a blob kept earlier (a JSON document of the save); None where the
        store did not keep them (over its budget)."""
        ...


class _LayoutStore:
    """Every file of the save written once, as a blob of an OCI layout named by its digest."""

    def __init__(self, layout: Path) -> None:
        self.blobs = layout / "blobs" / "sha256"
        self.written = 0

    def path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        digests = Digests()
        temporary = self.blobs / ".partial"  # one file at a time: the stream is sequential
        async with opened(temporary, "wb") as file:
            remaining = size
            while remaining:
                chunk = await read_exactly(min(CHUNK, remaining))
                remaining -= len(chunk)
                await digests.feed(chunk)
                await file.write(chunk)
        blob = digests.blob(size)
        await AsyncPath(temporary).rename(self.path(blob.digest))
        self.written += size
        return blob

    async def content(self, blob: Blob) -> bytes | None:
        if blob.size > MAX_DOCUMENT:
            return None
        return await AsyncPath(self.path(blob.digest)).read_bytes()

    async def write(self, document: bytes) -> int:
        """Add a document this library made (a manifest, an index); return its size."""
        await AsyncPath(self.path("sha256:" + hashlib.sha256(document).hexdigest())).write_bytes(
            document
        )
        return len(document)


class CheckStore:
    """A BlobStore that only checks: it hashes every file (and inflates compressed ones, for
    the diff_id check) and keeps just the JSON documents, within ``budget`` bytes in all.

    It is how a tarball for crane goes through the same reader as a native push.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._documents: dict[str, bytes] = {}

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        digests = Digests()
        document = size <= min(MAX_DOCUMENT, self._budget)
        parts: list[bytes] = []
        remaining = size
        while remaining:
            chunk = await read_exactly(min(CHUNK, remaining))
            remaining -= len(chunk)
            await digests.feed(chunk)
            if document and (parts or chunk[:1] in (b"{", b"[")):
                parts.append(chunk)
            else:
                document = False
        blob = digests.blob(size)
        if document and parts:
            self._budget -= size
            self._documents[blob.digest] = b"".join(parts)
        return blob

    async def content(self, blob: Blob) -> bytes | None:
        return self._documents.get(blob.digest)


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
    async with opened(path, "rb") as file:
        unpacker = Unpacker(str(path), file_reader(file), CheckStore(CHECK_BUDGET), fail=fail)
        await unpacker.run()
        return await unpacker.choose(platform, one_image_only(fail))


def file_reader(file: AsyncFile[bytes]) -> ReadExactly:
    """``read_exactly`` over an open file: ``EOFError`` where the file ends first."""

    async def read_exactly(size: int) -> bytes:
        data = await file.read(size)
        if len(data) < size:
            raise EOFError
        return data

    return read_exactly


def one_image_only(fail: Fail) -> Callable[[], Awaitable[Platform]]:
    """The ``engine_platform`` of a tarball: there is no engine to ask which of several
    images to take, so several are an error."""

    async def no_platform() -> Platform:
        raise fail("it holds several images; give a tarball of exactly one image")

    return no_platform


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
    engine_platform: Callable[[], Awaitable[Platform]],
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
    unpacker = Unpacker(image, read_exactly, store)
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
    top_digest = "sha256:" + hashlib.sha256(top).hexdigest()
    index_json_file = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": top_digest, "size": len(top)}],
    }
    # The engine's own index.json, if any, is a blob now; this one names what was chosen.
    await (AsyncPath(layout) / "index.json").write_text(json.dumps(index_json_file))
    await (AsyncPath(layout) / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return Layout(layout, top_digest, tuple(chosen), written)


class Unpacker:
    """Reads a ``docker save`` tar stream into a ``BlobStore``, then finds the image in it.

    Any input ends in a result or in the error ``fail`` makes (by default an
    ``ExportError`` naming ``image``): the tar is read by the one tar reader
    (``_oci.tar``); JSON documents are parsed on a worker thread within the
    bounds of ``_oci.documents`` (size, nesting, tokens) and checked for type
    there, each config once however many images name it; an index's
    descriptors are checked against the digest grammar; and what is indexed
    is bounded (``MAX_MEMBERS``, ``MAX_MANIFESTS``, ``MAX_DESCRIPTORS``).
    """

    def __init__(
        self, image: str, read_exactly: ReadExactly, store: BlobStore, *, fail: Fail | None = None
    ) -> None:
        self._image = image
        self._tar = TarReader(read_exactly)
        self._store = store
        self._fail = fail or functools.partial(ExportError, image)
        self._files: dict[str, Blob] = {}
        self._links: dict[str, str] = {}
        self._name_bytes = 0
        self._configs: dict[str, Config] = {}

    def broken(self, problem: str) -> EphemeralRegistryError:
        return self._fail(problem)

    async def run(self) -> None:
        """Read the whole stream, handing each regular file to the store."""
        try:
            await self._run()
        except FormatError as exc:
            raise self.broken(str(exc)) from None

    async def _run(self) -> None:
        async for member in self._tar.members():
            if member.kind == "other":
                continue
            if len(self._files) + len(self._links) >= MAX_MEMBERS:
                raise FormatError(f"it holds more than {MAX_MEMBERS} files and links")
            self._name_bytes += len(member.name) + len(member.link)
            if self._name_bytes > MAX_NAME_BYTES:
                raise FormatError(f"its member names take more than {MAX_NAME_BYTES} bytes")
            name = member.name
            if member.kind == "file":
                self._files[name] = await self._store.keep(name, member.size, self._tar.read)
            elif member.kind == "symlink":
                self._links[name] = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.link)
                )
            else:
                self._links[name] = posixpath.normpath(member.link)

    # Finding the image in what was unpacked. Documents are parsed on a worker thread,
    # within the bounds of _oci.documents, and typed there; each config once.

    def _member(self, name: str) -> Blob | None:
        """The file a member name stands for, following links (as for repeated layers)."""
        name = posixpath.normpath(name)
        for _ in range(MAX_LINKS):
            if name not in self._links:
                break
            name = self._links[name]
        return self._files.get(name)

    def _named(self, name: str) -> Blob:
        blob = self._member(name)
        if blob is None:
            raise FormatError(f"its manifest names {name:.200}, which the tar does not hold")
        return blob

    def _by_digest(self, digest: object) -> Blob | None:
        """A blob of the OCI layout by its digest; None where the save left it out."""
        try:
            algorithm, _, encoded = check_digest(digest).partition(":")
        except FormatError as exc:
            raise self.broken(str(exc)) from None
        blob = self._member(f"blobs/{algorithm}/{encoded}")
        if blob is not None and blob.digest != digest:
            raise self.broken(f"the blob named {digest} has the digest {blob.digest}")
        return blob

    async def _content(self, blob: Blob, what: str) -> bytes:
        content = await self._store.content(blob)
        if content is None:
            raise self.broken(
                f"{what} has {blob.size} bytes: over what is read (at most {MAX_DOCUMENT},"
                " and the save's small files held at once)"
            )
        return content

    async def _off_loop(self, read: Callable[[bytes, str], T], blob: Blob, what: str) -> T:
        """``read(content, what)`` of a JSON document of the save, on a worker thread."""
        content = await self._content(blob, what)
        try:
            return await anyio.to_thread.run_sync(read, content, what)
        except FormatError as exc:
            raise self.broken(str(exc)) from None

    async def _json(self, blob: Blob) -> dict[str, Any]:
        """A JSON object of the save (an index, a manifest)."""
        return await self._off_loop(parse_object, blob, f"the JSON document {blob.digest}")

    async def _config(self, blob: Blob) -> Config:
        """An image config of the save, typed; read once, however many images name it."""
        config = self._configs.get(blob.digest)
        if config is None:
            config = await self._off_loop(read_config, blob, f"the config {blob.digest}")
            self._configs[blob.digest] = config
        return config

    async def _oci_images(self, index: Blob) -> list[Image]:
        """The complete images an OCI layout's index leads to, through nested indexes;
        an entry that repeats is visited once."""
        images: list[Image] = []
        seen: set[str] = set()
        named = 0

        async def visit(descriptors: object, depth: int) -> None:
            nonlocal named
            if not isinstance(descriptors, list):
                raise self.broken("an index's manifests is not an array")
            for descriptor in descriptors:
                named += 1
                if named > MAX_DESCRIPTORS:
                    raise self.broken(f"its indexes name more than {MAX_DESCRIPTORS} manifests")
                if not isinstance(descriptor, dict):
                    raise self.broken("an index names a manifest by something not an object")
                blob = self._by_digest(descriptor.get("digest"))
                if blob is None or blob.digest in seen:  # a platform the engine does not hold
                    continue
                seen.add(blob.digest)
                if len(seen) > MAX_MANIFESTS:
                    raise self.broken(f"its index leads to more than {MAX_MANIFESTS} manifests")
                document = await self._json(blob)
                media_type = descriptor.get("mediaType") or document.get("mediaType")
                if not isinstance(media_type, str | None):
                    raise self.broken(f"the mediaType of {blob.digest} is not a string")
                if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) and depth < MAX_LINKS:
                    await visit(document.get("manifests", []), depth + 1)
                elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
                    image = await self._oci_image(document)
                    if image is not None:
                        images.append(image)

        await visit((await self._json(index)).get("manifests", []), 0)
        return images

    async def _oci_image(self, manifest: dict[str, Any]) -> Image | None:
        config_descriptor, layer_descriptors = manifest.get("config"), manifest.get("layers")
        if not isinstance(config_descriptor, dict) or not isinstance(layer_descriptors, list):
            raise self.broken("a manifest in its index.json is malformed")
        if not all(isinstance(layer, dict) for layer in layer_descriptors):
            raise self.broken("a manifest in its index.json is malformed")
        config = self._by_digest(config_descriptor.get("digest"))
        layers = [self._by_digest(layer.get("digest")) for layer in layer_descriptors]
        if config is None or None in layers:
            return None
        platform = (await self._config(config)).platform
        if platform.os == "unknown":  # an attestation, not an image
            return None
        return Image(platform, config, [layer for layer in layers if layer is not None])

    def _saved_entries(self, content: bytes, what: str) -> list[tuple[Blob, list[Blob]]]:
        """The config and layers of each image ``manifest.json`` lists, typed, and found in
        the tar (blocking: on a worker thread)."""
        entries = parse_array(content, what)
        if len(entries) > MAX_MANIFESTS:
            raise FormatError(f"its manifest.json lists more than {MAX_MANIFESTS} images")
        found = []
        for entry in entries:
            check_cancelled()
            if not isinstance(entry, dict):
                raise FormatError("its manifest.json is malformed: an entry is not an object")
            config, layers, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags")
            if not isinstance(config, str):
                raise FormatError(
                    f"its manifest.json is malformed: a Config is {kind_of(config)}, not a name"
                )
            if not strings(layers):
                raise FormatError("its manifest.json is malformed: Layers is not an array of names")
            if tags is not None and not strings(tags):  # null where an image has no tag
                raise FormatError(
                    "its manifest.json is malformed: RepoTags is not an array of tags"
                )
            found.append((self._named(config), [self._named(name) for name in layers]))
        return found

    async def _saved_images(self) -> list[Image]:
        """The images ``manifest.json`` lists (engines that write no index.json)."""
        manifest = self._member("manifest.json")
        if manifest is None:
            raise self.broken("no manifest.json: not a docker save tar")
        entries = await self._off_loop(self._saved_entries, manifest, "its manifest.json")
        return [
            Image((await self._config(config)).platform, config, layers)
            for config, layers in entries
        ]

    async def _images(self) -> list[Image]:
        """Every complete image the save holds: through its index.json, else manifest.json."""
        index = self._member("index.json")
        return await self._oci_images(index) if index else await self._saved_images()

    def _for(self, images: list[Image], wanted: Platform) -> Image:
        """The one image for ``wanted``."""
        matching = [image for image in images if wanted.matches(image.platform)]
        if len(matching) == 1:
            return matching[0]
        if not images:
            raise self.broken(
                "it holds no complete image: a blob its index names is missing. Docker's"
                " containerd image store does not fetch a pulled image's compressed layers"
                " when it holds their content unpacked already, from another image"
                " (moby/moby#49784): such an image runs, but cannot be exported"
            )
        if matching:
            raise self.broken(
                f"it holds {len(matching)} images for {wanted}, not exactly one image"
            )
        raise ImageNotFoundError(
            self._image, platform=str(wanted), available=tuple(str(i.platform) for i in images)
        )

    async def choose(
        self, platform: Platform | None, engine_platform: Callable[[], Awaitable[Platform]]
    ) -> Image:
        """The image to push, once the stream is read; its layers checked against its config."""
        images = await self._images()
        if platform is None and len(images) == 1:
            return await self._checked(images[0])
        return await self._checked(self._for(images, platform or await engine_platform()))

    async def choose_many(self, platforms: Platforms) -> list[Image]:
        """The images of a multi-platform push, once the stream is read: every complete
        one (``"all"``), or the one for each platform named; each checked as by ``choose``."""
        images = await self._images()
        if platforms == "all":
            chosen = images or [self._for(images, Platform("", ""))]  # none: the error says why
        else:
            chosen = [self._for(images, wanted) for wanted in platforms]
        return [await self._checked(image) for image in chosen]

    async def _checked(self, image: Image) -> Image:
        """``image``, once its layers are checked against its config's diff_ids."""
        diff_ids = (await self._config(image.config)).diff_ids
        if diff_ids is None:
            raise self.broken("its config names no rootfs.diff_ids (an array of strings)")
        if len(image.layers) != len(diff_ids):
            raise self.broken(f"{len(image.layers)} layers, but its config names {len(diff_ids)}")
        for layer, diff_id in zip(image.layers, diff_ids, strict=True):
            if layer.problem is not None:
                raise self.broken(f"a layer ({layer.digest}) {layer.problem}")
            if layer.diff_id != diff_id:
                raise self.broken(
                    f"a layer's content has the digest {layer.diff_id}, its config says {diff_id}"
                )
        return image


def manifest_json(config: Blob, layers: list[Blob]) -> bytes:
    """An OCI image manifest of ``config`` and ``layers``, as compact JSON."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [
                {
                    "mediaType": LAYER_TYPES[layer.compression],
                    "digest": layer.digest,
                    "size": layer.size,
                }
                for layer in layers
            ],
        },
        separators=(",", ":"),
    ).encode()


def index_json(manifests: list[tuple[bytes, Platform]]) -> bytes:
    """An OCI image index of image manifests, each with its platform, as compact JSON."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                    "size": len(manifest),
                    "platform": platform.descriptor(),
                }
                for manifest, platform in manifests
            ],
        },
        separators=(",", ":"),
    ).encode()
